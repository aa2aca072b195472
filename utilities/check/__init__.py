"""utilities.check."""
