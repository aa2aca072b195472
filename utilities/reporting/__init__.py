"""Allure wiring: labels, failure evidence, the single-file report.

Names load on first use (PEP 562), so importing one piece does not pull in the dependencies of
the others (aiosmtpd, matplotlib, Locust's gevent).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CATEGORIES": "allure_report",
    "E2E_PARAM_STORIES": "labels",
    "EPIC": "labels",
    "ERRORS": "labels",
    "FILE_UPLOAD": "labels",
    "HAPPY_PATH": "labels",
    "NOTIFICATIONS": "labels",
    "PERFORMANCE": "labels",
    "PROGRESS": "labels",
    "REPO_ROOT": "allure_report",
    "RESULTS": "labels",
    "VALIDATION": "labels",
    "generate": "allure_report",
    "key_figures": "allure_report",
    "labels_for": "labels",
    "report_command": "allure_report",
    "title_for": "labels",
    "write_categories": "allure_report",
    "write_environment": "allure_report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
