"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from .. import faults
from ..app_state import State

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(state: State) -> dict[str, str | list[str]]:
    """``{"status": "ok"}``, plus ``"faults"`` naming each fault switched on: a test run can say what it ran on."""
    with state.store.read() as session:
        session.execute(text("SELECT 1"))
    active = faults.active().describe()
    return {"status": "ok", "faults": active} if active else {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
