"""Whether two downloads of one batch (CSV, JSON, ZIP) say the same thing, row by row."""

from __future__ import annotations

from dataclasses import dataclass

from utilities.check.download_reader import (
    TECHNIQUE_SEPARATOR,
    Download,
    primary_part,
)
from utilities.check.problem_text import Findings, capped, csv_canon, exact, show


@dataclass
class ComparisonReport(Findings):
    """Whether two downloads of one batch (CSV, JSON, ZIP) say the same thing, row by row."""

    left: str
    right: str
    rows_compared: int

    def summary(self) -> str:
        verdict = "equivalent" if self.ok else f"{len(self.issues)} difference(s)"
        return f"{self.left} vs {self.right}: {self.rows_compared} rows compared: {verdict}"


def compare_downloads(a: Download, b: Download) -> ComparisonReport:
    """Whether two downloads agree on rows, fields, statuses, errors and enhanced prompts (ZIP: its JSON)."""
    left, right = primary_part(a), primary_part(b)
    lenient = "csv" in (left.format, right.format)
    canon = csv_canon if lenient else exact
    problems = []
    if left.columns != right.columns:
        problems.append(f"columns are {left.columns} in {left.format}, {right.columns} in {right.format}")
    if len(left.rows) != len(right.rows):
        problems.append(f"{left.format} has {len(left.rows)} rows, {right.format} has {len(right.rows)}")
    for key in ("batch_id", "status", "total"):
        one, other = getattr(left, key), getattr(right, key)
        if one is not None and other is not None and one != other:
            problems.append(f"{key} is {one!r} in {left.format}, {other!r} in {right.format}")
    differences = []
    for position, (one, other) in enumerate(zip(left.rows, right.rows, strict=False), start=1):
        pairs = {"row_number": (one.row_number, other.row_number)}
        for name in dict.fromkeys([*one.fields, *other.fields]):
            pairs[f"field {name!r}"] = (canon(one.fields.get(name)), canon(other.fields.get(name)))
        pairs["enhanced_prompt"] = (canon(one.enhanced_prompt or ""), canon(other.enhanced_prompt or ""))
        pairs["techniques"] = tuple(canon(TECHNIQUE_SEPARATOR.join(row.techniques)) for row in (one, other))
        pairs["status"] = (one.status, other.status)
        pairs["error"] = (canon(one.error or ""), canon(other.error or ""))
        differences += [
            f"row {position}: {what} is {show(x)} in {left.format}, {show(y)} in {right.format}"
            for what, (x, y) in pairs.items()
            if x != y
        ]
    problems += capped(differences, "row differences")
    return ComparisonReport(left.format, right.format, min(len(left.rows), len(right.rows)), issues=problems)


def assert_downloads_equivalent(a: Download, b: Download) -> None:
    """Raise ``AssertionError`` listing every difference between two downloads of one batch."""
    report = compare_downloads(a, b)
    if not report.ok:
        raise AssertionError("\n  - ".join([report.summary(), *report.problems()]))
