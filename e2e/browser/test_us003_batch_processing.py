"""US-003 batch prompt processing through the browser: every scenario of the spec's "Test Scenarios"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from page_objects import BatchListPage, BatchUploadPage, LoginPage, ProgressTracker, ResultsDownloader
from utilities.check.download_reader import load_download
from utilities.check.download_validator import assert_download_matches
from utilities.check.input_reader import read_input, read_pasted
from utilities.gen import INVALID_VARIANTS
from utilities.pytest_plugin import User, lacks_capability

from .support import FIXTURE_FILES, ahead, progress_problems, progress_socket_available, require_running

pytestmark = [pytest.mark.e2e, pytest.mark.feature("Happy path")]

VALID_10 = FIXTURE_FILES / "valid-10.csv"
VALID_100 = FIXTURE_FILES / "valid-100.csv"
VALID_1000 = FIXTURE_FILES / "valid-1000.csv"
SOCKET_URL = re.compile(r"/api/v1/batch/ws/")
UPLOAD_URL = "**/api/v1/batch/upload"

# Rows 2 and 4 have no letters or digits. The bundled backend's enhancer fails such a prompt with a reason;
# a foreign target must fail them too for the partial-failure tests (they say so when it does not).
MIXED_PROMPTS = [
    "Write a short poem about the sea for a five-year-old",
    "!!! ???",
    "Explain how rainbows form, step by step",
    "--- ... ---",
    "Draft an email to my team announcing the product launch",
]
MIXED_TEXT = "\n".join(MIXED_PROMPTS)
FAILING_ROWS = [2, 4]
NEEDS_FAILED_ROWS = (
    "the target enhanced prompts that have no letters or digits; these tests need a target that fails "
    "such rows with a reason (the bundled reference backend does)"
)


def upload_requests(page: Page) -> list[str]:
    """Every upload request the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/api/v1/batch/upload" in request.url else None)
    return sent


def start_batch(upload_page: BatchUploadPage, tracker: ProgressTracker, path: Path) -> str:
    upload_page.upload_via_file_picker(path)
    batch_id = upload_page.wait_until_started()
    tracker.wait_until_loaded()
    return batch_id


# Happy path


@pytest.mark.story("Log in, upload 10 prompts, watch progress, download")
@pytest.mark.severity("blocker")
def test_user_logs_in_uploads_ten_prompts_and_downloads_the_results(
    page: Page, user: User, login_page: LoginPage, tmp_path: Path
) -> None:
    # Given a registered user who is not logged in
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    # When they log in and navigate to the batch upload
    login_page.log_in(user.credentials.email, user.credentials.password)
    login_page.wait_until_left()
    page.get_by_role("link", name="New batch").click()
    upload = BatchUploadPage(page)
    expect(upload.heading).to_be_visible()
    expect(page.get_by_text(user.credentials.email)).to_be_visible()
    # And upload a valid CSV of 10 prompts
    upload.upload_via_file_picker(VALID_10)
    upload.wait_until_started()
    # Then the progress bar runs to 100 % and the completion notice appears
    tracker = ProgressTracker(page)
    expect(tracker.progress_bar).to_be_visible()
    assert tracker.wait_until_status("completed") == "completed"
    expect(tracker.progress_bar).to_have_attribute("aria-valuenow", "100")
    expect(tracker.notification).to_have_text("Batch completed: all 10 prompts enhanced.")
    # And the downloaded results hold every prompt, enhanced, in input order
    downloaded = ResultsDownloader(page, tmp_path).download("csv")
    assert_download_matches(read_input(VALID_10), load_download(downloaded))


# File upload


@pytest.mark.feature("File upload")
@pytest.mark.story("Click to browse upload")
@pytest.mark.severity("critical")
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("valid-10.csv", id="csv", marks=pytest.mark.story("Valid CSV formats")),
        pytest.param("valid-10.xlsx", id="xlsx", marks=pytest.mark.story("Excel file (.xlsx) support")),
        pytest.param(
            "valid-10.txt", id="txt-one-per-line", marks=pytest.mark.story("Text file with one prompt per line")
        ),
        pytest.param("valid-10.json", id="json", marks=pytest.mark.story("JSON file")),
        pytest.param("multi-column.csv", id="multi-column-csv", marks=pytest.mark.story("Multi-column CSV")),
        pytest.param(
            "unicode-mix.csv",
            id="unicode-special-chars-very-long",
            marks=pytest.mark.story("Unicode content, special chars, very long prompts"),
        ),
    ],
)
def test_file_chosen_with_the_picker_is_processed_completely(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader, name: str
) -> None:
    path = FIXTURE_FILES / name
    start_batch(upload_page, tracker, path)
    assert tracker.wait_until_status("completed") == "completed"
    assert_download_matches(read_input(path), load_download(downloader.download("json")))


@pytest.mark.feature("File upload")
@pytest.mark.story("Drag and drop upload")
@pytest.mark.severity("critical")
def test_file_dropped_on_the_drop_zone_is_processed_completely(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    upload_page.drop_files(VALID_10)
    expect(upload_page.selected_file).to_have_text(re.compile(r"^Selected: valid-10\.csv "))
    upload_page.start_batch()
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed") == "completed"
    assert_download_matches(read_input(VALID_10), load_download(downloader.download("json")))


@pytest.mark.feature("File upload")
@pytest.mark.story("Paste prompts")
@pytest.mark.severity("critical")
def test_typed_prompts_are_processed_in_order(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    text = (FIXTURE_FILES / "valid-10.txt").read_text(encoding="utf-8")
    upload_page.upload_via_paste(text)
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed") == "completed"
    assert_download_matches(read_pasted(text), load_download(downloader.download("json")))


@pytest.mark.feature("File upload")
@pytest.mark.story("Paste prompts")
def test_prompts_pasted_from_the_clipboard_are_processed_in_order(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    text = "\n".join(
        [
            "Summarise the causes of the French Revolution",
            "List five uses for a paperclip",
            "Say 'good morning' in Japanese",
        ]
    )
    upload_page.paste_from_clipboard(text)
    expect(upload_page.paste_box).to_have_value(text)
    upload_page.start_batch()
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed") == "completed"
    assert_download_matches(read_pasted(text), load_download(downloader.download("json")))


@pytest.mark.feature("File upload")
@pytest.mark.story("Multiple file rejection")
@pytest.mark.parametrize("how", ["file-picker", "drag-drop"])
def test_multiple_files_are_rejected_before_anything_is_sent(
    upload_page: BatchUploadPage, user: User, how: str
) -> None:
    sent = upload_requests(upload_page.page)
    files = (VALID_10, FIXTURE_FILES / "valid-10.txt")
    if how == "file-picker":
        upload_page.choose_files(*files)
    else:
        upload_page.drop_files(*files)
    expect(upload_page.error).to_have_text("Upload one file at a time; you gave 2 files (valid-10.csv, valid-10.txt).")
    expect(upload_page.selected_file).to_be_hidden()
    upload_page.start_batch()
    expect(upload_page.error).to_have_text(re.compile(r"^Choose a file"))
    assert sent == []
    assert user.api.list_batches() == []


@pytest.mark.feature("Validation")
@pytest.mark.story("Unsupported file type")
def test_unsupported_file_type_is_rejected_before_anything_is_sent(
    upload_page: BatchUploadPage, user: User, tmp_path: Path
) -> None:
    sent = upload_requests(upload_page.page)
    document = tmp_path / "prompts.pdf"
    document.write_bytes(b"%PDF-1.4\n% not prompts\n")
    upload_page.choose_files(document)
    expect(upload_page.error).to_have_text(
        "prompts.pdf is not a supported file type. Use a .csv, .xlsx, .txt, .json or .jsonl file."
    )
    assert sent == []
    assert user.api.list_batches() == []


# Validation


@pytest.mark.feature("Validation")
@pytest.mark.severity("critical")
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("empty.csv", id="empty-file", marks=pytest.mark.story("Empty file")),
        pytest.param("invalid/header-only.csv", id="header-only", marks=pytest.mark.story("Empty file")),
        pytest.param("too-many-1001.csv", id="over-1000-prompts", marks=pytest.mark.story("Too many prompts (>1000)")),
        pytest.param("invalid-format.csv", id="invalid-csv", marks=pytest.mark.story("Invalid CSV format")),
        pytest.param(
            "missing-column.csv", id="missing-prompt-column", marks=pytest.mark.story("Missing required columns")
        ),
        pytest.param("invalid/nul-bytes.csv", id="invalid-characters", marks=pytest.mark.story("Invalid characters")),
        pytest.param("invalid/wrong-encoding.csv", id="wrong-encoding", marks=pytest.mark.story("Invalid characters")),
        pytest.param(
            "invalid/png-renamed.xlsx", id="image-named-xlsx", marks=pytest.mark.story("Unsupported file type")
        ),
    ],
)
def test_invalid_file_is_refused_with_the_servers_own_words(
    upload_page: BatchUploadPage, user: User, name: str
) -> None:
    path = FIXTURE_FILES / name
    # What the server says about this file, asked through the API: the page must show exactly that.
    refusal = user.api.upload_raw(path)
    assert refusal.status_code in (413, 415, 422), refusal.text
    message = refusal.json()["error"]["message"]

    upload_page.upload_via_file_picker(path)

    expect(upload_page.error).to_have_text(message)
    expect(upload_page.page).to_have_url(re.compile(r"/batches/new$"))
    assert user.api.list_batches() == []


@pytest.mark.feature("Validation")
@pytest.mark.story("File size limits (>10MB)")
@pytest.mark.severity("critical")
def test_file_over_10_mb_is_refused_before_anything_is_sent(
    upload_page: BatchUploadPage, user: User, tmp_path: Path
) -> None:
    filename, content = INVALID_VARIANTS["too_large"]()
    path = tmp_path / filename
    path.write_bytes(content)
    sent = upload_requests(upload_page.page)

    upload_page.choose_files(path)

    expect(upload_page.error).to_have_text(
        f"{filename} is 10.0 MB (10,485,761 bytes); the limit is 10 MB (10,485,760 bytes)."
    )
    expect(upload_page.selected_file).to_be_hidden()
    upload_page.start_batch()
    expect(upload_page.error).to_have_text(re.compile(r"^Choose a file"))
    assert sent == []
    assert user.api.list_batches() == []


# Progress tracking


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Real-time progress updates")
@pytest.mark.severity("critical")
@pytest.mark.slow
def test_progress_updates_in_real_time(upload_page: BatchUploadPage, tracker: ProgressTracker) -> None:
    start_batch(upload_page, tracker, VALID_1000)
    tracker.start_recording()
    require_running(tracker)

    tracker.wait_until_processed(500)

    timeline = tracker.timeline()
    running = sorted({s.processed for s in timeline if s.status == "running" and s.processed is not None})
    assert len(running) >= 3, f"the page showed only {running} rows processed while running"
    assert progress_problems(timeline) == []


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Accurate percentage calculation")
@pytest.mark.slow
def test_percent_shown_matches_the_api(upload_page: BatchUploadPage, tracker: ProgressTracker, user: User) -> None:
    batch_id = start_batch(upload_page, tracker, VALID_1000)
    tracker.start_recording()
    require_running(tracker)
    tracker.wait_until_processed(100)

    # Paused, the numbers hold still (once rows in flight at the pause have landed), so the page and
    # the API can be compared exactly.
    tracker.pause()
    assert tracker.wait_until_status("paused") == "paused"
    shown = tracker.wait_until_steady()
    expected = user.api.status(batch_id)

    assert (shown.processed, shown.succeeded, shown.failed, shown.total) == (
        expected["processed"],
        expected["succeeded"],
        expected["failed"],
        expected["total"],
    )
    assert shown.percent == expected["percent"]
    assert shown.percent_text == f"{expected['percent']:.1f}%"
    assert progress_problems(tracker.timeline()) == []


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Time remaining estimate")
@pytest.mark.severity("minor")
@pytest.mark.slow
def test_time_remaining_is_shown_and_falls(upload_page: BatchUploadPage, tracker: ProgressTracker) -> None:
    start_batch(upload_page, tracker, VALID_1000)
    tracker.start_recording()
    require_running(tracker)
    tracker.wait_until_processed(500)

    estimates = [(s.eta_seconds, s.eta_text) for s in tracker.timeline() if s.status == "running" and s.eta_seconds]
    assert len(estimates) >= 2, f"the page showed too few estimates: {estimates}"
    assert all(re.fullmatch(r"about \d+( min)?( \d+ s)?|about \d+ s", text or "") for _, text in estimates), estimates
    assert estimates[-1][0] < estimates[0][0], f"the estimate did not fall: {estimates}"


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Pause/resume capability")
@pytest.mark.slow
def test_pause_holds_progress_and_resume_continues(upload_page: BatchUploadPage, tracker: ProgressTracker) -> None:
    start_batch(upload_page, tracker, VALID_1000)
    tracker.start_recording()
    require_running(tracker)
    tracker.wait_until_processed(50)

    tracker.pause()
    assert tracker.wait_until_status("paused") == "paused"
    expect(tracker.resume_button).to_be_enabled()
    expect(tracker.pause_button).to_be_disabled()
    expect(tracker.eta).to_have_text("Paused")
    held = tracker.wait_until_steady()  # rows in flight at the pause have landed
    tracker.wait_for_updates(1)
    assert tracker.snapshot().processed == held.processed < 1000

    tracker.resume()
    assert tracker.wait_until_status("running") == "running"
    resumed = tracker.wait_until_processed(ahead(held, 100))
    assert resumed.processed >= ahead(held, 100)
    assert progress_problems(tracker.timeline()) == []


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Cancel operation")
@pytest.mark.slow
def test_cancel_stops_the_batch_and_marks_the_rest_cancelled(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader, user: User
) -> None:
    batch_id = start_batch(upload_page, tracker, VALID_1000)
    require_running(tracker)
    tracker.wait_until_processed(50)

    tracker.cancel()

    assert tracker.wait_until_status("cancelled") == "cancelled"
    expect(tracker.notification).to_contain_text("Batch cancelled after")
    for button in (tracker.pause_button, tracker.resume_button, tracker.cancel_button):
        expect(button).to_be_disabled()
    status = user.api.status(batch_id)
    assert status["status"] == "cancelled"
    assert status["processed"] < status["total"]
    results = load_download(downloader.download("json"))
    assert_download_matches(read_input(VALID_1000), results)
    assert {row.status for row in results.rows} <= {"succeeded", "cancelled"}
    assert any(row.status == "cancelled" for row in results.rows)


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Progress persistence on refresh")
@pytest.mark.slow
def test_progress_survives_a_page_reload(upload_page: BatchUploadPage, tracker: ProgressTracker) -> None:
    batch_id = start_batch(upload_page, tracker, VALID_1000)
    require_running(tracker)
    before = tracker.wait_until_processed(100)

    # Reloaded while running: the same batch, no count lost, and it keeps moving
    tracker.reload()
    assert tracker.batch_id == batch_id
    expect(upload_page.page.get_by_role("heading", name="valid-1000.csv")).to_be_visible()
    after = tracker.snapshot()
    assert after.status in ("running", "completed")
    assert after.processed is not None and after.processed >= before.processed
    tracker.wait_until_processed(ahead(after, 100))

    # Reloaded while paused: still paused, and resume is offered
    tracker.pause()
    assert tracker.wait_until_status("paused") == "paused"
    tracker.reload()
    assert tracker.wait_until_status("paused") == "paused"
    expect(tracker.resume_button).to_be_enabled()


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("Fallback to polling")
@pytest.mark.slow
def test_progress_falls_back_to_polling_when_the_socket_fails(
    upload_page: BatchUploadPage, tracker: ProgressTracker
) -> None:
    attempts: list[str] = []

    def refuse(socket: WebSocketRoute) -> None:
        attempts.append(socket.url)
        socket.close(code=1011, reason="e2e: the socket is down")

    upload_page.page.route_web_socket(SOCKET_URL, refuse)
    start_batch(upload_page, tracker, VALID_1000)
    require_running(tracker)

    assert tracker.wait_until_connection("polling") == "polling"
    expect(tracker.connection).to_have_text("Polling every 2 s (live updates unavailable)")
    seen = tracker.snapshot()
    assert tracker.wait_until_processed(ahead(seen, 200)).processed >= ahead(seen, 200)
    assert attempts, "the page never tried the progress socket"


@pytest.mark.feature("Progress tracking")
@pytest.mark.story("WebSocket reconnect")
@pytest.mark.severity("minor")
@pytest.mark.slow
def test_progress_returns_to_the_socket_when_it_can(
    upload_page: BatchUploadPage, tracker: ProgressTracker, user: User, base_url: str
) -> None:
    probe = user.api.upload(text="Check the socket")
    if not progress_socket_available(base_url, user.api, probe["batch_id"]):
        lacks_capability("the target has no progress WebSocket yet (docs/contract.md, 'Progress WebSocket')")
    socket_down = [True]

    def route(socket: WebSocketRoute) -> None:
        if socket_down[0]:
            socket.close(code=1011, reason="e2e: the socket is down")
        else:
            socket.connect_to_server()

    upload_page.page.route_web_socket(SOCKET_URL, route)
    start_batch(upload_page, tracker, VALID_1000)
    # The first estimate comes from a 2 s poll here, and going live takes a reconnect or two after that.
    require_running(tracker, min_remaining_s=6)
    assert tracker.wait_until_connection("polling") == "polling"

    socket_down[0] = False

    assert tracker.wait_until_connection("live", timeout=15_000) == "live"
    expect(tracker.connection).to_have_text("Live updates (WebSocket)")
    seen = tracker.snapshot()
    tracker.wait_until_processed(ahead(seen, 100))


# Result handling


@pytest.mark.feature("Result handling")
@pytest.mark.severity("critical")
@pytest.mark.parametrize(
    "fmt",
    [
        pytest.param("csv", marks=pytest.mark.story("Download as CSV")),
        pytest.param("json", marks=pytest.mark.story("Download as JSON")),
        pytest.param("zip", marks=pytest.mark.story("ZIP for large results")),
    ],
)
def test_results_download_matches_the_input(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader, fmt: str
) -> None:
    start_batch(upload_page, tracker, VALID_10)
    assert tracker.wait_until_status("completed") == "completed"

    downloaded = downloader.download(fmt)

    assert downloaded.suffix == f".{fmt}"
    assert_download_matches(read_input(VALID_10), load_download(downloaded, fmt))


@pytest.mark.feature("Result handling")
@pytest.mark.story("Results match input order, with enhanced prompts and technique metadata")
@pytest.mark.severity("critical")
def test_results_keep_input_order_with_enhanced_prompts_and_techniques(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    start_batch(upload_page, tracker, VALID_10)
    assert tracker.wait_until_status("completed") == "completed"

    preview = downloader.preview_rows()
    results = load_download(downloader.download("json"))

    assert [row.row_number for row in preview] == list(range(1, 11))
    assert [row.prompt for row in preview] == read_input(VALID_10).prompts
    assert all(row.status == "succeeded" and row.enhanced_prompt.strip() and row.techniques for row in preview)
    assert [(r.enhanced_prompt, r.techniques) for r in preview] == [
        (r.enhanced_prompt, r.techniques) for r in results.rows
    ]


@pytest.mark.feature("Result handling")
@pytest.mark.story("Error rows marked")
def test_error_rows_are_marked_in_the_preview_with_their_reason(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    upload_page.upload_via_paste(MIXED_TEXT)
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed_with_errors") == "completed_with_errors", NEEDS_FAILED_ROWS

    rows = downloader.preview_rows()

    assert [row.row_number for row in rows if row.status == "failed"] == FAILING_ROWS, NEEDS_FAILED_ROWS
    for row in rows:
        if row.status == "failed":
            assert row.marked and row.error.strip() and not row.enhanced_prompt, row
        else:
            assert not row.marked and row.error == "" and row.enhanced_prompt.strip(), row


# Error scenarios


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Network interruption during upload")
@pytest.mark.parametrize("cut", ["route-abort", "offline"])
def test_upload_cut_by_the_network_says_so_and_retry_succeeds(
    upload_page: BatchUploadPage, tracker: ProgressTracker, user: User, cut: str
) -> None:
    page = upload_page.page
    if cut == "offline":
        page.context.set_offline(True)
    else:
        page.route(UPLOAD_URL, lambda route: route.abort("internetdisconnected"))

    upload_page.upload_via_file_picker(VALID_10)

    expect(upload_page.error).to_contain_text("The upload did not reach the server")
    expect(upload_page.error).to_contain_text("valid-10.csv is still here")
    expect(upload_page.retry_upload).to_be_visible()
    assert user.api.list_batches() == []

    if cut == "offline":
        page.context.set_offline(False)
    else:
        page.unroute(UPLOAD_URL)
    upload_page.retry()

    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed") == "completed"
    assert len(user.api.list_batches()) == 1


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Server timeout during processing")
@pytest.mark.slow
def test_server_timeout_during_processing_shows_reconnecting_then_recovers(
    upload_page: BatchUploadPage, tracker: ProgressTracker
) -> None:
    page = upload_page.page
    outage = [False]
    sockets: list[WebSocketRoute] = []

    def status_route(route: Route) -> None:
        if outage[0]:
            route.abort("timedout")
        else:
            route.continue_()

    def socket_route(socket: WebSocketRoute) -> None:
        if outage[0]:
            socket.close(code=1011, reason="e2e: server timeout")
        else:
            sockets.append(socket)
            socket.connect_to_server()

    page.route("**/api/v1/batch/status/**", status_route)
    page.route_web_socket(SOCKET_URL, socket_route)
    start_batch(upload_page, tracker, VALID_1000)
    require_running(tracker)

    # The server stops answering: status requests time out and any live socket drops
    outage[0] = True
    for socket in sockets:
        socket.close(code=1011, reason="e2e: server timeout")

    assert tracker.wait_until_connection("reconnecting") == "reconnecting"
    expect(tracker.error).to_contain_text("Lost contact with the server")
    stalled = tracker.snapshot()

    # It answers again: the page recovers on its own and carries on from where the batch really is
    outage[0] = False

    assert tracker.wait_until_connection("polling", "live", "finished") in ("polling", "live", "finished")
    expect(tracker.error).to_be_hidden()
    assert tracker.wait_until_processed(ahead(stalled, 100)).processed >= ahead(stalled, 100)


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Partial batch failure")
@pytest.mark.severity("critical")
def test_partial_failure_completes_with_errors_and_counts_them(
    upload_page: BatchUploadPage, tracker: ProgressTracker, user: User
) -> None:
    upload_page.upload_via_paste(MIXED_TEXT)
    batch_id = upload_page.wait_until_started()

    assert tracker.wait_until_status("completed_with_errors") == "completed_with_errors", NEEDS_FAILED_ROWS
    shown = tracker.snapshot()
    assert (shown.processed, shown.succeeded, shown.failed) == (5, 3, 2)
    expect(tracker.notification).to_have_text(
        "Batch completed with errors: 3 enhanced, 2 failed. Failed rows are marked in the results; you can retry them."
    )
    status = user.api.status(batch_id)
    assert (status["succeeded"], status["failed"]) == (shown.succeeded, shown.failed)


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Partial batch failure: retry the failed rows")
def test_retry_failed_rows_runs_them_again(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    upload_page.upload_via_paste(MIXED_TEXT)
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed_with_errors") == "completed_with_errors", NEEDS_FAILED_ROWS
    tracker.start_recording()

    downloader.retry_failed_rows()

    # The same prompts still have no words, so the rerun ends as the first run did, with fresh results
    assert tracker.wait_until_finished_again() == "completed_with_errors"
    reopened = [s.status for s in tracker.timeline()]
    assert reopened[0] == "completed_with_errors" and {"queued", "running"} & set(reopened), reopened
    rows = downloader.preview_rows()
    assert [row.row_number for row in rows if row.status == "failed"] == FAILING_ROWS


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Invalid prompts in batch")
def test_invalid_prompts_fail_alone_and_the_download_says_why(
    upload_page: BatchUploadPage, tracker: ProgressTracker, downloader: ResultsDownloader
) -> None:
    upload_page.upload_via_paste(MIXED_TEXT)
    upload_page.wait_until_started()
    assert tracker.wait_until_status("completed_with_errors") == "completed_with_errors", NEEDS_FAILED_ROWS

    results = load_download(downloader.download("csv"))

    assert_download_matches(read_pasted(MIXED_TEXT), results)
    failed = [row for row in results.rows if row.status == "failed"]
    assert [row.row_number for row in failed] == FAILING_ROWS, NEEDS_FAILED_ROWS
    assert all(row.error and not row.enhanced_prompt for row in failed)
    assert all(row.status == "succeeded" for row in results.rows if row.row_number not in FAILING_ROWS)


@pytest.mark.feature("Error scenarios")
@pytest.mark.story("Concurrent batch uploads")
def test_concurrent_uploads_are_processed_side_by_side(
    signed_in_page: Page, upload_page: BatchUploadPage, tmp_path: Path
) -> None:
    # Given two tabs of the same user, each with a file chosen
    other_page = signed_in_page.context.new_page()
    other = BatchUploadPage(other_page)
    other.open()
    first_file, second_file = VALID_100, FIXTURE_FILES / "valid-10.xlsx"
    upload_page.choose_files(first_file)
    other.choose_files(second_file)
    # When both start at once
    upload_page.start_batch()
    other.start_batch()
    upload_page.wait_until_started()
    other.wait_until_started()
    # Then each tab follows its own batch to the end, and each result matches its own file
    for page, path in ((signed_in_page, first_file), (other_page, second_file)):
        assert ProgressTracker(page).wait_until_status("completed") == "completed"
        downloaded = ResultsDownloader(page, tmp_path / page.url.rsplit("/", 1)[-1]).download("json")
        assert_download_matches(read_input(path), load_download(downloaded))
    # And the batch list shows both
    batch_list = BatchListPage(other_page)
    batch_list.open()
    batch_list.wait_until_all_finished()
    assert sorted((row.name, row.status) for row in batch_list.rows()) == [
        ("valid-10.xlsx", "completed"),
        ("valid-100.csv", "completed"),
    ]
