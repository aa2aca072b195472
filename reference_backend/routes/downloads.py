"""Results as CSV, JSON or ZIP: one record per input row, in input order, streamed.

A finished batch's export is cacheable and resumable: a strong ``ETag`` (304 on ``If-None-Match``),
``Cache-Control``, CSV and JSON compressed when the client accepts it (br, gzip), byte ranges on the ZIP
(206, 416). A signed link serves the same export without a session until it expires; in S3 storage mode
the link is a presigned URL of the export in the bucket, served by S3 without this process. ``HEAD`` on a
download answers what ``GET`` would, status and headers, without the body (a CDN or ``curl -I`` asks so).
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from ..app_state import AppState, CurrentUserId, State
from ..batches import get_owned_batch
from ..database import Store
from ..download_links import DownloadLinks
from ..errors import Conflict, NotFound
from ..exporters import (
    ExportMeta,
    ExportRow,
    content_disposition,
    download_filename,
    iter_csv,
    iter_json,
    write_zip,
)
from ..http_delivery import RangeNotSatisfiable, etag_matches, negotiate_coding, parse_range, strong_etag
from ..http_delivery import compress as encode_stream
from ..lifecycle import BatchStatus
from ..models import Batch, Row
from ..openapi import content, errors
from ..originals import S3Storage

router = APIRouter(prefix="/api/v1/batch", tags=["downloads"])

PAGE = 500
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "zip": "application/zip"}
ZIP_CHUNK = 64 * 1024
# Where S3 mode keeps exports served by presigned links; a bucket lifecycle rule may expire them.
EXPORTS = "exports/"
Format = Literal["csv", "json", "zip"]


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


@dataclass(frozen=True)
class _Export:
    meta: ExportMeta
    filename: str | None
    seq: int

    @property
    def finished(self) -> bool:
        return BatchStatus(self.meta.status).is_terminal


def _export(state: AppState, batch_id: str, user_id: int | None) -> _Export:
    """The batch's export facts; ``user_id=None`` (a signed link) skips the owner check."""
    with state.store.read() as session:
        if user_id is None:
            batch = session.get(Batch, batch_id)
            if batch is None:
                raise NotFound(f"Batch {batch_id} was not found.", code="batch_not_found", batch_id=batch_id)
        else:
            batch = get_owned_batch(session, batch_id, user_id)
        finished = BatchStatus(batch.status).is_terminal and batch.finished_at is not None
        meta = ExportMeta(
            batch_id=batch.id,
            status=batch.status,
            total=batch.total,
            succeeded=batch.succeeded,
            failed=batch.failed,
            columns=list(batch.columns),
            zip_date=_zip_date(batch.finished_at) if finished else None,
        )
        return _Export(meta, batch.filename, batch.seq)


def _zip_date(moment: datetime) -> tuple[int, int, int, int, int, int]:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).timetuple()[:6]  # type: ignore[return-value]


_CACHED = {
    206: {"description": "One byte range of a finished batch's ZIP (Content-Range)."},
    304: {"description": "Not modified: If-None-Match named the current ETag."},
}
_DOWNLOAD_RESPONSES = (
    content("text/csv", "application/json", "application/zip", description="The results, as asked for.")
    | _CACHED
    | errors(401, 404, 416, 422)
)


@router.get("/download/{batch_id}", operation_id="download_batch", responses=_DOWNLOAD_RESPONSES)
@router.head("/download/{batch_id}", operation_id="download_batch_head", responses=_DOWNLOAD_RESPONSES)
async def download(
    batch_id: str, request: Request, user_id: CurrentUserId, state: State, format: Format = "csv"
) -> Response:
    export = await run_in_threadpool(_export, state, batch_id, user_id)
    # Revalidated on every use (no-cache): a finished batch with failed rows can still be retried.
    return await _respond(request, state, export, format, cache_control="private, no-cache")


@router.api_route(
    "/download/{batch_id}/link",
    methods=["GET", "POST"],
    operation_id="download_link",
    responses=errors(401, 404, 409, 422),
)
def download_link(
    batch_id: str,
    request: Request,
    user_id: CurrentUserId,
    state: State,
    format: Format = "csv",
    ttl: int | None = Query(default=None, ge=1, description="Seconds the link stays valid."),
) -> dict[str, Any]:
    settings = state.settings
    export = _export(state, batch_id, user_id)
    if not export.finished:
        raise Conflict(
            f"Batch {batch_id} is {export.meta.status}; a download link is made for a finished batch only.",
            code="batch_not_finished",
            batch_status=export.meta.status,
        )
    lifetime = min(ttl or settings.download_link_ttl_seconds, settings.download_link_max_ttl_seconds)
    link = DownloadLinks(settings.signing_key()).issue(batch_id, format, export.seq, lifetime)
    if isinstance(state.storage, S3Storage):
        url = _presigned(state, state.storage, export, format, lifetime)
    else:
        base = settings.public_url or str(request.base_url)
        url = f"{base.rstrip('/')}/api/v1/batch/download/{batch_id}/signed?{link.query()}"
    return {
        "url": url,
        "format": format,
        "expires_in": lifetime,
        "expires_at": datetime.fromtimestamp(link.expires, UTC).isoformat().replace("+00:00", "Z"),
    }


def _presigned(state: AppState, storage: S3Storage, export: _Export, fmt: str, lifetime: int) -> str:
    """In S3 mode the export is written to the bucket once per content and S3 serves the link itself.

    The key holds the batch's ``seq``, so a retried batch gets a new object and an old link keeps
    serving the content it was made for until S3 expires it.
    """
    batch_id = export.meta.batch_id
    filename = download_filename(export.filename, batch_id, fmt)
    key = f"{EXPORTS}{batch_id}/{export.seq}/{filename}"
    if not storage.list(key):
        storage.put(key, _export_bytes(state, export, fmt))
    return storage.presigned_url(
        key, ttl_seconds=lifetime, content_type=MEDIA_TYPES[fmt], disposition=content_disposition(filename)
    )


def _export_bytes(state: AppState, export: _Export, fmt: str) -> bytes:
    rows = iter_export_rows(state.store, export.meta.batch_id)
    if fmt == "csv":
        return b"".join(iter_csv(export.meta, rows))
    if fmt == "json":
        return b"".join(iter_json(export.meta, rows))
    buffer = io.BytesIO()
    write_zip(export.meta, lambda: iter_export_rows(state.store, export.meta.batch_id), buffer)
    return buffer.getvalue()


_SIGNED_RESPONSES = (
    content("text/csv", "application/json", "application/zip", description="The results, as asked for.")
    | _CACHED
    | errors(403, 404, 410, 416, 422)
)


@router.get("/download/{batch_id}/signed", operation_id="signed_download", responses=_SIGNED_RESPONSES)
@router.head("/download/{batch_id}/signed", operation_id="signed_download_head", responses=_SIGNED_RESPONSES)
async def signed_download(
    batch_id: str,
    request: Request,
    state: State,
    seq: int,
    expires: int,
    signature: str,
    format: Format = "csv",
) -> Response:
    links = DownloadLinks(state.settings.signing_key())
    links.check(batch_id, format, seq, expires, signature)
    export = await run_in_threadpool(_export, state, batch_id, None)
    links.check_current(seq, export.seq)
    # The link pins one content until it expires, so a shared cache (a CDN) may keep it that long.
    remaining = max(int(expires - time.time()), 0)
    return await _respond(request, state, export, format, cache_control=f"public, max-age={remaining}")


async def _respond(request: Request, state: AppState, export: _Export, fmt: str, *, cache_control: str) -> Response:
    batch_id = export.meta.batch_id
    headers = {"Content-Disposition": content_disposition(download_filename(export.filename, batch_id, fmt))}
    coding = "identity"
    if fmt != "zip":
        coding = negotiate_coding(request.headers.get("accept-encoding"))
        headers["Vary"] = "Accept-Encoding"
    etag = None
    if export.finished:
        etag = strong_etag(batch_id, export.seq, fmt, coding)
        headers.update({"ETag": etag, "Cache-Control": cache_control})
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Disposition"})
    else:
        headers["Cache-Control"] = "no-store"
    if fmt != "zip":
        if coding != "identity":
            headers["Content-Encoding"] = coding
        if request.method == "HEAD":
            return _headers_only(200, MEDIA_TYPES[fmt], headers)
        rows = iter_export_rows(state.store, batch_id)
        body = iter_csv(export.meta, rows) if fmt == "csv" else iter_json(export.meta, rows)
        return StreamingResponse(encode_stream(body, coding), media_type=MEDIA_TYPES[fmt], headers=headers)
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - _drain closes it
    await run_in_threadpool(write_zip, export.meta, lambda: iter_export_rows(state.store, batch_id), spool)
    size = spool.tell()
    start, length, status = 0, size, 200
    if etag is not None:
        # Only a finished batch's ZIP is the same bytes twice, so only it can be resumed.
        headers["Accept-Ranges"] = "bytes"
        if_range = request.headers.get("if-range")
        if if_range is None or if_range.strip() == etag:
            try:
                wanted = parse_range(request.headers.get("range"), size)
            except RangeNotSatisfiable:
                spool.close()
                headers["Content-Range"] = f"bytes */{size}"
                return Response(status_code=416, headers=headers)
            if wanted is not None:
                start, length, status = wanted.start, wanted.length, 206
                headers["Content-Range"] = wanted.content_range(size)
    else:
        headers["Accept-Ranges"] = "none"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        spool.close()
        return _headers_only(status, MEDIA_TYPES[fmt], headers)
    spool.seek(start)
    return StreamingResponse(_drain(spool, length), status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)


def _headers_only(status: int, media_type: str, headers: dict[str, str]) -> Response:
    """What ``HEAD`` answers (RFC 9110 9.3.2): the status and headers ``GET`` sends, no body.

    The ZIP's length is known, as for ``GET``; a CSV or JSON body is streamed as it is read, so ``GET`` sends
    no ``Content-Length`` and neither does ``HEAD`` (rather than the empty body's 0).
    """
    response = Response(status_code=status, media_type=media_type, headers=headers)
    if "Content-Length" not in headers:
        del response.headers["content-length"]
    return response


def _drain(spool: tempfile.SpooledTemporaryFile[bytes], length: int) -> Iterator[bytes]:
    with spool:
        while length > 0 and (chunk := spool.read(min(ZIP_CHUNK, length))):
            length -= len(chunk)
            yield chunk
