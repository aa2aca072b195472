"""pytest-playwright's conventions kept: the Chromium override only for Chromium, --device keeps its viewport,
and finding a browser never starts a Playwright driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import playwright.sync_api
import pytest

from utilities.procs import browser

pytestmark = pytest.mark.area("Kit conventions")

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json


def test_launch(browser_name, browser_type_launch_args):
    executable = browser_type_launch_args.get("executable_path")
    print("LAUNCH", json.dumps({"browser": browser_name, "executable": executable}))


def test_context(browser_context_args):
    print("CONTEXT", json.dumps(browser_context_args.get("viewport")))
"""


def test_finding_chromium_starts_no_playwright_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> None:
        raise AssertionError("a Playwright driver was started")

    monkeypatch.setattr(playwright.sync_api, "sync_playwright", no_driver)
    monkeypatch.delenv("BATCHQA_CHROMIUM", raising=False)
    browser.find_chromium()


def test_playwrights_own_chromium_is_found_from_its_browsers_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    revision = next(b["revision"] for b in json.loads(manifest.read_text())["browsers"] if b["name"] == "chromium")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    monkeypatch.delenv("BATCHQA_CHROMIUM", raising=False)
    assert browser.playwright_chromium() is None
    executable = tmp_path / f"chromium-{revision}" / "chrome-linux" / "chrome"
    executable.parent.mkdir(parents=True)
    executable.touch()
    assert browser.playwright_chromium() == executable
    assert browser.find_chromium() == browser.Chromium("playwright", executable)


def _probe(tmp_path: Path, *args: str) -> str:
    plugins = 'pytest_plugins = ["e2e.browser.conftest"]\n'
    (tmp_path / "conftest.py").write_text(plugins, encoding="utf-8")
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHQA_CHROMIUM", "PYTEST_ADDOPTS")}
    command = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:locust", "-p", "no:cacheprovider", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _printed(output: str, tag: str) -> object:
    return json.loads(next(line for line in output.splitlines() if line.startswith(tag)).split(" ", 1)[1])


@pytest.mark.skipif(browser.system_chromium() is None, reason="no system Chromium to override with")
def test_system_chromium_replaces_the_executable_only_for_chromium(tmp_path: Path) -> None:
    if browser.playwright_chromium() is not None:
        pytest.skip("Playwright's own Chromium is installed: no override at all")
    chromium = _printed(_probe(tmp_path, "-k", "launch"), "LAUNCH")
    assert chromium == {"browser": "chromium", "executable": str(browser.system_chromium())}
    firefox = _printed(_probe(tmp_path, "-k", "launch", "--browser", "firefox"), "LAUNCH")
    assert firefox == {"browser": "firefox", "executable": None}


@pytest.mark.slow
def test_device_keeps_its_viewport_and_the_default_is_fixed(tmp_path: Path) -> None:
    target = ("--base-url", "http://127.0.0.1:9")  # given, so no backend is started for the probe
    assert _printed(_probe(tmp_path, "-k", "context", *target), "CONTEXT") == {"width": 1280, "height": 900}
    pixel = _printed(_probe(tmp_path, "-k", "context", "--device", "Pixel 5", *target), "CONTEXT")
    assert pixel == {"width": 393, "height": 727}
