"""The web UI: plain HTML and JS modules served from ``static/`` (issue 4; notification settings, issue 7)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# The pages are shells whose JS fetches everything; never cache them, so a deploy shows at once.
NO_STORE = {"Cache-Control": "no-store"}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html; charset=utf-8", headers=NO_STORE)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/batches/new", status_code=303)


@router.get("/login")
def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/batches")
def batch_list_page() -> FileResponse:
    return _page("batches.html")


@router.get("/batches/new")
def upload_page() -> FileResponse:
    return _page("upload.html")


@router.get("/batches/{batch_id}")
def batch_page(batch_id: str) -> FileResponse:
    return _page("batch.html")


@router.get("/settings/notifications")
def notification_settings_page() -> FileResponse:
    return _page("settings.html")
