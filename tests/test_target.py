"""The target a kit command measures: the given --base-url untouched, or a bundled backend stopped on the way out."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from utilities.procs.target import target

pytestmark = pytest.mark.area("Performance tooling")


def test_a_given_url_is_used_as_is_without_a_backend() -> None:
    with target("http://staging.example/") as (url, server):
        assert (url, server) == ("http://staging.example", None)


class _FakeBackend:
    started: ClassVar[list[_FakeBackend]] = []

    def __init__(self, data_dir: Path, *, env: dict[str, str], log_path: Path | None) -> None:
        self.data_dir, self.env, self.log_path, self.stopped = data_dir, env, log_path, False
        _FakeBackend.started.append(self)

    def start(self) -> str:
        assert self.data_dir.is_dir()
        return "http://127.0.0.1:1234"

    def stop(self) -> None:
        self.stopped = True


def test_without_a_url_a_bundled_backend_runs_with_the_env_and_stops_even_on_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("utilities.procs.target.BackendProcess", _FakeBackend)
    _FakeBackend.started.clear()
    with pytest.raises(RuntimeError), target(None, env={"BATCHQA_FAULTS": "x"}, log_path=tmp_path / "log") as found:
        assert found == ("http://127.0.0.1:1234", _FakeBackend.started[0])
        raise RuntimeError("the command failed")
    (server,) = _FakeBackend.started
    assert server.env == {"BATCHQA_FAULTS": "x"}
    assert server.log_path == tmp_path / "log"
    assert server.stopped
    assert not server.data_dir.exists()  # the throwaway data dir is gone too
