"""``python -m reference_backend``: the same as ``batchqa serve``."""

from .server import run

run()
