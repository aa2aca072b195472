"""Where the kit finds its own files: the checkout's root and the folders under it."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "fixtures"
SCHEMA_DIR = FIXTURES_DIR / "schemas"
BASELINES_DIR = FIXTURES_DIR / "baselines"
PERF_DIR = REPO_ROOT / "perf"

__all__ = ["BASELINES_DIR", "FIXTURES_DIR", "PERF_DIR", "REPO_ROOT", "SCHEMA_DIR"]
