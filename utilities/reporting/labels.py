"""Allure labels for every test: epic US-003, a feature, one story and a severity.

A test names its own labels with markers, so renaming it keeps them: ``@pytest.mark.feature("File upload")``,
``@pytest.mark.story("Drag and drop upload")``, ``@pytest.mark.severity("critical")`` (the browser suite uses
the scenario groups of the US-003 specification and its wording). A module's ``pytestmark`` gives all its
tests a feature; a parameter's ``pytest.param(..., marks=pytest.mark.story(...))`` gives that case its own
story, so the report shows "Excel file (.xlsx) support" rather than the parameter id. A test without markers
still gets a feature from its module, never none, and a story from its name. Self-tests in ``tests/`` are
"Self-tests: <area>", the area declared in the module itself, ``pytestmark = pytest.mark.area("Ingest")`` (one of
``SELF_TEST_AREA_NAMES``), so a renamed module keeps it (tests/test_self_test_areas.py fails a module without one).

One story per test: Allure counts a test once under each of its stories, so two would make the tree's
totals disagree with the number of tests.
"""

from __future__ import annotations

from dataclasses import dataclass

EPIC = "US-003 Batch processing"

BLOCKER, CRITICAL, NORMAL, MINOR = "blocker", "critical", "normal", "minor"

HAPPY_PATH = "Happy path"
FILE_UPLOAD = "File upload"
VALIDATION = "Validation"
PROGRESS = "Progress tracking"
RESULTS = "Result handling"
ERRORS = "Error scenarios"
PERFORMANCE = "Performance"
NOTIFICATIONS = "Notifications"


# The browser suite's features: the specification's scenario groups.
SPEC_GROUPS = (HAPPY_PATH, FILE_UPLOAD, VALIDATION, PROGRESS, RESULTS, ERRORS, PERFORMANCE, NOTIFICATIONS)
SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")
MARKERS = (
    "feature(name): the test's Allure feature (a module's pytestmark sets it for all its tests)",
    "story(name): the test's one Allure story; on a pytest.param, that case's own",
    f"severity(level): the test's Allure severity, one of {', '.join(SEVERITIES)}",
    "area(name): a self-test module's area (its pytestmark in tests/); the feature is 'Self-tests: <area>'",
)


@dataclass(frozen=True)
class Labels:
    feature: str
    story: str | None
    severity: str = NORMAL


# Black-box suites beside the browser's (e2e/<suite>/): the feature is "<suite name>: <module>".
BLACK_BOX_SUITES: dict[str, str] = {"api": "Black-box API", "sockets": "Black-box sockets"}

# Self-tests' areas: a tests/ module names one with ``pytest.mark.area`` (the feature is "Self-tests: <area>").
SELF_TEST_AREA_NAMES = (
    "API",
    "Ingest",
    "Downloads",
    "Enhancer and provider",
    "Queue and states",
    "Progress WebSocket",
    "Distributed mode",
    "Chaos",
    "Notifications",
    "Performance tooling",
    "Generators",
    "Reporting",
    "Security",
    "Kit conventions",
)

_BROWSERS = ("chromium", "firefox", "webkit")


def _param_id(callspec_id: str | None) -> str | None:
    """``chromium-xlsx`` -> ``xlsx``; ``chromium`` -> None: pytest-playwright adds the browser to every id
    (first, as its ``browser_name`` is parametrized before the test's own parameters; last in older versions).
    """
    if not callspec_id:
        return None
    for browser in _BROWSERS:
        if callspec_id == browser:
            return None
        if callspec_id.startswith(f"{browser}-"):
            return callspec_id[len(browser) + 1 :]
        if callspec_id.endswith(f"-{browser}"):
            return callspec_id[: -len(browser) - 1]
    return callspec_id


_ACRONYMS = {"api", "csv", "eta", "http", "json", "s3", "smtp", "txt", "ui", "url", "ws", "xlsx", "zip"}


def _humane(name: str) -> str:
    """``test_api_upload_csv_rows`` -> ``API upload CSV rows``."""
    words = [w.upper() if w in _ACRONYMS else w for w in name.removeprefix("test_").split("_") if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def labels_for(
    nodeid: str,
    *,
    feature: str | None = None,
    story: str | None = None,
    severity: str | None = None,
    area: str | None = None,
) -> Labels:
    """The labels of one test from its node id (``path::function[params]``) and what its markers name."""
    path, _, rest = nodeid.partition("::")
    function = rest.split("::")[-1].split("[", 1)[0]
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    top = path.split("/", 1)[0]
    suite = path.split("/")[1] if path.count("/") >= 2 else ""
    if area is not None and area not in SELF_TEST_AREA_NAMES:
        raise ValueError(f"{nodeid}: area {area!r} is not one of {SELF_TEST_AREA_NAMES}")
    if feature is None and top == "tests":
        feature = f"Self-tests: {area or 'Other'}"  # tests/test_self_test_areas.py fails a module with no area
        story = story or _humane(module)
    elif feature is None and top == "e2e" and suite in BLACK_BOX_SUITES:
        feature = f"{BLACK_BOX_SUITES[suite]}: {_humane(module)}"
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"{nodeid}: severity {severity!r} is not one of {SEVERITIES}")
    return Labels(feature or _humane(module), story or _humane(function), severity or NORMAL)


def title_for(nodeid: str, callspec_id: str | None = None) -> str:
    """A sentence for the report: ``test_pause_holds_progress_and_resume_continues[chromium]`` ->
    ``Pause holds progress and resume continues``; a parameter id is kept in brackets."""
    function = nodeid.split("::")[-1].split("[", 1)[0]
    param = _param_id(callspec_id)
    return _humane(function) + (f" [{param}]" if param else "")
