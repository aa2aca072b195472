"""Pytest configuration local to this checkout; the kit's own hooks come from ``utilities.pytest_plugin``."""
