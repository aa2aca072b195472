"""The target a kit command measures: the ``--base-url`` it was given, or a bundled backend it starts itself."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from utilities.procs.backend import BackendProcess


@contextmanager
def target(
    base_url: str | None,
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    prefix: str = "batchqa-",
) -> Iterator[tuple[str, BackendProcess | None]]:
    """``(base_url, None)`` when a URL is given; otherwise a bundled backend with ``env`` in a throwaway data dir
    (its log at ``log_path``), stopped on exit: ``(its URL, the process)``."""
    if base_url:
        yield base_url.rstrip("/"), None
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        server = BackendProcess(Path(data_dir), env=dict(env or {}), log_path=log_path)
        url = server.start()
        try:
            yield url, server
        finally:
            server.stop()
