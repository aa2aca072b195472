"""Upload a batch, follow its status, list a user's batches, pause/resume/cancel/retry."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .. import faults
from ..app_state import AppState, CurrentUserId, State
from ..batches import apply_action, create_batch, get_owned_batch, list_batches, status_view
from ..errors import ApiError
from ..ingest import IngestLimits, ParsedTable, parse_pasted_text, parse_upload
from ..openapi import errors, links_to_batch
from ..originals import check_quota, discard, keep_original
from ..upload_form import UploadForm, UploadInput, read_upload_form, single_input

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/batch", tags=["batches"])

# Room for multipart boundaries and part headers on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def _limits(state: AppState) -> IngestLimits:
    s = state.settings
    return IngestLimits(
        max_prompts=s.max_prompts + faults.on("limit_off_by_one"),
        max_prompt_chars=s.max_prompt_chars,
        max_bytes=s.max_upload_bytes,
        max_value_chars=s.max_upload_bytes,
    )


async def _parse(upload: UploadInput, state: AppState) -> ParsedTable:
    if upload.filename is None:
        return await run_in_threadpool(parse_pasted_text, upload.data, _limits(state))
    return await run_in_threadpool(parse_upload, upload.filename, upload.data, _limits(state))


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of the two: a file, or pasted text with one prompt per line.",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": ".csv .xlsx .txt .json .jsonl"},
                        "text": {"type": "string", "description": "Pasted prompts, one per line."},
                    },
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": False,
                }
            }
        },
    }
}


BATCH_OPERATIONS = ("batch_status", "download_batch", "pause_batch", "resume_batch", "cancel_batch", "retry_batch")


@router.post(
    "/upload",
    status_code=202,
    responses={202: {"description": "Accepted and queued.", "links": links_to_batch(*BATCH_OPERATIONS)}}
    | errors(400, 401, 413, 415, 422),
    openapi_extra=UPLOAD_BODY,
)
async def upload(request: Request, user_id: CurrentUserId, state: State) -> JSONResponse:
    settings = state.settings
    storage = state.storage
    form: UploadForm | None = None
    try:
        form = await read_upload_form(
            request, max_files=5, max_fields=20, max_part_size=settings.max_upload_bytes + MULTIPART_OVERHEAD
        )
        upload_input = await single_input(form, max_bytes=settings.max_upload_bytes)
        table = await _parse(upload_input, state)
    except ApiError as exc:
        state.metrics.uploads.labels(exc.code).inc()
        raise
    finally:
        if form is not None:
            await form.close()

    original, filename = upload_input.data, upload_input.filename

    def _create() -> dict[str, Any]:
        # Quota, batch and the stored original commit together or not at all: a refused or
        # failed upload leaves no batch and no object behind.
        key = None
        try:
            with state.store.write() as session:
                check_quota(session, user_id=user_id, size=len(original), limit=settings.user_quota_bytes)
                batch = create_batch(session, user_id=user_id, table=table, filename=filename)
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


@router.get("", responses=errors(401))
def list_user_batches(user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.read() as session:
        return {"batches": [status_view(b) for b in list_batches(session, user_id)]}


@router.get("/status/{batch_id}", operation_id="batch_status", responses=errors(401, 404))
def batch_status(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    with state.store.read() as session:
        return status_view(get_owned_batch(session, batch_id, user_id))


def _act(batch_id: str, action: str, user_id: int, state: AppState) -> dict[str, Any]:
    with state.store.write() as session:
        batch = get_owned_batch(session, batch_id, user_id, lock=True)
        events = apply_action(session, batch, action)
        view = status_view(batch)
    for event in events:
        state.bus.publish(batch_id, event)
    if action in ("resume", "retry"):
        state.pool.notify()
    return view


# One route per action, not ``/{batch_id}/{action}``: that pattern would also match ``POST /download/{id}``
# and answer 422 where a method the path does not allow must get 405.
ACTION_ERRORS = errors(401, 404, 409)


@router.post("/{batch_id}/pause", operation_id="pause_batch", responses=ACTION_ERRORS)
def pause_batch(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    return _act(batch_id, "pause", user_id, state)


@router.post("/{batch_id}/resume", operation_id="resume_batch", responses=ACTION_ERRORS)
def resume_batch(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    return _act(batch_id, "resume", user_id, state)


@router.post("/{batch_id}/cancel", operation_id="cancel_batch", responses=ACTION_ERRORS)
def cancel_batch(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    return _act(batch_id, "cancel", user_id, state)


@router.post("/{batch_id}/retry", operation_id="retry_batch", responses=ACTION_ERRORS)
def retry_batch(batch_id: str, user_id: CurrentUserId, state: State) -> dict[str, Any]:
    return _act(batch_id, "retry", user_id, state)
