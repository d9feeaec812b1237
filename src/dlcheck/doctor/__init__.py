"""dlcheck doctor."""
