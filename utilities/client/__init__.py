"""utilities.client."""
