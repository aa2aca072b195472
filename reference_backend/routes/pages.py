"""The web UI: plain HTML and JS modules served from ``static/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from .. import faults

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# The pages are shells whose JS fetches everything; never cache them, so a deploy shows at once.
NO_STORE = {"Cache-Control": "no-store"}


HEADER_SLOT = "<!-- site-header -->"
# Faults of the fault switch that the page scripts act on; the page names those switched on in a meta tag.
UI_FAULTS = ("ui_frozen_progress", "ui_wrong_download")


@cache
def _render(name: str, current: str, ui_faults: str = "") -> str:
    """The page with the shared header put in, its link to ``current`` marked as the current page.

    A server-side include rather than a build step: one header for every signed-in page.
    """
    header = (STATIC_DIR / "partials" / "header.html").read_text(encoding="utf-8")
    link = f'<a href="{current}">'
    header = header.replace(link, f'<a href="{current}" aria-current="page">')
    page = (STATIC_DIR / name).read_text(encoding="utf-8").replace(HEADER_SLOT, header)
    if ui_faults:
        page = page.replace("<head>", f'<head>\n  <meta name="batchqa-faults" content="{ui_faults}">', 1)
    return page


def _page(name: str, current: str = "") -> HTMLResponse:
    ui_faults = ",".join(name for name in UI_FAULTS if faults.on(name))
    return HTMLResponse(_render(name, current, ui_faults), headers=NO_STORE)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/batches/new", status_code=303)


@router.get("/login")
def login_page() -> HTMLResponse:
    return _page("login.html")


@router.get("/batches")
def batch_list_page() -> HTMLResponse:
    return _page("batches.html", "/batches")


@router.get("/batches/new")
def upload_page() -> HTMLResponse:
    return _page("upload.html", "/batches/new")


@router.get("/batches/{batch_id}")
def batch_page(batch_id: str) -> HTMLResponse:
    return _page("batch.html")


@router.get("/settings/notifications")
def notification_settings_page() -> HTMLResponse:
    return _page("settings.html", "/settings/notifications")
