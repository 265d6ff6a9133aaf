"""Training tasks: thin Lightning wrappers around plain models."""
