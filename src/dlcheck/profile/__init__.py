"""dlcheck profile."""
