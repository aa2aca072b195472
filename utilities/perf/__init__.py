"""utilities.perf."""
