"""The kit's pytest plugin, registered as a ``pytest11`` entry point, so any pytest run where batchqa is installed
loads it. It carries the Allure wiring (labels, failure evidence, environment and categories), which is inert unless
pytest runs with ``--alluredir``.
"""

from __future__ import annotations

pytest_plugins = ["utilities.reporting.allure_hooks"]
