"""``batchqa qa`` (``make qa``), the main job: its stages, the figures it reads back from their reports, the summary
table and the command.
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "Paths": "run_paths",
    "Stage": "stages",
    "StageResult": "stages",
    "build_stages": "stages",
    "e2e_budgets": "figures",
    "gate_rows": "figures",
    "junit_counts": "figures",
    "junit_properties": "figures",
    "qa_command": "command",
    "run_stage": "stages",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
