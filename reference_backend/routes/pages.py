"""The web UI: plain HTML and JS modules served from ``static/`` (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
