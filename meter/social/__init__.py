"""Social."""
