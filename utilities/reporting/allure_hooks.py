"""The kit's pytest hooks for the Allure report; inert unless pytest runs with ``--alluredir``.

Loaded by the kit's pytest plugin (``utilities.pytest_plugin``, registered as a ``pytest11`` entry point).

- Labels: epic "US-003 Batch processing", and the feature, story and severity the test's markers name
  (``utilities/reporting/labels.py``); a readable title. Explicit ``@allure.*`` marks on a test win.
- Failure evidence, attached to the failed test: Playwright's trace, screenshots and video (from
  pytest-playwright's folder for the test under ``test-results/``), the prompt files the page uploaded,
  the files the test wrote (downloads) in its ``tmp_path``, the progress view's update cadence with a plot,
  the bundled backend's log lines from the test's time, and whatever the test recorded through
  ``utilities/reporting/evidence.py``.
- ``environment.properties`` (target, versions, backend mode) and ``categories.json`` (product, test and
  infrastructure failures) in the results directory at the end of the session.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from utilities.reporting import evidence
from utilities.reporting.allure_metadata import (
    BROWSER_VERSION,
    session_environment,
    write_categories,
    write_environment,
)
from utilities.reporting.labels import EPIC, MARKERS, Labels, labels_for, title_for

ACTIVE = pytest.StashKey[bool]()
BASETEMP = pytest.StashKey[Path]()
STARTED = pytest.StashKey[float]()
FAILED = pytest.StashKey[bool]()
COLLECTOR = pytest.StashKey[evidence.Collector]()

UPLOAD_PATH = "/api/v1/batch/upload"  # docs/contract.md
MAX_TEST_FILES = 20
PLAYWRIGHT_ARTIFACTS = {"playwright_screenshot": "screenshot", "playwright_trace": "trace", "playwright_video": "video"}


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in one project's ini, so suites run anywhere the kit is installed know them.
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[ACTIVE] = bool(getattr(config.option, "allure_report_dir", None))


def _active(config: pytest.Config) -> bool:
    return config.stash.get(ACTIVE, False)


def _param_id(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.id if callspec is not None else None


# Labels and titles


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config):
        return
    for item in items:
        given = {mark.kwargs.get("label_type") for mark in item.iter_markers("allure_label")}
        labels = item_labels(item)
        wanted = {"epic": EPIC, "feature": labels.feature, "story": labels.story, "severity": labels.severity}
        for label_type, value in wanted.items():
            if label_type not in given and value:
                item.add_marker(pytest.mark.allure_label(value, label_type=label_type))


def item_labels(item: pytest.Item) -> Labels:
    """The labels of a collected test from its markers: a parameter's own marks win over the function's."""
    return labels_for(
        item.nodeid,
        feature=_marked(item, "feature"),
        story=_marked(item, "story"),
        severity=_marked(item, "severity"),
        area=_marked(item, "area"),
    )


def _marked(item: pytest.Item, name: str) -> str | None:
    callspec = getattr(item, "callspec", None)
    own = [mark for mark in (callspec.marks if callspec is not None else []) if mark.name == name]
    mark = own[0] if own else item.get_closest_marker(name)
    if mark is None:
        return None
    if len(mark.args) != 1 or not isinstance(mark.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} takes one string, got {mark.args!r}")
    return mark.args[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None]:
    if _active(item.config):
        item.stash[STARTED] = time.time()
        item.stash[FAILED] = False
        item.stash[COLLECTOR] = evidence.begin(item.nodeid)
    return (yield)


def _title(item: pytest.Item) -> None:
    """A sentence instead of the function name; an ``@allure.title`` on the test wins.

    Set at the end of the test: allure-pytest names the test when its setup ends, and its hooks wrap these
    (it registers itself after the conftest files are loaded).
    """
    if getattr(getattr(item, "obj", None), "__allure_display_name__", None):
        return
    import allure

    allure.dynamic.title(title_for(item.nodeid, _param_id(item)))


# Evidence while the test runs


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Generator[Any]:
    result = yield
    config = request.config
    if not _active(config):
        return result
    if fixturedef.argname == "tmp_path_factory":
        config.stash[BASETEMP] = result.getbasetemp()
    elif fixturedef.argname == "browser" and hasattr(result, "version"):
        config.stash[BROWSER_VERSION] = f"{result.browser_type.name} {result.version}"
    elif fixturedef.argname == "context" and hasattr(result, "on"):
        collector = request.node.stash.get(COLLECTOR, None)
        if collector is not None:
            result.on("request", lambda sent: _record_upload(collector, sent))
    return result


def _record_upload(collector: evidence.Collector, request: Any) -> None:
    """Keep every upload the page sends (the files exactly as the server received them)."""
    if request.method != "POST" or UPLOAD_PATH not in request.url:
        return
    body = request.post_data_buffer or b""
    for name, content in evidence.uploaded_files(request.headers.get("content-type", ""), body):
        collector.add(
            evidence.Item(f"uploaded: {name}", body=content, mime=evidence.mime_type(name), extension=_ext(name))
        )


def _ext(name: str) -> str:
    return Path(name).suffix[1:] or "txt"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if not _active(item.config) or COLLECTOR not in item.stash:
        return report
    if report.failed:
        item.stash[FAILED] = True
    if report.when == "call" and (report.failed or item.get_closest_marker("perf")):
        _record_progress_views(item, always=not report.failed)
    if report.when == "teardown":
        _title(item)
        _attach(item, report, failed=item.stash[FAILED])
        evidence.end()
    return report


def _record_progress_views(item: pytest.Item, *, always: bool) -> None:
    """The cadence of every recording progress view the test used (the page is still open here)."""
    funcargs = getattr(item, "funcargs", {})
    trackers = {
        name: value
        for name, value in funcargs.items()
        if callable(getattr(value, "timeline", None)) and hasattr(value, "page")
    }
    for name, tracker in trackers.items():
        label = "progress view" if len(trackers) == 1 else f"progress view ({name})"
        try:
            timeline = tracker.timeline()
            stalls = tracker.page_stalls() if callable(getattr(tracker, "page_stalls", None)) else []
        except Exception as exc:  # the page may have crashed or closed: say so rather than hide the failure
            evidence.attach_text(f"could not read the progress view: {exc}", label)
            continue
        evidence.record_progress(timeline, label, stalls=stalls, always=always)


# Attaching at the end of the test


def _attach(item: pytest.Item, teardown: pytest.TestReport, *, failed: bool) -> None:
    collector = item.stash[COLLECTOR]
    measurements = {k: v for k, v in item.user_properties if not str(k).startswith("playwright_")}
    if measurements:
        evidence.write(
            evidence.Item("measurements", body=_json(measurements), mime="application/json", extension="json")
        )
    if not failed:
        for entry in collector.items:
            if entry.always:
                evidence.write(entry)
        return
    for entry in _playwright_artifacts(item, teardown):
        evidence.write(entry)
    for entry in collector.items:
        evidence.write(entry)
    for entry in _test_files(item):
        evidence.write(entry)
    for entry in _server_logs(item):
        evidence.write(entry)


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data, indent=2, default=str).encode("utf-8")


def _playwright_artifacts(item: pytest.Item, teardown: pytest.TestReport) -> list[evidence.Item]:
    """Screenshots first (what a reader looks at first), then traces, then videos."""
    paths: dict[Path, str] = {}
    root = Path(item.config.invocation_params.dir)
    for key, value in teardown.user_properties:
        if key in PLAYWRIGHT_ARTIFACTS:
            paths[(root / value).resolve()] = PLAYWRIGHT_ARTIFACTS[key]
    folder = _artifact_folder(item)
    if folder is not None and folder.is_dir():
        for path in sorted(folder.iterdir()):
            kind = {".png": "screenshot", ".zip": "trace", ".webm": "video"}.get(path.suffix)
            if kind:
                paths.setdefault(path.resolve(), kind)
    order = {"screenshot": 0, "trace": 1, "video": 2}
    items = []
    for path, kind in sorted(paths.items(), key=lambda pair: (order[pair[1]], pair[0].name)):
        if kind == "trace":
            # A zip to download (the report saves it under a hash name): it opens from file://, where the
            # online trace viewer Allure offers for traces cannot load it.
            local = _shown_path(path, root)
            name = f"Playwright trace: download, then `playwright show-trace FILE` (local copy: {local})"
            items.append(evidence.Item(name, path=path, mime="application/zip", extension="zip"))
        elif kind == "screenshot":
            items.append(evidence.Item(f"screenshot {path.name}", path=path, mime="image/png", extension="png"))
        else:
            items.append(evidence.Item(f"video {path.name}", path=path, mime="video/webm", extension="webm"))
    return items


def _shown_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _artifact_folder(item: pytest.Item) -> Path | None:
    """pytest-playwright's folder for this test: ``--output`` / slugified node id (its ``output_path``)."""
    output = item.config.getoption("output", None)
    if not output:
        return None
    try:
        from slugify import slugify
    except ImportError:
        return None
    name = slugify(item.nodeid)
    if len(name) >= 256:  # pytest-playwright's _truncate_file_name
        import hashlib

        name = f"{name[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:7]}-{name[-100:]}"
    return Path(output).absolute() / name


def _test_files(item: pytest.Item) -> list[evidence.Item]:
    """Files the test left in its own ``tmp_path``: downloads, and files it generated to upload.

    A backend's data dir (the folder of a ``server.log``) is left out: its log is attached on its own.
    """
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if not isinstance(tmp_path, Path) or not tmp_path.is_dir():
        return []
    data_dirs = [log.parent for log in tmp_path.rglob("server.log")]
    files = sorted(
        path
        for path in tmp_path.rglob("*")
        if path.is_file() and not any(path.is_relative_to(data_dir) for data_dir in data_dirs)
    )
    items = []
    for path in files[:MAX_TEST_FILES]:
        relative = path.relative_to(tmp_path).as_posix()
        label = "downloaded" if "downloads" in path.parts[len(tmp_path.parts) : -1] else "test file"
        mime = evidence.mime_type(path.name)
        items.append(evidence.Item(f"{label}: {relative}", path=path, mime=mime, extension=_ext(path.name)))
    if len(files) > MAX_TEST_FILES:
        rest = "\n".join(str(path) for path in files[MAX_TEST_FILES:])
        items.append(
            evidence.Item("more test files (not attached)", body=rest.encode(), mime="text/plain", extension="txt")
        )
    return items


def _server_logs(item: pytest.Item) -> list[evidence.Item]:
    """What every bundled backend under pytest's temp dir logged while this test ran."""
    basetemp = item.config.stash.get(BASETEMP, None)
    started = item.stash[STARTED]
    if basetemp is None:
        return []
    items = []
    for path in evidence.server_logs(basetemp, started):
        excerpt = evidence.server_log_excerpt(path, started)
        label = f"server log {path.parent.name}/{path.name}"
        if excerpt is None:
            excerpt = f"{path}: nothing logged at its log level while this test ran\n"
            label += " (nothing new)"
        items.append(evidence.Item(label, body=excerpt.encode("utf-8"), mime="text/plain", extension="txt"))
    return items


# The environment block and the categories


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not _active(config) or hasattr(config, "workerinput"):  # xdist workers leave it to the controller
        return
    results = Path(config.option.allure_report_dir)
    results.mkdir(parents=True, exist_ok=True)
    write_categories(results)
    write_environment(results, session_environment(session))
