"""``CadenceReport``: what a client saw of one batch's progress turned into numbers and a ``problems()`` list —
cadence, seq integrity (a seq no message covered is reported missing), state consistency, ETA accuracy, lag.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from utilities.client.api import TERMINAL_STATUSES
from utilities.client.cadence import percentile
from utilities.client.progress_messages import (
    ADVANCING_TYPES,
    FINISHED_STATUSES,
    STATE_FIELDS,
    Connection,
    Received,
    parse_time,
    seq_ranges,
)
from utilities.client.seq_coverage import SeqCoverage, SeqFindings


@dataclass
class CadenceReport:
    """What a client saw of one batch's progress: cadence, seq integrity, state consistency, ETA accuracy.

    Gaps are measured between consecutive messages of one connection (the server's promise);
    ``longest_silence_s`` also spans reconnections and the wait for the first message. Jitter is the
    standard deviation of the gaps. Lag is arrival time minus ``event_time`` for live advancing
    messages (replayed ones are history, not lag). ETA error is, per running state, (event time +
    ``eta_seconds``) minus the real finish time: positive means the ETA said later than it was.
    """

    source: str
    batch_id: str
    messages: int
    by_type: dict[str, int]
    connections: int
    duration_s: float | None
    time_to_first_message_s: float | None
    time_to_first_progress_s: float | None
    gap_mean_s: float | None
    gap_p50_s: float | None
    gap_p95_s: float | None
    gap_max_s: float | None
    jitter_s: float | None
    longest_silence_s: float | None
    lag_p50_s: float | None
    lag_p95_s: float | None
    lag_max_s: float | None
    last_seq: int | None
    skipped_seq: int
    duplicate_seq: list[int]
    out_of_order_seq: list[int]
    missing_seq: list[int]
    percent_never_decreased: bool
    counts_consistent: bool
    terminal_status: str | None
    final_state: dict[str, Any] | None
    eta_samples: int
    eta_error_p50_s: float | None
    eta_error_max_s: float | None
    eta_bias_s: float | None
    close_codes: list[int]
    schema_problems: list[str] = field(default_factory=list)
    state_problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_gap_allowed_s: float | None = None
    require_terminal: bool = True
    strict_seq: bool = False

    def problems(self) -> list[str]:
        """Everything that breaks the contract or the stated limits; empty when the run was clean."""
        found = [f"schema: {p}" for p in self.schema_problems]
        if self.duplicate_seq:
            found.append(f"duplicate seq: {self.duplicate_seq[:20]}")
        if self.out_of_order_seq:
            found.append(f"seq went backwards at: {self.out_of_order_seq[:20]}")
        if self.missing_seq:
            found.append(f"missing seq (covered by no message): {seq_ranges(self.missing_seq)}")
        found.extend(self.state_problems)
        if self.require_terminal and self.terminal_status is None:
            found.append("no message with a terminal status arrived")
        if self.max_gap_allowed_s is not None and (self.gap_max_s or 0.0) > self.max_gap_allowed_s:
            found.append(f"longest gap {self.gap_max_s:.3f} s exceeds {self.max_gap_allowed_s:.3f} s")
        found.extend(self.errors)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems()}

    def render(self) -> str:
        """A few lines a person reads at the end of ``batchqa watch``."""

        def s(value: float | None) -> str:
            return "–" if value is None else f"{value:.3f} s"

        types = ", ".join(f"{k} {v}" for k, v in sorted(self.by_type.items()))
        final = self.final_state or {}
        lines = [
            f"{self.source} on batch {self.batch_id}: {self.messages} messages ({types}) "
            f"over {s(self.duration_s)}, {self.connections} connection(s)",
            f"gaps: mean {s(self.gap_mean_s)}, p50 {s(self.gap_p50_s)}, p95 {s(self.gap_p95_s)}, "
            f"max {s(self.gap_max_s)}; jitter {s(self.jitter_s)}; longest silence {s(self.longest_silence_s)}",
            f"first message after {s(self.time_to_first_message_s)}, first progress after "
            f"{s(self.time_to_first_progress_s)}; lag p50 {s(self.lag_p50_s)}, p95 {s(self.lag_p95_s)}, "
            f"max {s(self.lag_max_s)}",
            f"seq: last {self.last_seq}, merged by coalescing {self.skipped_seq}, duplicates "
            f"{len(self.duplicate_seq)}, backwards {len(self.out_of_order_seq)}, missing {len(self.missing_seq)}",
            f"percent never decreased: {self.percent_never_decreased}; counts consistent: {self.counts_consistent}; "
            f"terminal: {self.terminal_status or 'none'}",
            f"final: {final.get('status')} {final.get('processed')}/{final.get('total')} "
            f"(succeeded {final.get('succeeded')}, failed {final.get('failed')}, cancelled {final.get('cancelled')})",
            f"ETA error over {self.eta_samples} estimates: p50 {s(self.eta_error_p50_s)}, "
            f"max {s(self.eta_error_max_s)}, bias {s(self.eta_bias_s)}",
        ]
        problems = self.problems()
        lines.append("problems: none" if not problems else "problems:\n  " + "\n  ".join(problems))
        return "\n".join(lines)

    @classmethod
    def build(
        cls,
        messages: Sequence[Received],
        connections: Sequence[Connection],
        *,
        source: str,
        batch_id: str,
        started_at: float | None = None,
        finished_at: float | None = None,
        errors: Iterable[str] = (),
        max_gap_s: float | None = None,
        require_terminal: bool = True,
        strict_seq: bool = False,
    ) -> CadenceReport:
        started = started_at if started_at is not None else (messages[0].at if messages else None)
        gaps = _gaps(messages)
        seqs = _seq_checks(messages, connections, strict=strict_seq)
        state_problems, percent_ok, counts_ok = _state_checks(messages)
        terminal = next((m for m in messages if m.status in TERMINAL_STATUSES), None)
        first_progress = _first_progress(messages)
        eta_errors = _eta_errors(messages)
        lags = _lags(messages, connections)
        silences = [b.at - a.at for a, b in itertools.pairwise(messages)]
        if messages and started is not None:
            silences.append(messages[0].at - started)
        if messages and finished_at is not None and terminal is None:
            silences.append(finished_at - messages[-1].at)
        last = messages[-1] if messages else None
        return cls(
            source=source,
            batch_id=batch_id,
            messages=len(messages),
            by_type=dict(Counter(m.kind for m in messages)),
            connections=len(connections),
            duration_s=(finished_at - started) if finished_at is not None and started is not None else None,
            time_to_first_message_s=(messages[0].at - started) if messages and started is not None else None,
            time_to_first_progress_s=(first_progress.at - started) if first_progress and started is not None else None,
            gap_mean_s=statistics.fmean(gaps) if gaps else None,
            gap_p50_s=percentile(gaps, 50),
            gap_p95_s=percentile(gaps, 95),
            gap_max_s=max(gaps) if gaps else None,
            jitter_s=statistics.pstdev(gaps) if len(gaps) > 1 else None,
            longest_silence_s=max(silences) if silences else None,
            lag_p50_s=percentile(lags, 50),
            lag_p95_s=percentile(lags, 95),
            lag_max_s=max(lags) if lags else None,
            last_seq=max((m.seq for m in messages if m.seq is not None), default=None),
            skipped_seq=seqs.skipped,
            duplicate_seq=seqs.duplicates,
            out_of_order_seq=seqs.backwards,
            missing_seq=seqs.missing,
            percent_never_decreased=percent_ok,
            counts_consistent=counts_ok,
            terminal_status=terminal.status if terminal else None,
            final_state={k: last.message.get(k) for k in ("seq", *STATE_FIELDS)} if last else None,
            eta_samples=len(eta_errors),
            eta_error_p50_s=percentile([abs(e) for e in eta_errors], 50),
            eta_error_max_s=max((abs(e) for e in eta_errors), default=None),
            eta_bias_s=statistics.fmean(eta_errors) if eta_errors else None,
            close_codes=[c.close_code for c in connections if c.close_code is not None],
            schema_problems=[f"{m.kind}#{m.seq}: {p}" for m in messages for p in m.problems],
            state_problems=state_problems,
            errors=list(errors),
            max_gap_allowed_s=max_gap_s,
            require_terminal=require_terminal,
            strict_seq=strict_seq,
        )


def _gaps(messages: Sequence[Received]) -> list[float]:
    """Arrival gaps between consecutive messages of the same connection."""
    return [b.at - a.at for a, b in itertools.pairwise(messages) if a.connection == b.connection]


def _seq_checks(messages: Sequence[Received], connections: Sequence[Connection], *, strict: bool) -> SeqFindings:
    """The seq rules (``SeqCoverage``) over a whole recording, connection by connection."""
    coverage = SeqCoverage(strict=strict)
    resumed_from = {c.index: c.last_seq for c in connections}
    connection: int | None = None
    for m in messages:
        if m.connection != connection:
            connection = m.connection
            coverage.connected(resumed_from.get(connection))
        if m.from_seq is not None:
            coverage.add(m.kind, m.seq, m.from_seq)
    return coverage.findings


def _state_checks(messages: Sequence[Received]) -> tuple[list[str], bool, bool]:
    """Per-message count rules, one state per seq, and percent never decreasing (a retry starts over)."""
    problems: list[str] = []
    percent_ok = counts_ok = True
    by_seq: dict[int, tuple[Any, ...]] = {}
    previous: Received | None = None
    for m in messages:
        msg = m.message
        label = f"{m.kind}#{m.seq}"
        try:
            total, processed, succeeded, failed = msg["total"], msg["processed"], msg["succeeded"], msg["failed"]
            cancelled, percent, status = msg["cancelled"], msg["percent"], msg["status"]
        except KeyError:
            continue  # the schema check names what is missing
        rules = [
            (processed == succeeded + failed, f"processed {processed} != succeeded {succeeded} + failed {failed}"),
            (processed + cancelled <= total, f"processed {processed} + cancelled {cancelled} > total {total}"),
            (
                total > 0 and abs(percent - 100 * processed / total) <= 0.05 + 1e-9,
                f"percent {percent} does not match {processed}/{total}",
            ),
            (
                status not in FINISHED_STATUSES or processed + cancelled == total,
                f"{status} with {processed} + {cancelled} of {total} rows settled",
            ),
            (status != "completed" or failed == 0, f"completed with {failed} failed rows"),
            (status != "failed" or succeeded == 0, f"failed with {succeeded} succeeded rows"),
        ]
        for ok, text in rules:
            if not ok:
                counts_ok = False
                problems.append(f"{label}: {text}")
        state = tuple(msg.get(k) for k in STATE_FIELDS)
        if m.seq is not None and by_seq.setdefault(m.seq, state) != state:
            counts_ok = False
            problems.append(f"{label}: a different state than another message with seq {m.seq}")
        if previous is not None:
            restarted = status == "queued" and previous.status != "queued"  # retry: failed rows run again
            if not restarted and percent < previous.message.get("percent", 0):
                percent_ok = False
                problems.append(f"{label}: percent fell from {previous.message['percent']} to {percent}")
        previous = m
    return problems, percent_ok, counts_ok


def _first_progress(messages: Sequence[Received]) -> Received | None:
    """The first message showing rows done beyond what the first message showed."""
    if not messages:
        return None
    start = messages[0].message.get("processed", 0)
    return next((m for m in messages if m.message.get("processed", 0) > start), None)


def _event_epoch(m: Received) -> float:
    return parse_time(m.message.get("event_time")) or m.wall


def _eta_errors(messages: Sequence[Received]) -> list[float]:
    finish = next((m for m in messages if m.status in FINISHED_STATUSES), None)
    if finish is None:
        return []
    actual = parse_time(finish.message.get("event_time")) or parse_time(finish.message.get("finished_at"))
    actual = actual or finish.wall
    errors, used = [], set()
    for m in messages:
        eta = m.message.get("eta_seconds")
        # Heartbeats repeat an old estimate at a new time; each state (seq) is judged once.
        if m.kind == "heartbeat" or m.status != "running" or not isinstance(eta, int | float) or m.seq in used:
            continue
        used.add(m.seq)
        errors.append(_event_epoch(m) + eta - actual)
    return errors


def _lags(messages: Sequence[Received], connections: Sequence[Connection]) -> list[float]:
    opened = {c.index: c.opened_wall for c in connections}
    lags = []
    for m in messages:
        event = parse_time(m.message.get("event_time"))
        if m.kind not in ADVANCING_TYPES or event is None:
            continue
        if event < opened.get(m.connection, -math.inf):
            continue  # replayed from storage: it happened before this connection existed
        lags.append(m.wall - event)
    return lags
