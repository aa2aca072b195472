"""Results as CSV, JSON or ZIP: one record per input row, in input order, streamed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from ..batches import get_owned_batch
from ..exporters import (
    ExportMeta,
    ExportRow,
    content_disposition,
    download_filename,
    iter_csv,
    iter_json,
    write_zip,
)
from ..models import Row
from ..openapi import content, errors
from ..state import AppState, CurrentUserId, State
from ..store import Store

router = APIRouter(prefix="/api/v1/batch", tags=["downloads"])

PAGE = 500
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "zip": "application/zip"}


def iter_export_rows(store: Store, batch_id: str) -> Iterator[ExportRow]:
    """Rows in input order, read a page at a time so a large batch never sits in memory whole."""
    after = 0
    while True:
        with store.read() as session:
            page = session.scalars(
                select(Row).where(Row.batch_id == batch_id, Row.row_number > after).order_by(Row.row_number).limit(PAGE)
            ).all()
        for row in page:
            yield ExportRow(
                row_number=row.row_number,
                fields=dict(row.fields),
                enhanced_prompt=row.enhanced_prompt,
                techniques=tuple(row.techniques or ()),
                status=row.status,
                error=row.error,
                attempts=row.attempts,
            )
        if len(page) < PAGE:
            return
        after = page[-1].row_number


def _meta(state: AppState, batch_id: str, user_id: int) -> tuple[ExportMeta, str | None]:
    with state.store.read() as session:
        batch = get_owned_batch(session, batch_id, user_id)
        meta = ExportMeta(
            batch_id=batch.id,
            status=batch.status,
            total=batch.total,
            succeeded=batch.succeeded,
            failed=batch.failed,
            columns=list(batch.columns),
        )
        return meta, batch.filename


@router.get(
    "/download/{batch_id}",
    operation_id="download_batch",
    responses=content("text/csv", "application/json", "application/zip", description="The results, as asked for.")
    | errors(401, 404, 422),
)
async def download(
    batch_id: str, user_id: CurrentUserId, state: State, format: Literal["csv", "json", "zip"] = "csv"
) -> StreamingResponse:
    meta, original = await run_in_threadpool(_meta, state, batch_id, user_id)
    headers = {"Content-Disposition": content_disposition(download_filename(original, batch_id, format))}
    if format == "csv":
        body: Iterator[bytes] = iter_csv(meta, iter_export_rows(state.store, batch_id))
    elif format == "json":
        body = iter_json(meta, iter_export_rows(state.store, batch_id))
    else:
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - _drain closes it
        await run_in_threadpool(write_zip, meta, lambda: iter_export_rows(state.store, batch_id), spool)
        headers["Content-Length"] = str(spool.tell())
        spool.seek(0)
        body = _drain(spool)
    return StreamingResponse(body, media_type=MEDIA_TYPES[format], headers=headers)


def _drain(spool: tempfile.SpooledTemporaryFile[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(64 * 1024):
            yield chunk
