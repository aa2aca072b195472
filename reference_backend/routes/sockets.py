"""The progress WebSocket ``/api/v1/batch/ws/{batch_id}`` (issue 3)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["sockets"])
