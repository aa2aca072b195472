"""utilities.procs."""
