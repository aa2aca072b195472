"""Run the reference backend with uvicorn: ``batchqa serve`` and ``python -m reference_backend``."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from . import log_redaction
from .app import create_app
from .config import Settings
from .ws_protocol import PreframedWebSocketProtocol

log = logging.getLogger(__name__)

# How long an idle keep-alive connection stays open. Clients keep idle connections in a pool and reuse them
# without knowing when the server closes them; a POST sent as the server closes gets "connection reset"
# and is not retried (it is not idempotent). uvicorn's default, 5 s, races a user that pauses 5 s between
# batches (the soak profile's uploaders); 75 s outlasts the pauses of the kit's users and the 60 s idle timeout
# of common load balancers, so the balancer, not the server, closes first.
KEEP_ALIVE_S = 75


def run(*, host: str | None = None, port: int | None = None, data_dir: str | Path | None = None) -> None:
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Bind the socket ourselves so port 0 means "any free port" and the printed URL is the real one.
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted connections when the listening
    # socket says it is TCP; without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port if port is None else port))
    settings.port = sock.getsockname()[1]
    app = create_app(settings)
    print(
        f"batchqa reference backend listening on {settings.base_url} (data in {settings.data_dir})",
        flush=True,
    )
    config = uvicorn_config(app, settings)
    log_redaction.install()  # after uvicorn.Config, which sets up uvicorn's loggers and handlers
    uvicorn.Server(config).run(sockets=[sock])


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """How the bundled server runs ``app`` (also what the socket memory test serves in-process)."""
    # No permessage-deflate: browsers always offer it, and on progress messages it costs ~40 KiB per
    # socket and multiplies fan-out lag (measured with `batchqa ws-bench`, see the README).
    return uvicorn.Config(
        app,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,
        ws=PreframedWebSocketProtocol,  # progress fan-out writes each message's frame once per batch
    )
