"""The kit's pytest plugin, registered as a ``pytest11`` entry point, so any pytest run where batchqa is installed
loads it: the black-box suites' options and fixtures (the target, its users, mail and webhook sinks, a signed-in
page and the page objects) and the Allure wiring (labels, failure evidence, environment and categories), which
is inert unless pytest runs with ``--alluredir``.

The fixtures are registered in ``pytest_configure`` (``options``), after every entry-point plugin: ``base_url``
overrides pytest-base-url's fixture of that name, and among plugins the one registered last wins.
"""

from __future__ import annotations

from .harness import CLIENT_TIMEOUT_S, Target, User, http, lacks_capability, registered_user

__all__ = ["CLIENT_TIMEOUT_S", "Target", "User", "http", "lacks_capability", "registered_user"]

pytest_plugins = ["utilities.reporting.allure_hooks", "utilities.pytest_plugin.options"]
