"""``create_app()``: the FastAPI application of the reference backend."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exists, func, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from . import faults
from .app_state import AppState
from .body_limit import BodySizeLimit
from .bus import Bus, LocalBus
from .config import Settings
from .database import Store
from .errors import ApiError
from .lifecycle import RowStatus
from .login_throttle import LoginThrottle, ThrottleRules
from .metrics import HttpResponseCounter, Metrics, QueueSnapshot
from .models import Batch, Row
from .notifications.dispatcher import OutboxDispatcher, build_senders
from .originals import Storage, build_storage, sweep_orphans
from .provider import provider_from_settings
from .queue_statements import RUNNABLE
from .redis_bus import RedisBus
from .redis_pubsub import WorkDoorbell
from .revocation import Revocations
from .routes import auth, batches, downloads, health, notifications, pages, sockets
from .secure_headers import HEADERS as SECURE_HEADERS
from .secure_headers import SecureHeaders
from .security import TokenSigner
from .slow_requests import SlowRequests
from .work_queue import new_worker_id, work_queue_from
from .worker_pool import WorkerPool

log = logging.getLogger(__name__)

UPLOAD_PATH = "/api/v1/batch/upload"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _store_snapshot(store: Store) -> Callable[[], QueueSnapshot]:
    def snapshot() -> QueueSnapshot:
        now = time.time()
        with store.read() as session:
            by_status = dict(session.execute(select(Batch.status, func.count()).group_by(Batch.status)).all())
            # Pending rows of paused batches wait for their user, not for a worker: not in the queue.
            pending = session.scalar(
                select(func.count())
                .select_from(Row)
                .join(Batch, Row.batch_id == Batch.id)
                .where(Row.status == RowStatus.PENDING.value, Batch.status.in_(RUNNABLE))
            )
            running = session.scalar(select(func.count()).where(Row.status == RowStatus.RUNNING.value))
            lapsed = session.scalar(
                select(func.count()).where(Row.status == RowStatus.RUNNING.value, Row.lease_until < now)
            )
            waiting = session.execute(
                select(Batch.last_claimed_at, Batch.updated_at).where(
                    Batch.status.in_(RUNNABLE),
                    exists().where(Row.batch_id == Batch.id, Row.status == RowStatus.PENDING.value),
                )
            ).all()
        # SQLite hands back naive datetimes; they were written as UTC.
        served = [(c, u if u.tzinfo else u.replace(tzinfo=UTC)) for c, u in waiting]
        last_served = [max(claimed or 0.0, updated.timestamp()) for claimed, updated in served]
        return QueueSnapshot(
            batches_by_status=by_status,
            pending=pending or 0,
            running=running or 0,
            lease_lapsed=lapsed or 0,
            oldest_wait_seconds=max(now - min(last_served), 0.0) if last_served else 0.0,
        )

    return snapshot


def throttle_rules(settings: Settings) -> ThrottleRules:
    return ThrottleRules(
        per_account_and_address=settings.login_max_failures,
        per_address=settings.login_max_failures_per_address,
        per_account=settings.login_max_failures_per_account,
        lockout_seconds=settings.login_lockout_seconds,
        max_lockout_seconds=settings.login_lockout_max_seconds,
        forget_seconds=settings.login_forget_seconds,
    )


def build_state(settings: Settings) -> AppState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.sqlalchemy_url)
    store.create_schema()
    metrics = Metrics()
    metrics.watch_store(_store_snapshot(store))
    # Distributed mode: progress fans out over Redis to every API process, and new work
    # rings every worker process; without a queue URL both stay in this process.
    bus: Bus = RedisBus(settings.queue_url, store=store) if settings.queue_url else LocalBus()
    metrics.watch_sockets(bus.subscriber_count)
    doorbell = WorkDoorbell(settings.queue_url, outbox=bus.outbox) if isinstance(bus, RedisBus) else None
    queue = work_queue_from(settings, store, worker_id=new_worker_id())
    provider = provider_from_settings(settings)
    pool = WorkerPool(queue, provider, bus, metrics, concurrency=settings.worker_concurrency, doorbell=doorbell)
    revocations = Revocations(store)
    signer = TokenSigner(settings.signing_key(), settings.token_ttl_seconds, is_revoked=revocations.is_revoked)
    return AppState(
        settings=settings,
        store=store,
        bus=bus,
        metrics=metrics,
        signer=signer,
        pool=pool,
        storage=build_storage(settings),
        login_throttle=LoginThrottle(throttle_rules(settings)),
        revocations=revocations,
    )


async def _start_processing(state: AppState) -> list[asyncio.Task[Any]]:
    """Bus, storage check and (unless ``embedded_workers`` is off) the worker pool; returns background tasks."""
    settings, storage = state.settings, state.storage
    state.bus.bind(asyncio.get_running_loop())
    await asyncio.to_thread(storage.check)
    if isinstance(state.bus, RedisBus):
        await state.bus.start()
    tasks = [asyncio.create_task(_sweep(state.store, storage), name="batchqa-sweep")]
    if not settings.embedded_workers:
        if settings.queue_url is None:
            log.warning("embedded_workers is off and no queue_url is set: no process will run this API's rows")
        return tasks
    if settings.queue_url is None:
        # The only worker: rows left running died with the last process. With a queue, other workers
        # may hold live leases, so only lapsed leases put rows back.
        released = await asyncio.to_thread(state.pool.queue.release_orphans)
        if released:
            log.info("put %d rows left running by the last process back in the queue", released)
    await state.pool.start()
    if isinstance(state.pool.doorbell, WorkDoorbell):
        tasks.append(asyncio.create_task(state.pool.doorbell.listen(state.pool.wake), name="batchqa-doorbell"))
    return tasks


async def _sweep(store: Store, storage: Storage) -> None:
    try:
        await asyncio.to_thread(sweep_orphans, store, storage)
    except Exception:
        log.warning("sweeping orphaned uploads from %s failed", storage.description, exc_info=True)


async def _stop_processing(state: AppState, tasks: list[asyncio.Task[Any]]) -> None:
    await state.pool.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if isinstance(state.bus, RedisBus):
        await state.bus.close()


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves on this path: a 405's ``Allow`` must name them all (RFC 9110), while
    Starlette names only those of the first route that matched the path."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.router.routes)
    ]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # "webhook_secret: String should have at least 16 characters", not "body.webhook_secret: ..."
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "?", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        body = {"error": {"code": "validation_error", "message": message, "details": {"errors": problems}}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": {}}}
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(app, request.scope))
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": {"code": "internal_error", "message": "The server failed; see its log.", "details": {}}}
        # Answered outside the middleware stack, so the security headers are added here.
        return JSONResponse(body, status_code=500, headers=SECURE_HEADERS | {"Cache-Control": "no-store"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    faults.install(faults.parse_faults(settings.faults))
    state = build_state(settings)
    # Notifications leave through the outbox, so a dead SMTP server or webhook never slows a batch.
    outbox = OutboxDispatcher(state.store, settings, build_senders(settings, state.bus))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start_processing(state)
        await outbox.start()
        try:
            yield
        finally:
            await outbox.stop()
            await _stop_processing(state, tasks)
            state.store.dispose()

    # No /docs or /redoc: Swagger UI and ReDoc run inline scripts the Content-Security-Policy forbids;
    # /openapi.json describes the API.
    app = FastAPI(title="batchqa reference backend", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batchqa = state
    _install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        path=UPLOAD_PATH,
        limit=settings.max_upload_bytes + batches.MULTIPART_OVERHEAD,
        file_limit=settings.max_upload_bytes,
    )
    app.add_middleware(SlowRequests)
    app.add_middleware(SecureHeaders, https=settings.cookie_secure)
    app.add_middleware(HttpResponseCounter, counter=state.metrics.http_responses)
    routers = (auth, batches, downloads, sockets, notifications, health, pages)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
