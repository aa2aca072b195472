"""The contract's seq rules, message by message: what each kind of message covers, holes live and across a
resumed connection, repeats and seqs going back, coalescing allowed live and refused in strict mode."""

from __future__ import annotations

import pytest

from utilities.client.seq_coverage import SeqCoverage

pytestmark = pytest.mark.area("Progress WebSocket")


def feed(coverage: SeqCoverage, *messages: tuple[str, int, int | None]) -> list[tuple[int, ...]]:
    return [coverage.add(kind, seq, first).missing for kind, seq, first in messages]


def test_ranges_that_join_show_nothing_and_coalescing_is_counted() -> None:
    coverage = SeqCoverage()
    coverage.connected()
    steps = feed(coverage, ("snapshot", 3, None), ("progress", 6, 4), ("heartbeat", 6, 6), ("completed", 7, None))
    assert steps == [(), (), (), ()]
    assert coverage.findings.missing == [] and coverage.findings.skipped == 2 and coverage.covered == 7


def test_a_range_that_does_not_join_is_a_hole_named_by_its_seqs() -> None:
    coverage = SeqCoverage()
    coverage.connected()
    assert feed(coverage, ("snapshot", 3, None), ("progress", 9, 7)) == [(), (4, 5, 6)]


def test_a_heartbeat_ahead_of_what_was_covered_vouches_for_events_never_sent() -> None:
    coverage = SeqCoverage()
    coverage.connected()
    assert feed(coverage, ("snapshot", 3, None), ("heartbeat", 5, 5)) == [(), (4, 5)]


def test_a_resumed_connection_owes_a_replay_a_snapshot_does_not_pay() -> None:
    replayed, skipped = SeqCoverage(), SeqCoverage()
    for coverage in (replayed, skipped):
        coverage.connected()
        feed(coverage, ("snapshot", 2, None), ("progress", 4, 3))
        coverage.connected(last_seq=4)
    assert feed(replayed, ("progress", 5, None), ("progress", 6, None)) == [(), ()]
    assert feed(skipped, ("snapshot", 8, None)) == [(5, 6, 7, 8)]


def test_a_repeated_advancing_seq_and_a_seq_going_back_are_each_named() -> None:
    coverage = SeqCoverage()
    coverage.connected()
    feed(coverage, ("snapshot", 1, None), ("progress", 2, None), ("progress", 4, 3))
    repeat = coverage.add("progress", 4)
    back = coverage.add("heartbeat", 3, 3)
    assert repeat.duplicate and not repeat.backwards
    assert back.backwards and not back.duplicate
    assert coverage.findings.duplicates == [4] and coverage.findings.backwards == [3]


def test_strict_mode_refuses_coalescing() -> None:
    coverage = SeqCoverage(strict=True)
    coverage.connected(last_seq=0)
    assert feed(coverage, ("progress", 3, 1)) == [(1, 2)]


def test_a_message_without_a_seq_covers_and_shows_nothing() -> None:
    coverage = SeqCoverage()
    coverage.connected()
    assert coverage.add("error", None).missing == () and coverage.covered is None
