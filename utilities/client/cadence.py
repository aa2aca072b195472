"""How often a progress view changed while its batch ran (the spec's "Progress every 2s"), judged fairly on a
starved machine.

A gap between two page updates has two possible causes: the page did not ask or did not render (a fault), or
the browser's own event loop could not run at all (the machine gave it no CPU). The page probe measures the
second in the page itself: a ticker that fires every few tens of milliseconds and notes every time it ran
late. Each gap is judged after taking off the time the page's event loop was stalled inside it. A page that
stops updating while its event loop runs freely has nothing to take off, so a frozen view still fails at
once; a page that updates on schedule but was starved for 0.6 s is not called late.

Samples and stalls may be dataclasses or dicts: ``at`` is seconds since the epoch (the browser's clock).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from utilities.client.spec_numbers import UPDATE_EVERY_S

# Polling is drift-compensated at 2 s, so a page's updates are 2 s apart give or take one status request
# and the browser's timer slack.
TIMER_SLACK_S = 0.35
FINAL_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics; None for no values.

    This is ``statistics.quantiles(method="inclusive")``: the same definition everywhere the kit reports a
    percentile of a recording.
    """
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    if q <= 0:
        return float(min(values))
    if q >= 100:
        return float(max(values))
    if float(q).is_integer():
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    return ordered[low] + (ordered[low + 1] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stall:
    """The page's event loop could not run for ``seconds`` up to ``at`` (epoch seconds)."""

    at: float
    seconds: float

    def overlap(self, start: float, end: float) -> float:
        """Seconds of this stall that fall inside [start, end]."""
        return max(0.0, min(end, self.at) - max(start, self.at - self.seconds))


@dataclass
class PageCadence:
    """The gaps between a progress view's updates; ``problems()`` is empty when the page kept up."""

    gaps_s: list[float]
    stalled_s: list[float] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    limit_s: float = UPDATE_EVERY_S
    slack_s: float = TIMER_SLACK_S

    def __post_init__(self) -> None:
        if not self.stalled_s:
            self.stalled_s = [0.0] * len(self.gaps_s)

    @property
    def samples(self) -> int:
        return len(self.gaps_s) + 1 if self.gaps_s else len(self.modes)

    @property
    def judged_s(self) -> list[float]:
        """Each gap less the time the page's event loop was stalled inside it."""
        return [gap - stalled for gap, stalled in zip(self.gaps_s, self.stalled_s, strict=True)]

    @property
    def late(self) -> list[float]:
        """The judged gaps over the limit and its slack."""
        return [gap for gap in self.judged_s if gap > self.limit_s + self.slack_s]

    @property
    def max_gap_s(self) -> float:
        return max(self.gaps_s, default=0.0)

    @property
    def max_judged_s(self) -> float:
        return max(self.judged_s, default=0.0)

    @property
    def mean_gap_s(self) -> float:
        return statistics.fmean(self.gaps_s) if self.gaps_s else 0.0

    def problems(self) -> list[str]:
        problems = []
        if self.late:
            shown = ", ".join(
                f"{gap:.2f} s ({stalled:.2f} s stalled)"
                for gap, stalled, judged in zip(self.gaps_s, self.stalled_s, self.judged_s, strict=True)
                if judged > self.limit_s + self.slack_s
            )
            problems.append(
                f"{len(self.late)} of {len(self.gaps_s)} gaps between page updates exceed {self.limit_s:.1f} s "
                f"(+{self.slack_s:.2f} s timer slack) after the page's own stalls are taken off: {shown}"
            )
        return problems

    def summary(self) -> str:
        """One line; ``judged max`` is what the limit is applied to (the qa summary reads it)."""
        return (
            f"{len(self.gaps_s)} gaps: max {self.max_gap_s:.2f} s, judged max {self.max_judged_s:.2f} s, "
            f"p95 {percentile(self.gaps_s, 95) or 0.0:.2f} s, mean {self.mean_gap_s:.2f} s, "
            f"page stalled {sum(self.stalled_s):.2f} s, over modes {sorted(set(self.modes))}"
        )

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "samples": self.samples,
            "gaps": len(self.gaps_s),
            "max_gap_s": rounded(max(self.gaps_s)) if self.gaps_s else None,
            "max_judged_gap_s": rounded(self.max_judged_s) if self.gaps_s else None,
            "p95_gap_s": rounded(percentile(self.gaps_s, 95)),
            "mean_gap_s": rounded(self.mean_gap_s) if self.gaps_s else None,
            "page_stalled_s": round(sum(self.stalled_s), 3),
            "limit_s": self.limit_s,
            "timer_slack_s": self.slack_s,
            "late_gaps_s": [round(gap, 3) for gap in self.late],
            "connection_modes": sorted(set(self.modes)),
        }


def sample_field(sample: Any, name: str) -> Any:
    """A field of a progress sample or stall, whether it is a dataclass or a dict."""
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def until_finished(timeline: Sequence[Any]) -> list[Any]:
    """The samples up to and including the first one that shows a final status."""
    kept = []
    for sample in timeline:
        kept.append(sample)
        if sample_field(sample, "status") in FINAL_STATUSES:
            break
    return kept


def page_cadence(timeline: Sequence[Any], stalls: Sequence[Any] = ()) -> PageCadence:
    """The gaps between the view's changes up to its first final status, each with the page's stall inside it."""
    kept = until_finished(timeline)
    measured = [Stall(float(sample_field(s, "at")), float(sample_field(s, "seconds"))) for s in stalls]
    gaps, stalled = [], []
    for earlier, later in itertools.pairwise(kept):
        start, end = sample_field(earlier, "at"), sample_field(later, "at")
        gaps.append(end - start)
        stalled.append(min(end - start, sum(stall.overlap(start, end) for stall in measured)))
    return PageCadence(gaps_s=gaps, stalled_s=stalled, modes=[sample_field(s, "connection") or "?" for s in kept])
