"""Allure labels for every test: epic US-003, feature and story from the spec's scenario groups, a severity.

The browser suite maps test by test onto the scenario groups of the US-003 specification
("Test Scenarios": Happy Path, File Upload, Validation, Progress Tracking, Result Handling, Error
Scenarios; plus Performance and Notifications from its requirements and success metrics). A parametrized
test can name its story per parameter, so the report shows "Excel file (.xlsx) support" rather than
"test_file_chosen_with_the_picker_is_processed_completely[xlsx]". Self-tests in ``tests/`` are
"Self-tests: <area>". A test this table does not know still gets a feature from its module, never none.

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


@dataclass(frozen=True)
class Labels:
    feature: str
    story: str | None
    severity: str = NORMAL


def _labels(feature: str, story: str | None = None, *, severity: str = NORMAL) -> Labels:
    return Labels(feature, story, severity)


# Browser suite, by test function. Story names are the spec's own wording where it has one.
E2E: dict[str, Labels] = {
    # test_us003_batch_processing.py
    "test_user_logs_in_uploads_ten_prompts_and_downloads_the_results": _labels(
        HAPPY_PATH, "Log in, upload 10 prompts, watch progress, download", severity=BLOCKER
    ),
    "test_file_chosen_with_the_picker_is_processed_completely": _labels(
        FILE_UPLOAD, "Click to browse upload", severity=CRITICAL
    ),
    "test_file_dropped_on_the_drop_zone_is_processed_completely": _labels(
        FILE_UPLOAD, "Drag and drop upload", severity=CRITICAL
    ),
    "test_typed_prompts_are_processed_in_order": _labels(FILE_UPLOAD, "Paste prompts", severity=CRITICAL),
    "test_prompts_pasted_from_the_clipboard_are_processed_in_order": _labels(FILE_UPLOAD, "Paste prompts"),
    "test_multiple_files_are_rejected_before_anything_is_sent": _labels(FILE_UPLOAD, "Multiple file rejection"),
    "test_unsupported_file_type_is_rejected_before_anything_is_sent": _labels(VALIDATION, "Unsupported file type"),
    "test_invalid_file_is_refused_with_the_servers_own_words": _labels(VALIDATION, severity=CRITICAL),
    "test_file_over_10_mb_is_refused_before_anything_is_sent": _labels(
        VALIDATION, "File size limits (>10MB)", severity=CRITICAL
    ),
    "test_progress_updates_in_real_time": _labels(PROGRESS, "Real-time progress updates", severity=CRITICAL),
    "test_percent_shown_matches_the_api": _labels(PROGRESS, "Accurate percentage calculation"),
    "test_time_remaining_is_shown_and_falls": _labels(PROGRESS, "Time remaining estimate", severity=MINOR),
    "test_pause_holds_progress_and_resume_continues": _labels(PROGRESS, "Pause/resume capability"),
    "test_cancel_stops_the_batch_and_marks_the_rest_cancelled": _labels(PROGRESS, "Cancel operation"),
    "test_progress_survives_a_page_reload": _labels(PROGRESS, "Progress persistence on refresh"),
    "test_progress_falls_back_to_polling_when_the_socket_fails": _labels(PROGRESS, "Fallback to polling"),
    "test_progress_returns_to_the_socket_when_it_can": _labels(PROGRESS, "WebSocket reconnect", severity=MINOR),
    "test_results_download_matches_the_input": _labels(RESULTS, severity=CRITICAL),
    "test_results_keep_input_order_with_enhanced_prompts_and_techniques": _labels(
        RESULTS, "Results match input order, with enhanced prompts and technique metadata", severity=CRITICAL
    ),
    "test_error_rows_are_marked_in_the_preview_with_their_reason": _labels(RESULTS, "Error rows marked"),
    "test_upload_cut_by_the_network_says_so_and_retry_succeeds": _labels(ERRORS, "Network interruption during upload"),
    "test_server_timeout_during_processing_shows_reconnecting_then_recovers": _labels(
        ERRORS, "Server timeout during processing"
    ),
    "test_partial_failure_completes_with_errors_and_counts_them": _labels(
        ERRORS, "Partial batch failure", severity=CRITICAL
    ),
    "test_retry_failed_rows_runs_them_again": _labels(ERRORS, "Partial batch failure: retry the failed rows"),
    "test_invalid_prompts_fail_alone_and_the_download_says_why": _labels(ERRORS, "Invalid prompts in batch"),
    "test_concurrent_uploads_are_processed_side_by_side": _labels(ERRORS, "Concurrent batch uploads"),
    # test_batch_performance.py
    "test_hundred_prompts_complete_in_under_a_minute_through_the_ui": _labels(
        PERFORMANCE, "100 prompts in <60s", severity=CRITICAL
    ),
    "test_page_updates_at_least_every_two_seconds": _labels(PERFORMANCE, "Progress updates every 2s"),
    "test_thousand_prompt_batch_completes_and_downloads_intact": _labels(
        PERFORMANCE, "1000 prompts intact", severity=CRITICAL
    ),
    # test_notifications.py
    "test_completed_batch_reaches_the_bell_the_mailbox_and_a_background_tab": _labels(
        NOTIFICATIONS, "Completion notification: in-app, email, push", severity=CRITICAL
    ),
    "test_channels_switched_off_on_the_preferences_page_send_nothing": _labels(
        NOTIFICATIONS, "User notification preferences"
    ),
    "test_webhook_set_on_the_preferences_page_arrives_once_and_signed": _labels(NOTIFICATIONS, "Webhooks"),
    "test_preferences_page_shows_the_servers_refusal_as_worded": _labels(
        NOTIFICATIONS, "User notification preferences", severity=MINOR
    ),
    "test_bell_falls_back_to_polling_when_the_socket_is_refused": _labels(NOTIFICATIONS, "In-app bell: fallback"),
}

# Stories by parameter id (pytest's id without the browser pytest-playwright adds); they replace the
# test's own story.
E2E_PARAM_STORIES: dict[str, dict[str, str]] = {
    "test_file_chosen_with_the_picker_is_processed_completely": {
        "csv": "Valid CSV formats",
        "xlsx": "Excel file (.xlsx) support",
        "txt-one-per-line": "Text file with one prompt per line",
        "json": "JSON file",
        "multi-column-csv": "Multi-column CSV",
        "unicode-special-chars-very-long": "Unicode content, special chars, very long prompts",
    },
    "test_invalid_file_is_refused_with_the_servers_own_words": {
        "empty-file": "Empty file",
        "header-only": "Empty file",
        "over-1000-prompts": "Too many prompts (>1000)",
        "invalid-csv": "Invalid CSV format",
        "missing-prompt-column": "Missing required columns",
        "invalid-characters": "Invalid characters",
        "wrong-encoding": "Invalid characters",
        "image-named-xlsx": "Unsupported file type",
    },
    "test_results_download_matches_the_input": {
        "csv": "Download as CSV",
        "json": "Download as JSON",
        "zip": "ZIP for large results",
    },
}

E2E_MODULES: dict[str, str] = {
    "test_us003_batch_processing": HAPPY_PATH,
    "test_batch_performance": PERFORMANCE,
    "test_notifications": NOTIFICATIONS,
}

# Black-box suites beside the browser's (e2e/<suite>/): the feature is "<suite name>: <module>".
BLACK_BOX_SUITES: dict[str, str] = {"api": "Black-box API", "sockets": "Black-box sockets"}

# Self-tests: module -> area (the feature is "Self-tests: <area>").
SELF_TEST_AREAS: dict[str, str] = {
    "test_api_auth": "API",
    "test_api_batches": "API",
    "test_api_upload": "API",
    "test_adversarial_corpus": "Ingest",
    "test_ingest_bounds": "Ingest",
    "test_ingest_csv": "Ingest",
    "test_ingest_rules": "Ingest",
    "test_ingest_text_json": "Ingest",
    "test_ingest_xlsx": "Ingest",
    "test_input_reader": "Ingest",
    "test_real_sample": "Ingest",
    "test_roundtrip_properties": "Ingest",
    "test_exporters": "Downloads",
    "test_download_validator": "Downloads",
    "test_enhancer": "Enhancer and provider",
    "test_provider": "Enhancer and provider",
    "test_work_queue": "Queue and states",
    "test_states": "Queue and states",
    "test_restart": "Queue and states",
    "test_async_helpers": "Progress WebSocket",
    "test_ws_bench": "Progress WebSocket",
    "test_ws_progress_stream": "Progress WebSocket",
    "test_ws_socket": "Progress WebSocket",
    "test_distributed_bus": "Distributed mode",
    "test_distributed_cluster": "Distributed mode",
    "test_distributed_queue": "Distributed mode",
    "test_storage": "Distributed mode",
    "test_chaos_services": "Chaos",
    "test_chaos_workers": "Chaos",
    "test_notification_units": "Notifications",
    "test_notifications": "Notifications",
    "test_bench": "Performance tooling",
    "test_gate": "Performance tooling",
    "test_load_smoke": "Performance tooling",
    "test_csv_generator": "Generators",
    "test_allure_wiring": "Reporting",
    "test_target_profile_and_selfcheck": "Reporting",
}

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


def labels_for(nodeid: str, callspec_id: str | None = None) -> Labels:
    """The labels of one test, from its node id (``path::function[params]``) and pytest's parameter id."""
    path, _, rest = nodeid.partition("::")
    function = rest.split("::")[-1].split("[", 1)[0]
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    top = path.split("/", 1)[0]
    param = _param_id(callspec_id)
    if top == "tests":
        area = SELF_TEST_AREAS.get(module, "Other")
        return _labels(f"Self-tests: {area}", _humane(module))
    suite = path.split("/")[1] if path.count("/") >= 2 else ""
    if top == "e2e" and suite in BLACK_BOX_SUITES:
        return _labels(f"{BLACK_BOX_SUITES[suite]}: {_humane(module)}", _humane(function))
    known = E2E.get(function)
    if known is None:
        return _labels(E2E_MODULES.get(module, _humane(module)), _humane(function))
    story = E2E_PARAM_STORIES.get(function, {}).get(param or "") or known.story or _humane(function)
    return Labels(known.feature, story, known.severity)


def title_for(nodeid: str, callspec_id: str | None = None) -> str:
    """A sentence for the report: ``test_pause_holds_progress_and_resume_continues[chromium]`` ->
    ``Pause holds progress and resume continues``; a parameter id is kept in brackets."""
    function = nodeid.split("::")[-1].split("[", 1)[0]
    param = _param_id(callspec_id)
    return _humane(function) + (f" [{param}]" if param else "")
