"""The kit installs anywhere: its wheel, installed (not editable) into a fresh virtualenv and run from an empty
directory, serves, generates, validates, load-tests, gates, and runs its shipped browser suite.

The core install comes first and is checked without the extras (no Locust, no Redis client), then the
``load`` and ``test`` extras are added for ``batchqa load``/``gate`` and ``pytest --pyargs e2e``. Packages
come from the configured index (pip's cache makes a second run quicker).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from utilities.client.api import BatchApi
from utilities.procs.mailbox import free_port

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = (".git", ".venv", "node_modules", "reports", "build", "*.egg-info", "__pycache__", ".*_cache")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Install:
    venv: Path
    wheel: Path
    workdir: Path  # empty but for what the commands write

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [self.bin(args[0]), *args[1:]]
        environment = {**_clean_env(), **(env or {})}
        return subprocess.run(
            command, cwd=self.workdir, env=environment, capture_output=True, text=True, timeout=timeout
        )

    def pip(self, *requirements: str) -> None:
        result = self.run("python", "-m", "pip", "install", "--quiet", *requirements, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's virtualenv or settings, as on another machine."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_ADDOPTS", "BATCHQA_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy so the checkout gets no build/ or egg-info.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    dist = base / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("batchqa-*.whl")
    venv = base / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
    workdir = base / "empty"
    workdir.mkdir()
    installed = Install(venv, wheel, workdir)
    installed.pip(str(wheel))
    # The core install alone brings none of the extras (checked before any test adds them).
    for extra_only in ("locust", "matplotlib", "redis", "boto3", "psycopg", "playwright", "pytest"):
        probe = installed.run("python", "-c", f"import {extra_only}")
        assert probe.returncode != 0, f"{extra_only} came with the core install"
    return installed


@pytest.fixture
def served(install: Install) -> Iterator[str]:
    """``batchqa serve`` from the installed kit on a free port, stopped afterwards."""
    port = free_port()
    data = install.workdir / f"serve-{port}"
    log = open(install.workdir / f"serve-{port}.log", "w", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen(
        [install.bin("batchqa"), "serve", "--port", str(port), "--data-dir", str(data)],
        cwd=install.workdir,
        env=_clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (install.workdir / f"serve-{port}.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "batchqa serve did not answer /healthz within 90 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_core_install_has_version_gen_serve_and_validate_without_extras(install: Install, served: str) -> None:
    assert _ok(install.run("batchqa", "--version")).strip() == f"batchqa, version {metadata.version('batchqa')}"
    where = _ok(install.run("python", "-c", "from utilities import paths; print(paths.SCHEMA_DIR, paths.PERF_DIR)"))
    assert all(Path(p).is_relative_to(install.venv) for p in where.split()), where

    _ok(install.run("batchqa", "gen", "--rows", "20", "--output", "prompts.csv"))
    prompts = install.workdir / "prompts.csv"
    with BatchApi.new_user(served, "wheel") as api:
        batch_id = api.upload(prompts)["batch_id"]
        assert api.wait_until(batch_id, timeout=120)["status"] == "completed"
        (install.workdir / "results.csv").write_bytes(api.download(batch_id, "csv"))
    _ok(install.run("batchqa", "validate", "prompts.csv", "results.csv"))

    rows = (install.workdir / "results.csv").read_bytes().splitlines(keepends=True)
    (install.workdir / "short.csv").write_bytes(b"".join(rows[:-1]))
    assert install.run("batchqa", "validate", "prompts.csv", "short.csv").returncode == 1


def test_load_extra_runs_the_smoke_profile_and_gates_it_against_the_shipped_baseline(install: Install) -> None:
    install.pip(f"{install.wheel}[load]")
    load = install.run("batchqa", "load", "--profile", "smoke", "--no-plots", "--out", "run", timeout=400)
    summary = json.loads((install.workdir / "run" / "summary.json").read_text(encoding="utf-8"))
    assert load.returncode in (0, 1), load.stdout[-3000:] + load.stderr[-3000:]
    assert summary["metrics"].get("http_rps", 0) > 0, summary
    assert summary["metrics"].get("batch_p50_s[1000]", 0) > 0, "no 1000-prompt batch completed"

    gate = install.run("batchqa", "gate", "--run", "run", "--no-record", env={"COLUMNS": "400"})
    assert gate.returncode in (0, 1), gate.stdout[-3000:] + gate.stderr[-3000:]
    baseline = install.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert str(baseline / "fixtures" / "baselines" / "smoke.json") in " ".join(gate.stdout.split()), gate.stdout


def test_shipped_browser_suite_runs_with_pyargs_against_a_running_backend(install: Install, served: str) -> None:
    install.pip(f"{install.wheel}[test]")
    result = install.run(
        "python",
        *("-m", "pytest", "-p", "no:locust", "-p", "no:cacheprovider", "-q", "--pyargs", "e2e"),
        *("--base-url", served, "-k", "multiple_files_are_rejected_before_anything_is_sent"),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and "failed" not in result.stdout, result.stdout[-4000:]
