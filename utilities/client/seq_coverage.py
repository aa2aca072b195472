"""Which of a batch's event seqs a progress-socket client has seen covered, message by message, across
reconnections — the one implementation of the contract's seq rules for every client the kit runs (the recorders'
report, the chaos watcher, the Locust socket user).

Every message covers ``from_seq``..``seq`` (``from_seq`` defaults to ``seq``). ``covered`` is the seq up to
which everything was covered. A snapshot stands for the whole history and resets ``covered`` to its seq, except
on a connection resumed with ``last_seq``, which owes a replay: a snapshot there leaves last_seq+1..seq missing. A
resumed connection starts from its ``last_seq``. A heartbeat covers nothing new, so one beyond ``covered`` leaves a
hole too. Advancing seqs never repeat and no seq goes back. With ``strict``, every event must also arrive as its
own message (a replay is never coalesced).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from utilities.client.progress_messages import ADVANCING_TYPES


@dataclass
class SeqFindings:
    """Everything a client's messages broke, so far."""

    duplicates: list[int] = field(default_factory=list)
    backwards: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    skipped: int = 0  # events that arrived inside a later message (coalesced), not on their own


@dataclass(frozen=True)
class Step:
    """What one message showed: the seqs it proved missing, and whether its seq repeated or went back."""

    missing: tuple[int, ...] = ()
    duplicate: bool = False
    backwards: bool = False


class SeqCoverage:
    """Feed it every message a client receives, in order, and ``connected()`` at each (re)connection."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.findings = SeqFindings()
        self.covered: int | None = None
        self._seen: set[int] = set()
        self._high: int | None = None
        self._opening = False
        self._resumed_from: int | None = None

    def connected(self, last_seq: int | None = None) -> None:
        """A new connection, resumed from ``last_seq`` (None: a fresh one, which starts with a snapshot)."""
        self._opening, self._resumed_from = True, last_seq
        if last_seq is not None:
            self.covered = last_seq

    def add(self, kind: str, seq: int | None, from_seq: int | None = None) -> Step:
        """One message of type ``kind``; a message without a seq covers nothing and shows nothing."""
        if seq is None:
            return Step()
        first = seq if from_seq is None else from_seq
        advancing = kind in ADVANCING_TYPES
        duplicate = advancing and seq in self._seen
        backwards = not duplicate and self._high is not None and seq < self._high
        missing: list[int] = []
        if kind == "snapshot":
            if self._opening and self._resumed_from is not None and seq > self._resumed_from:
                missing = list(range(self._resumed_from + 1, seq + 1))
            self.covered = seq
        elif advancing:
            if self.covered is not None and first > self.covered + 1:
                missing = list(range(self.covered + 1, first))
            merged = range(max(first, (self.covered or 0) + 1), seq)
            if self.strict:
                missing += list(merged)
            else:
                self.findings.skipped += len(merged)
            self._seen.add(seq)
            self.covered = seq if self.covered is None else max(self.covered, seq)
        elif self.covered is not None and seq > self.covered:
            missing = list(range(self.covered + 1, seq + 1))  # a heartbeat vouching for events never sent
            self.covered = seq
        self._high = seq if self._high is None else max(self._high, seq)
        self._opening = False
        if duplicate:
            self.findings.duplicates.append(seq)
        if backwards:
            self.findings.backwards.append(seq)
        self.findings.missing.extend(missing)
        return Step(tuple(missing), duplicate, backwards)
