"""dlcheck env."""
