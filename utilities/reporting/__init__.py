"""utilities.reporting."""
