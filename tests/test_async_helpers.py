"""CadenceReport on made-up recordings (every rule, with known numbers), and ``batchqa watch`` end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from websockets.exceptions import ConnectionClosedError

from utilities.client.api import BatchApi, Credentials
from utilities.client.cadence import percentile
from utilities.client.cadence_report import CadenceReport
from utilities.client.progress_messages import Connection, Received, message_problems, seq_ranges, ws_url
from utilities.client.recorders import PollingRecorder, RecorderStopped, WebSocketRecorder
from utilities.client.watch import watch_command
from utilities.procs.backend import BackendProcess

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Progress WebSocket")

T0 = 1_750_000_000.0  # wall-clock origin of the made-up recordings


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def msg(
    kind: str, seq: int, processed: int, *, at: float, status: str = "running", total: int = 10, **extra: Any
) -> dict[str, Any]:
    """A socket message whose event happened ``at`` seconds after T0 (heartbeats: sent then).

    It covers its own seq (a snapshot: 1..seq) unless ``from_seq`` says otherwise.
    """
    body = {
        "type": kind,
        "seq": seq,
        "from_seq": 1 if kind == "snapshot" else seq,
        "batch_id": "b1",
        "status": status,
        "total": total,
        "processed": processed,
        "succeeded": processed,
        "failed": 0,
        "cancelled": 0,
        "percent": round(100 * processed / total, 1),
        "eta_seconds": None,
        "event_time": iso(T0 + at),
        "server_time": iso(T0 + at),
    }
    body.update(extra)
    return body


def recording(
    *items: tuple[float, dict[str, Any]] | tuple[float, dict[str, Any], int],
) -> list[Received]:
    """(arrival offset, message[, connection]) → ``Received`` with schema problems filled in."""
    out = []
    for item in items:
        at, message, connection = (*item, 0) if len(item) == 2 else item  # type: ignore[misc]
        out.append(Received(message, 100.0 + at, T0 + at, connection, tuple(message_problems(message))))
    return out


def connections(*resumed_from: int | None) -> list[Connection]:
    """The first connection opens at T0, each reconnection 0.9 s later than the one before."""
    return [Connection(i, 100.0 + 0.9 * i, T0 + 0.9 * i, last_seq) for i, last_seq in enumerate(resumed_from)]


def build(messages: Sequence[Received], conns: Sequence[Connection] | None = None, **options: Any) -> CadenceReport:
    return CadenceReport.build(
        messages, conns or connections(None), source="test", batch_id="b1", started_at=100.0, **options
    )


def clean_run() -> list[Received]:
    return recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.6, msg("progress", 3, 5, at=0.55)),
        (1.6, msg("heartbeat", 3, 5, at=1.6)),
        (2.1, msg("progress", 4, 10, at=2.05)),
        (2.1, msg("completed", 5, 10, at=2.06, status="completed", eta_seconds=0.0)),
    )


def test_clean_run_has_no_problems_and_its_numbers() -> None:
    report = build(clean_run())
    assert report.problems() == []
    assert (report.messages, report.connections, report.terminal_status) == (5, 1, "completed")
    assert report.by_type == {"snapshot": 1, "progress": 2, "heartbeat": 1, "completed": 1}
    assert report.gap_max_s == pytest.approx(1.0)
    assert report.gap_mean_s == pytest.approx(0.5)
    assert report.time_to_first_message_s == pytest.approx(0.1)
    assert report.time_to_first_progress_s == pytest.approx(0.6)
    assert report.lag_p50_s == pytest.approx(0.05, abs=1e-3) and report.lag_max_s == pytest.approx(0.05, abs=1e-3)
    assert report.final_state == {
        "seq": 5,
        "status": "completed",
        "total": 10,
        "processed": 10,
        "succeeded": 10,
        "failed": 0,
        "cancelled": 0,
        "percent": 100.0,
    }
    assert "problems: none" in report.render()


def test_percentile_interpolates_and_handles_no_values() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(range(101)), 95) == pytest.approx(95.0)


def test_a_gap_over_the_allowed_maximum_is_a_problem() -> None:
    report = build(clean_run(), max_gap_s=0.9)
    assert report.problems() == ["longest gap 1.000 s exceeds 0.900 s"]


def test_duplicate_and_backwards_seqs_are_problems() -> None:
    report = build(
        recording(
            (0.1, msg("snapshot", 2, 0, at=0.0)),
            (0.2, msg("progress", 3, 1, at=0.2)),
            (0.3, msg("progress", 3, 1, at=0.2)),
            (0.4, msg("progress", 5, 3, at=0.4)),
            (0.5, msg("progress", 4, 2, at=0.3)),
            (0.6, msg("completed", 6, 10, at=0.6, status="completed")),
        )
    )
    assert report.duplicate_seq == [3]
    assert report.out_of_order_seq == [4]
    assert report.percent_never_decreased is False, "seq 4 came after seq 5 with less done"


def test_coalesced_messages_cover_their_range_but_strict_mode_wants_every_event_alone() -> None:
    coalesced = recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.4, msg("progress", 5, 3, at=0.4, from_seq=3)),
        (0.7, msg("completed", 9, 10, at=0.7, status="completed", from_seq=6)),
    )
    assert build(coalesced).problems() == []
    assert build(coalesced).skipped_seq == 5
    assert build(coalesced, strict_seq=True).missing_seq == [3, 4, 6, 7, 8]


def test_a_planted_hole_is_reported_as_a_missing_range() -> None:
    # Seqs 4..6 are covered by no message: the progress at 7 says it covers only 7.
    holed = recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.2, msg("progress", 3, 1, at=0.2)),
        (0.5, msg("progress", 7, 5, at=0.5)),
        (0.6, msg("progress", 9, 7, at=0.6, from_seq=8)),
        (0.7, msg("completed", 12, 10, at=0.7, status="completed", from_seq=11)),
    )
    report = build(holed)
    assert report.missing_seq == [4, 5, 6, 10]
    assert "missing seq (covered by no message): 4..6, 10" in report.problems()
    assert report.skipped_seq == 2, "seqs 8 and 11 arrived inside the messages of 9 and 12"


def test_a_heartbeat_ahead_of_what_was_covered_leaves_a_hole() -> None:
    report = build(
        recording(
            (0.1, msg("snapshot", 2, 0, at=0.0)),
            (1.1, msg("heartbeat", 4, 0, at=1.1)),
            (1.2, msg("completed", 5, 10, at=1.2, status="completed")),
        )
    )
    assert report.missing_seq == [3, 4]


def test_a_message_whose_range_is_backwards_or_a_heartbeat_that_covers_is_a_schema_problem() -> None:
    assert message_problems(msg("progress", 5, 1, at=0.0, from_seq=6)) == ["from_seq 6 is after seq 5"]
    assert message_problems(msg("heartbeat", 5, 1, at=0.0, from_seq=4)) == [
        "heartbeat covers 4..5: it must cover nothing new (from_seq = seq)"
    ]
    assert message_problems(msg("snapshot", 5, 1, at=0.0, from_seq=2)) != [], "a snapshot covers 1..seq"


def test_seq_ranges_reads_like_a_person_writes_them() -> None:
    assert seq_ranges([9, 3, 4, 5, 11, 12]) == "3..5, 9, 11..12"
    assert seq_ranges([]) == ""


def test_a_resumed_connection_must_start_right_after_last_seq() -> None:
    good = recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.2, msg("progress", 3, 1, at=0.2)),
        (1.0, msg("progress", 4, 2, at=0.5), 1),
        (1.0, msg("progress", 5, 3, at=0.8), 1),
        (1.1, msg("completed", 6, 10, at=1.1, status="completed"), 1),
    )
    report = build(good, connections(None, 3))
    assert report.problems() == [] and report.connections == 2
    assert report.lag_max_s == pytest.approx(0.0, abs=1e-3), "replayed events are not counted as lag"

    gap = recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.2, msg("progress", 3, 1, at=0.2)),
        (1.0, msg("progress", 5, 3, at=0.8), 1),
        (1.1, msg("completed", 6, 10, at=1.1, status="completed"), 1),
    )
    assert build(gap, connections(None, 3)).missing_seq == [4]

    merged = recording(
        (0.1, msg("snapshot", 2, 0, at=0.0)),
        (0.2, msg("progress", 3, 1, at=0.2)),
        (1.0, msg("progress", 5, 3, at=0.8, from_seq=4), 1),
        (1.1, msg("completed", 6, 10, at=1.1, status="completed"), 1),
    )
    assert build(merged, connections(None, 3)).problems() == [], "live after a resume, 4..5 in one message"

    heartbeat_first = recording(
        (0.1, msg("snapshot", 3, 1, at=0.0)),
        (1.0, msg("heartbeat", 3, 1, at=1.0), 1),
        (1.5, msg("progress", 4, 2, at=1.5), 1),
        (1.6, msg("completed", 5, 10, at=1.6, status="completed"), 1),
    )
    assert build(heartbeat_first, connections(None, 3)).problems() == [], "nothing new yet: a heartbeat may lead"

    snapshot_instead = recording(
        (0.1, msg("snapshot", 3, 1, at=0.0)),
        (1.0, msg("snapshot", 6, 10, at=1.0, status="completed"), 1),
    )
    assert build(snapshot_instead, connections(None, 3)).missing_seq == [4, 5, 6]


def test_inconsistent_counts_are_problems() -> None:
    report = build(
        recording(
            (0.1, msg("snapshot", 2, 4, at=0.0, succeeded=3)),
            (0.2, msg("progress", 3, 5, at=0.2, percent=40.0)),
            (0.3, msg("completed", 4, 8, at=0.3, status="completed")),
        )
    )
    assert report.counts_consistent is False
    assert report.state_problems == [
        "snapshot#2: processed 4 != succeeded 3 + failed 0",
        "progress#3: percent 40.0 does not match 5/10",
        "completed#4: completed with 8 + 0 of 10 rows settled",
    ]


def test_one_seq_carries_one_state() -> None:
    report = build(
        recording(
            (0.1, msg("progress", 3, 5, at=0.1)),
            (1.1, msg("heartbeat", 3, 6, at=1.1)),
            (1.2, msg("completed", 4, 10, at=1.2, status="completed")),
        )
    )
    assert report.state_problems == ["heartbeat#3: a different state than another message with seq 3"]


def test_a_retry_may_start_percent_over() -> None:
    report = build(
        recording(
            (0.1, msg("completed", 5, 10, at=0.1, status="completed_with_errors", succeeded=8, failed=2)),
            (0.2, msg("status", 6, 8, at=0.2, status="queued", succeeded=8, failed=0)),
            (0.3, msg("completed", 7, 10, at=0.3, status="completed")),
        )
    )
    assert report.percent_never_decreased is True
    assert report.problems() == []


def test_missing_terminal_event_is_a_problem_unless_not_required() -> None:
    partial = clean_run()[:3]
    assert "no message with a terminal status arrived" in build(partial).problems()
    assert build(partial, require_terminal=False).problems() == []


def test_schema_and_heartbeat_time_violations_are_reported() -> None:
    broken = msg("heartbeat", 3, 5, at=1.0)
    broken["event_time"] = iso(T0)
    del broken["eta_seconds"]
    problems = build(recording((0.1, broken))).schema_problems
    assert any("'eta_seconds' is a required property" in p for p in problems)
    assert any("event_time differs from server_time" in p for p in problems)


def test_eta_error_is_predicted_finish_minus_real_finish() -> None:
    report = build(
        recording(
            (0.1, msg("progress", 3, 2, at=1.0, eta_seconds=4.0)),  # says 5.0, finish is 6.0: -1.0
            (1.1, msg("heartbeat", 3, 2, at=2.0, eta_seconds=4.0)),  # a repeat: not judged again
            (2.1, msg("progress", 4, 6, at=3.0, eta_seconds=3.5)),  # says 6.5: +0.5
            (5.1, msg("completed", 5, 10, at=6.0, status="completed", eta_seconds=0.0)),
        )
    )
    assert report.eta_samples == 2
    assert report.eta_bias_s == pytest.approx(-0.25)
    assert report.eta_error_max_s == pytest.approx(1.0)


def test_ws_url_speaks_ws_or_wss_and_carries_the_query() -> None:
    assert ws_url("http://127.0.0.1:8000/", "b1") == "ws://127.0.0.1:8000/api/v1/batch/ws/b1"
    assert ws_url("https://qa.example.test", "b1", last_seq=7, token="t") == (
        "wss://qa.example.test/api/v1/batch/ws/b1?last_seq=7&token=t"
    )


def test_polling_recorder_follows_a_batch_to_its_end(api: BatchApi, backend: BackendProcess) -> None:
    batch = api.upload(content=csv_bytes(prompt_rows(5)), filename="poll.csv")["batch_id"]
    with PollingRecorder(backend.url, batch, token=api.token, interval_s=0.1) as recorder:
        assert recorder.join(timeout=60)
    report = recorder.report()
    assert report.problems() == [], report.render()
    assert report.final_state is not None and report.final_state["status"] == "completed"


def test_polling_recorder_stops_on_a_refusal(backend: BackendProcess) -> None:
    with PollingRecorder(backend.url, "0" * 32, token="not-a-token", interval_s=0.1) as recorder:
        assert recorder.join(timeout=30)
    assert recorder.errors == ["status endpoint answered 401"]


@pytest.mark.parametrize("mode", ["socket", "poll"])
def test_watch_shows_a_batch_to_its_end_and_prints_the_report(
    mode: str, slow_api: BatchApi, slow_backend: BackendProcess
) -> None:
    batch = slow_api.upload(content=csv_bytes(prompt_rows(30)), filename="watch.csv")["batch_id"]
    args = [batch, "--base-url", slow_backend.url, "--token", slow_api.token or "", "--max-gap", "2.25"]
    if mode == "poll":
        args += ["--poll", "--interval", "0.2"]
    result = CliRunner().invoke(watch_command, args)
    assert result.exit_code == 0, result.output
    assert f"on batch {batch}" in result.output
    assert "final: completed 30/30" in result.output
    assert "problems: none" in result.output


def test_watch_logs_in_with_email_and_password_and_prints_json(backend: BackendProcess) -> None:
    creds = Credentials.fresh("watch")
    with BatchApi(backend.url) as api:
        api.register(creds)
        api.login(creds)
        batch = api.upload(content=csv_bytes(prompt_rows(3)), filename="w.csv")["batch_id"]
        api.wait_until(batch)
    args = [batch, "--base-url", backend.url, "--email", creds.email, "--password", creds.password, "--json"]
    result = CliRunner().invoke(watch_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["terminal_status"], report["problems"]) == ("completed", [])
    assert report["by_type"] == {"snapshot": 1}, "an ended batch: the snapshot is the whole story"


def test_watch_exits_1_when_the_socket_is_refused(backend: BackendProcess) -> None:
    result = CliRunner().invoke(watch_command, ["0" * 32, "--base-url", backend.url, "--token", "forged"])
    assert result.exit_code == 1
    assert "closed by the server: 4401" in result.output


def test_watch_needs_credentials() -> None:
    result = CliRunner().invoke(watch_command, ["b1", "--base-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "give --token, or --email and --password" in result.output


@pytest.mark.parametrize(
    "reset",
    [ConnectionResetError(104, "Connection reset by peer"), ConnectionClosedError(None, None)],
    ids=["in-connect", "while-sending-the-handshake"],
)
def test_a_connection_reset_during_the_handshake_is_retried_like_a_refused_one(
    reset: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that is (re)starting can reset the connection at any step of the opening handshake; when
    the request is being sent, websockets reports it as ConnectionClosed rather than OSError."""
    attempts: list[str] = []

    def resetting_connect(url: str, **_kwargs: Any) -> None:
        attempts.append(url)
        raise reset

    monkeypatch.setattr("utilities.client.socket_follower.connect", resetting_connect)
    recorder = WebSocketRecorder("http://127.0.0.1:9", "b-1", token="t", reconnect_timeout_s=0.5).start()

    with pytest.raises(RecorderStopped):
        recorder.wait_for_terminal(timeout=30)

    assert len(attempts) >= 2, "the reset attempt was retried"
    assert [e for e in recorder.errors if e.startswith("could not connect for")], recorder.errors
    assert not [e for e in recorder.errors if "crashed" in e], recorder.errors
