"""The Allure wiring: labels, failure evidence, environment and categories land in the results, and
``batchqa report`` turns them into one HTML file.

A tiny pytest session runs in a child process with ``--alluredir`` on sample tests written here: one passes,
one fails a check in a real browser after uploading a file, one breaks in test code, one times out waiting
on the page, one fails while a bundled backend logs, one cannot start its server. The kit's pytest plugin is
loaded into that session by its entry point, as in any project that installs batchqa.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from utilities.paths import REPO_ROOT
from utilities.procs.video import video_available
from utilities.reporting.allure_metadata import CATEGORIES
from utilities.reporting.allure_report import generate
from utilities.reporting.labels import EPIC, SPEC_GROUPS, labels_for, title_for

pytestmark = [pytest.mark.slow, pytest.mark.area("Reporting")]

SAMPLE = '''
from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from utilities.reporting import evidence
from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess
from utilities.procs.browser import SYSTEM_ARGS, find_chromium

SITE = "http://batchqa.test"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = find_chromium()
    if chromium is None or chromium.kind == "playwright":
        return browser_type_launch_args
    return {**browser_type_launch_args, "executable_path": str(chromium.path), "args": list(SYSTEM_ARGS)}


def serve(route: Route) -> None:
    if route.request.url.endswith("/api/v1/batch/upload"):
        route.fulfill(status=202, json={"batch_id": "b1"})
    else:
        route.fulfill(status=200, content_type="text/html", body="<h1>Sample page</h1>")


def test_passes_and_keeps_only_what_it_must() -> None:
    evidence.attach_json({"kept": "always"}, "kept always", always=True)
    evidence.attach_json({"kept": "on failure"}, "kept on failure")


def test_page_misses_a_heading_after_an_upload(page: Page, tmp_path) -> None:
    page.route(f"{SITE}/**", serve)
    page.goto(f"{SITE}/")
    page.evaluate("""() => {
        const form = new FormData();
        form.append("file", new File(["prompt\\\\nWrite a haiku"], "sample-upload.csv", { type: "text/csv" }));
        return fetch("/api/v1/batch/upload", { method: "POST", body: form }).then((r) => r.status);
    }""")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "json-results.json").write_text("[]")
    evidence.attach_json({"recorded": "by the test"}, "recorded evidence")
    expect(page.get_by_role("heading", name="Never shown")).to_be_visible(timeout=300)


def test_breaks_in_test_code() -> None:
    None.upper()


def test_page_never_gets_there(page: Page) -> None:
    page.route(f"{SITE}/**", serve)
    page.goto(f"{SITE}/")
    page.wait_for_selector("#never", timeout=300)


def test_fails_while_the_backend_logs(tmp_path_factory) -> None:
    server = BackendProcess(tmp_path_factory.mktemp("sample-backend"))
    server.start()
    try:
        BatchApi.new_user(server.url, "wiring").upload(text="Write a limerick about logs")
    finally:
        server.stop()
    assert False, "the product said no"


@pytest.fixture
def server_that_never_starts():
    raise RuntimeError("backend did not report its URL within 30 s")


def test_cannot_reach_its_server(server_that_never_starts) -> None:
    pass
'''

# What each sample must become: (allure status, category by CATEGORIES).
EXPECTED = {
    "test_passes_and_keeps_only_what_it_must": ("passed", None),
    "test_page_misses_a_heading_after_an_upload": ("failed", "Product defects"),
    "test_breaks_in_test_code": ("broken", "Test defects"),
    "test_page_never_gets_there": ("broken", "Product did not get there in time"),
    "test_fails_while_the_backend_logs": ("failed", "Product defects"),
    "test_cannot_reach_its_server": ("broken", "Infrastructure problems"),
}


def category_of(result: dict[str, Any]) -> str | None:
    """Allure 3's rule: the first category whose statuses include the test's and whose pattern is found."""
    if result["status"] == "passed":
        return None
    message = result.get("statusDetails", {}).get("message", "")
    for category in CATEGORIES:
        if result["status"] not in category["matchedStatuses"]:
            continue
        if "messageRegex" in category and not re.search(category["messageRegex"], message):
            continue
        return category["name"]
    return None


@pytest.fixture(scope="module")
def allure_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample session's results: test results by function name, the results dir, pytest's output."""
    root = tmp_path_factory.mktemp("allure-sample")
    (root / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    results = root / "allure-results"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:locust",
        "-W",
        "error",
        f"--rootdir={root}",
        f"--alluredir={results}",
        # The sample's own site, so the kit's plugin starts no bundled backend for the page tests.
        "--base-url=http://batchqa.test",
        f"--output={root / 'test-results'}",
        f"--basetemp={root / 'basetemp'}",
        "--tracing=retain-on-failure",
        "--screenshot=only-on-failure",
        *(["--video=retain-on-failure"] if video_available() else []),
        str(root / "test_sample.py"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, env=env)
    by_name: dict[str, dict[str, Any]] = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        by_name[data["fullName"].rsplit("#", 1)[-1]] = data
    return {"results": results, "tests": by_name, "output": run.stdout + run.stderr, "code": run.returncode}


def labels(result: dict[str, Any], name: str) -> list[str]:
    return sorted(label["value"] for label in result["labels"] if label["name"] == name)


def attachment_names(result: dict[str, Any]) -> list[str]:
    return [attachment["name"] for attachment in result.get("attachments", [])]


def test_every_sample_ends_with_the_status_and_category_it_deserves(allure_run: dict[str, Any]) -> None:
    tests = allure_run["tests"]
    assert sorted(tests) == sorted(EXPECTED), allure_run["output"]
    found = {name: (result["status"], category_of(result)) for name, result in tests.items()}
    assert found == EXPECTED, allure_run["output"]


def test_every_test_is_labelled_with_epic_feature_story_severity_and_a_title(allure_run: dict[str, Any]) -> None:
    for name, result in allure_run["tests"].items():
        assert labels(result, "epic") == [EPIC], name
        assert len(labels(result, "feature")) == 1, name
        assert len(labels(result, "story")) == 1, name
        assert labels(result, "severity") == ["normal"], name
    result = allure_run["tests"]["test_breaks_in_test_code"]
    assert result["name"] == "Breaks in test code"


def test_a_failed_browser_test_carries_screenshot_trace_upload_download_and_recorded_evidence(
    allure_run: dict[str, Any],
) -> None:
    result = allure_run["tests"]["test_page_misses_a_heading_after_an_upload"]
    names = attachment_names(result)
    expected = ["screenshot ", "Playwright trace: ", "uploaded: sample-upload.csv", "recorded evidence"]
    for prefix in [*expected, "downloaded: downloads/json-results.json"]:
        assert any(name.startswith(prefix) for name in names), (prefix, names)
    if video_available():  # Debian's ffmpeg linked where Playwright looks (make setup)
        assert any(name.startswith("video ") for name in names), names
    # The reader sees the screenshot first.
    assert names[0].startswith("screenshot ")
    by_name = {a["name"]: a for a in result["attachments"]}
    uploaded = allure_run["results"] / by_name["uploaded: sample-upload.csv"]["source"]
    assert uploaded.read_text(encoding="utf-8") == "prompt\nWrite a haiku"
    trace = next(a for a in result["attachments"] if a["name"].startswith("Playwright trace: "))
    assert trace["type"] == "application/zip"
    assert (allure_run["results"] / trace["source"]).stat().st_size > 1000


def test_a_failed_test_carries_the_backend_log_lines_of_its_time(allure_run: dict[str, Any]) -> None:
    result = allure_run["tests"]["test_fails_while_the_backend_logs"]
    logs = [a for a in result["attachments"] if a["name"].startswith("server log ")]
    assert len(logs) == 1, attachment_names(result)
    text = (allure_run["results"] / logs[0]["source"]).read_text(encoding="utf-8")
    assert "1 prompts from pasted text" in text or "prompts from" in text, text


def test_a_passing_test_keeps_only_what_it_asked_to_keep_always(allure_run: dict[str, Any]) -> None:
    result = allure_run["tests"]["test_passes_and_keeps_only_what_it_must"]
    assert attachment_names(result) == ["kept always"]


def test_environment_and_categories_are_written_for_the_report(allure_run: dict[str, Any]) -> None:
    results = allure_run["results"]
    environment = (results / "environment.properties").read_text(encoding="utf-8")
    for key in ("Target=", "Backend\\ mode=", "Python=", "playwright=", "Browser=", "allure-pytest="):
        assert key in environment, environment
    assert "Target=http://batchqa.test" in environment
    assert "external deployment" in environment
    assert json.loads((results / "categories.json").read_text(encoding="utf-8")) == CATEGORIES


def test_labels_come_from_markers_else_from_the_module() -> None:
    marked = labels_for("e2e/browser/test_x.py::test_y[chromium-xlsx]", feature="File upload", story="Excel")
    assert (marked.feature, marked.story, marked.severity) == ("File upload", "Excel", "normal")
    assert labels_for("tests/test_api_auth.py::test_x", area="API").feature == "Self-tests: API"
    assert labels_for("e2e/browser/test_something_new.py::test_y[chromium]").feature == "Something new"
    assert labels_for("e2e/api/test_upload.py::test_x").feature == "Black-box API: Upload"
    assert labels_for("e2e/api/test_upload.py::test_upload_csv_rows").story == "Upload CSV rows"
    with pytest.raises(ValueError, match="severity"):
        labels_for("e2e/t.py::test_x", severity="urgent")
    assert title_for("e2e/t.py::test_pause_holds_progress[chromium]", "chromium") == "Pause holds progress"


PROBE = """
import json

from utilities.reporting.allure_hooks import item_labels


def pytest_collection_finish(session):
    for item in session.items:
        labels = item_labels(item)
        print("LABELS", json.dumps([item.nodeid, labels.feature, labels.story, labels.severity]))
"""


def test_every_collected_browser_test_lands_in_a_spec_group_with_its_own_story(tmp_path: Path) -> None:
    (tmp_path / "labels_probe.py").write_text(PROBE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", "e2e/browser", "--collect-only", "-q", "-p", "no:cacheprovider"]
    collected = subprocess.run(
        [*command, "-p", "labels_probe"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    found = {
        nodeid: (feature, story, severity)
        for nodeid, feature, story, severity in (
            json.loads(line.split(" ", 1)[1]) for line in collected.stdout.splitlines() if line.startswith("LABELS ")
        )
    }
    assert found, collected.stdout + collected.stderr
    for nodeid, (feature, _, _) in found.items():
        assert feature in SPEC_GROUPS, nodeid
    picker = "e2e/browser/test_us003_batch_processing.py::test_file_chosen_with_the_picker_is_processed_completely"
    assert found[f"{picker}[chromium-xlsx]"] == ("File upload", "Excel file (.xlsx) support", "critical")
    happy = (
        "e2e/browser/test_us003_batch_processing.py::test_user_logs_in_uploads_ten_prompts_and_downloads_the_results"
    )
    assert found[f"{happy}[chromium]"][::2] == ("Happy path", "blocker")
    # Each parameter of the picker test has a story of its own.
    picker_stories = [story for nodeid, (_, story, _) in found.items() if nodeid.startswith(picker)]
    assert len(set(picker_stories)) == len(picker_stories) == 6, picker_stories


RENAMED = """
import pytest

pytestmark = pytest.mark.feature("File upload")


@pytest.mark.story("Drag and drop upload")
@pytest.mark.severity("critical")
def test_a_name_the_story_table_never_heard_of():
    pass


@pytest.mark.parametrize("name", [pytest.param("a.xlsx", marks=pytest.mark.story("Excel file (.xlsx) support")), "b"])
@pytest.mark.story("Click to browse upload")
def test_another_new_name(name):
    pass
"""


def test_a_renamed_test_keeps_the_labels_its_markers_name(tmp_path: Path) -> None:
    (tmp_path / "test_renamed.py").write_text(RENAMED, encoding="utf-8")
    results = tmp_path / "allure-results"
    # -W error: an unregistered marker would warn, and so fail the run; the kit's plugin registers them.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:locust", "-W", "error"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    run = subprocess.run(
        [*command, f"--rootdir={tmp_path}", f"--alluredir={results}", str(tmp_path / "test_renamed.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["name"]] = {name: labels(data, name) for name in ("feature", "story", "severity", "epic")}
    assert found == {
        "A name the story table never heard of": {
            "feature": ["File upload"],
            "story": ["Drag and drop upload"],
            "severity": ["critical"],
            "epic": [EPIC],
        },
        "Another new name [a.xlsx]": {
            "feature": ["File upload"],
            "story": ["Excel file (.xlsx) support"],
            "severity": ["normal"],
            "epic": [EPIC],
        },
        "Another new name [b]": {
            "feature": ["File upload"],
            "story": ["Click to browse upload"],
            "severity": ["normal"],
            "epic": [EPIC],
        },
    }


def test_report_turns_the_results_into_one_html_file(allure_run: dict[str, Any], tmp_path: Path) -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing and not (REPO_ROOT / "node_modules" / ".bin" / "allure").exists():
        missing.append("node_modules/.bin/allure (run `make setup`, which runs `npm ci`)")
    if missing:
        reason = f"the Allure report needs {', '.join(missing)}"
        if os.environ.get("BATCHQA_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes", "on"}:
            pytest.fail(f"{reason} (BATCHQA_REQUIRE_SERVICES is set, so a missing tool fails)", pytrace=False)
        pytest.skip(reason)
    history = tmp_path / "history.jsonl"
    html = generate(allure_run["results"], tmp_path / "allure", history=history)
    assert [p.name for p in html.parent.iterdir() if p.suffix == ".html"] == ["index.html"]
    text = html.read_text(encoding="utf-8")
    # Everything inline, nothing fetched: it opens from file:// and calls no one (Allure's analytics removed).
    assert re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?:https?:)?//[^\"]*", text) == []
    assert "googletagmanager" not in text
    assert len(history.read_text(encoding="utf-8").splitlines()) == 1
    # The same results again: the report is remade, the history does not count the run twice.
    generate(allure_run["results"], tmp_path / "allure", history=history)
    assert len(history.read_text(encoding="utf-8").splitlines()) == 1
