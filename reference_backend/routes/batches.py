"""Upload a batch, follow its status, list a user's batches, pause/resume/cancel/retry."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..batches import apply_action, create_batch, get_owned_batch, list_batches, status_view
from ..errors import ApiError, BadRequest, PayloadTooLarge
from ..ingest import IngestLimits, ParsedTable, parse_pasted_text, parse_upload, safe_filename
from ..state import AppState, CurrentUserId, State
from ..storage import check_quota, discard, keep_original, read_original
from ..upload_form import UploadForm, read_upload_form

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/batch", tags=["batches"])

# Room for multipart boundaries and part headers on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def _limits(state: AppState) -> IngestLimits:
    s = state.settings
    return IngestLimits(
        max_prompts=s.max_prompts,
        max_prompt_chars=s.max_prompt_chars,
        max_bytes=s.max_upload_bytes,
        max_value_chars=s.max_upload_bytes,
    )


async def _read_input(form: UploadForm, state: AppState) -> tuple[ParsedTable, str | None]:
    limit = state.settings.max_upload_bytes
    files, texts = form.files, form.texts
    if len(files) > 1:
        raise BadRequest(
            f"Upload one file at a time; this request carried {len(files)}.",
            code="multiple_files",
            count=len(files),
            filenames=[f.filename for f in files],
        )
    if files and texts:
        raise BadRequest("Send either a file or pasted text, not both.", code="ambiguous_input")
    if files:
        upload = files[0]
        filename = safe_filename(upload.filename or "upload")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(
                f"{filename} is larger than the {limit:,}-byte limit.", filename=filename, limit=limit
            )
        return await run_in_threadpool(parse_upload, filename, data, _limits(state)), filename
    if texts:
        return await run_in_threadpool(parse_pasted_text, texts[0], _limits(state)), None
    raise BadRequest("Attach a file in the 'file' field or paste prompts in the 'text' field.", code="no_input")


@router.post("/upload", status_code=202)
async def upload(request: Request, user_id: CurrentUserId, state: State) -> JSONResponse:
    settings = state.settings
    storage = state.storage
    form: UploadForm | None = None
    try:
        form = await read_upload_form(
            request, max_files=5, max_fields=20, max_part_size=settings.max_upload_bytes + MULTIPART_OVERHEAD
        )
        original = await read_original(form, max_bytes=settings.max_upload_bytes)
        table, filename = await _read_input(form, state)
    except ApiError as exc:
        state.metrics.uploads.labels(exc.code).inc()
        raise
    finally:
        if form is not None:
            await form.close()

    def _create() -> dict[str, Any]:
        # Quota, batch and the stored original commit together or not at all (issue 6): a refused or
        # failed upload leaves no batch and no object behind.
        key = None
        try:
            with state.store.write() as session:
                if original is not None:
                    check_quota(session, user_id=user_id, size=len(original), limit=settings.user_quota_bytes)
                batch = create_batch(session, user_id=user_id, table=table, filename=filename)
                if original is not None:
                    key = keep_original(
                        session, storage, user_id=user_id, batch_id=batch.id, filename=filename, data=original
                    )
                return {
                    "batch_id": batch.id,
                    "status": batch.status,
                    "total": batch.total,
                    "columns": batch.columns,
                    "filename": batch.filename,
                }
        except BaseException:
            if key is not None:
                discard(storage, key)
            raise

    try:
        body = await run_in_threadpool(_create)
    except ApiError as exc:
        state.metrics.uploads.labels(exc.code).inc()
        raise
    state.metrics.uploads.labels("accepted").inc()
    state.pool.notify()
    log.info("batch %s: %d prompts from %s", body["batch_id"], body["total"], filename or "pasted text")
    return JSONResponse(body, status_code=202)


@router.get("")
def list_user_batches(user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.read() as session:
        return {"batches": [status_view(b) for b in list_batches(session, user_id)]}


@router.get("/status/{batch_id}")
def batch_status(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.read() as session:
        return status_view(get_owned_batch(session, batch_id, user_id))


@router.post("/{batch_id}/{action}")
def batch_action(
    batch_id: str, action: Literal["pause", "resume", "cancel", "retry"], user_id: CurrentUserId, state: State
) -> dict[str, Any]:
    with state.store.write() as session:
        batch = get_owned_batch(session, batch_id, user_id, lock=True)
        events = apply_action(session, batch, action)
        view = status_view(batch)
    for event in events:
        state.bus.publish(batch_id, event)
    if action in ("resume", "retry"):
        state.pool.notify()
    return view
