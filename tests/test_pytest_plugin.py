"""The kit's pytest plugin as another project sees it: loaded through its entry point, options registered
once, the target taken from ``--base-url`` or else the bundled backend, and ``--require-services`` turning a
missing service into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.area("Reporting")

PROBE = """
import pytest

from utilities.pytest_plugin.options import services_required


def test_target(base_url, target):
    print("TARGET", base_url, target.bundled)


def test_missing_service():
    if services_required():
        pytest.fail("no redis-server here (services are required)")
    pytest.skip("no redis-server here")
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "BATCHQA_REQUIRE_SERVICES")}
    command = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "-p", "no:locust", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_options_are_registered_once_by_the_entry_point(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "--help")
    assert run.returncode == 0, run.stderr
    for flag in ("--target-profile", "--smtp-sink", "--webhook-receiver", "--require-services"):
        assert run.stdout.count(f"  {flag}") == 1, (flag, run.stdout)


def test_base_url_is_the_given_target_else_the_bundled_backend(tmp_path: Path) -> None:
    given = _pytest(tmp_path, "-k", "target", "--base-url", "http://target.test")
    assert given.returncode == 0, given.stdout + given.stderr
    assert "TARGET http://target.test False" in given.stdout
    # Without --base-url, pytest-base-url's own fixture would give None: the kit's must win.
    bundled = _pytest(tmp_path, "-k", "target")
    assert bundled.returncode == 0, bundled.stdout + bundled.stderr
    assert "TARGET http://127.0.0.1:" in bundled.stdout and " True" in bundled.stdout, bundled.stdout


def test_require_services_fails_what_would_skip(tmp_path: Path) -> None:
    skipped = _pytest(tmp_path, "-k", "missing_service")
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout
    failed = _pytest(tmp_path, "-k", "missing_service", "--require-services")
    assert failed.returncode == 1 and "1 failed" in failed.stdout, failed.stdout
