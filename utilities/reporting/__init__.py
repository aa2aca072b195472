"""Allure wiring: labels, failure evidence, the single-file report.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "CATEGORIES": "allure_metadata",
    "EPIC": "labels",
    "ERRORS": "labels",
    "FILE_UPLOAD": "labels",
    "HAPPY_PATH": "labels",
    "MARKERS": "labels",
    "NOTIFICATIONS": "labels",
    "PERFORMANCE": "labels",
    "PROGRESS": "labels",
    "RESULTS": "labels",
    "SELF_TEST_AREA_NAMES": "labels",
    "SEVERITIES": "labels",
    "SPEC_GROUPS": "labels",
    "VALIDATION": "labels",
    "generate": "allure_report",
    "gate_result": "load_gate_result",
    "key_figures": "load_gate_result",
    "labels_for": "labels",
    "report_command": "allure_report",
    "title_for": "labels",
    "write_categories": "allure_metadata",
    "write_environment": "allure_metadata",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
