"""Reader data."""
