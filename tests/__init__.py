"""Fast self-tests of the utilities and the reference backend (no browser)."""
