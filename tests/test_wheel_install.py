"""The kit installs anywhere: its wheel, installed (not editable) into a virtualenv of its own and run from an
empty directory, serves, generates, validates, load-tests, gates, and runs its shipped browser suite.

The core install goes into a fresh virtualenv from the package index: it proves the core dependencies are
declared and enough, and that none of the extras come with them. The ``load`` and ``test`` extras add
about 3.5 minutes of downloads and installs on this 2-core machine (7.5 minutes for the whole test at a load
average of 16), so by default the commands that need them run from a second virtualenv that sees this
checkout's packages (where every extra is installed, and which deptry checks against the declarations) but
has the wheel's batchqa installed in its own site-packages, ahead of them: code and data still come from
the wheel. ``BATCHQA_WHEEL_FRESH_EXTRAS=1`` installs ``WHEEL[load,test]`` from the index instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from utilities.client.api import BatchApi
from utilities.procs.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = (".git", ".venv", "node_modules", "reports", "build", "*.egg-info", "__pycache__", ".*_cache")
EXTRAS_ONLY = ("locust", "matplotlib", "redis", "boto3", "psycopg", "playwright", "pytest")

# Building and installing take minutes on a busy 2-core machine, past the suite's default 300 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.area("Kit conventions")]


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

    def pip(self, *args: str) -> None:
        result = self.run("python", "-m", "pip", "install", "--quiet", *args, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def site_packages(self) -> Path:
        return self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's virtualenv or settings, as on another machine."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_ADDOPTS", "BATCHQA_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy so the checkout gets no build/ or egg-info.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (found,) = base.glob("batchqa-*.whl")
    return found


def _venv(base: Path, wheel: Path) -> Install:
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    (base / "empty").mkdir()
    return Install(base / "venv", wheel, base / "empty")


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    installed = _venv(tmp_path_factory.mktemp("core"), wheel)
    installed.pip(str(wheel))
    for extra_only in EXTRAS_ONLY:
        probe = installed.run("python", "-c", f"import {extra_only}")
        assert probe.returncode != 0, f"{extra_only} came with the core install"
    return installed


@pytest.fixture(scope="module")
def with_extras(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    installed = _venv(tmp_path_factory.mktemp("extras"), wheel)
    if os.environ.get("BATCHQA_WHEEL_FRESH_EXTRAS") == "1":
        installed.pip(f"{wheel}[load,test]")
        return installed
    # This checkout's packages after the venv's own; a path listed in a .pth is not scanned for .pth files,
    # so the checkout's editable batchqa stays inert there and the wheel's is the one imported.
    (installed.site_packages() / "checkout-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed.pip("--no-deps", str(wheel))
    return installed


@contextmanager
def serving(install: Install) -> Iterator[str]:
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


def _kit_files_come_from_the_wheel(install: Install) -> None:
    where = _ok(install.run("python", "-c", "from utilities import paths; print(paths.SCHEMA_DIR, paths.PERF_DIR)"))
    assert all(Path(p).is_relative_to(install.site_packages()) for p in where.split()), where


def test_core_install_has_version_gen_serve_and_validate_without_extras(core: Install) -> None:
    assert _ok(core.run("batchqa", "--version")).strip() == f"batchqa, version {metadata.version('batchqa')}"
    _kit_files_come_from_the_wheel(core)
    _ok(core.run("batchqa", "gen", "--rows", "20", "--output", "prompts.csv"))
    with serving(core) as url, BatchApi.new_user(url, "wheel") as api:
        batch_id = api.upload(core.workdir / "prompts.csv")["batch_id"]
        assert api.wait_until(batch_id, timeout=120)["status"] == "completed"
        (core.workdir / "results.csv").write_bytes(api.download(batch_id, "csv"))
    _ok(core.run("batchqa", "validate", "prompts.csv", "results.csv"))

    rows = (core.workdir / "results.csv").read_bytes().splitlines(keepends=True)
    (core.workdir / "short.csv").write_bytes(b"".join(rows[:-1]))
    assert core.run("batchqa", "validate", "prompts.csv", "short.csv").returncode == 1


def test_load_extra_runs_the_smoke_profile_and_gates_it_against_the_shipped_baseline(with_extras: Install) -> None:
    install = with_extras
    _kit_files_come_from_the_wheel(install)
    load = install.run("batchqa", "load", "--profile", "smoke", "--no-plots", "--out", "run", timeout=400)
    summary = json.loads((install.workdir / "run" / "summary.json").read_text(encoding="utf-8"))
    assert load.returncode in (0, 1), load.stdout[-3000:] + load.stderr[-3000:]
    # The installed locustfile drove the bundled backend. How far it got in 20 s depends on the machine's
    # load (a login's Argon2 hash took 8 s at a load average of 40), so the figures are the gate's business.
    assert summary["profile"]["name"] == "smoke" and summary["started_backend"], summary
    assert summary["metrics"].get("http_count[POST /api/v1/auth/register]", 0) > 0, summary["metrics"]

    gate = install.run("batchqa", "gate", "--run", "run", "--no-record", env={"COLUMNS": "400"})
    assert gate.returncode in (0, 1), gate.stdout[-3000:] + gate.stderr[-3000:]
    baseline = install.site_packages() / "fixtures" / "baselines" / "smoke.json"
    assert str(baseline) in " ".join(gate.stdout.split()), gate.stdout


def test_shipped_browser_suite_runs_with_pyargs_against_a_running_backend(with_extras: Install) -> None:
    with serving(with_extras) as url:
        result = with_extras.run(
            "python",
            *("-m", "pytest", "-p", "no:locust", "-p", "no:cacheprovider", "-q", "--pyargs", "e2e"),
            *("--base-url", url, "-k", "multiple_files_are_rejected_before_anything_is_sent"),
        )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and "failed" not in result.stdout, result.stdout[-4000:]
    assert str(with_extras.site_packages() / "e2e") in _ok(
        with_extras.run("python", "-c", "import e2e, os; print(os.path.dirname(e2e.__file__))")
    )
