"""Check a batch download (CSV, JSON or ZIP per docs/contract.md) against the file the user uploaded: every row
present once and in order, fields and prompts intact, statuses and errors consistent, formula cells neutralised,
the ZIP's manifest true. Parsing lives in ``utilities.check.download_reader``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from utilities.check.download_comparison import compare_downloads
from utilities.check.download_reader import (
    ZIP_MEMBERS,
    Download,
    primary_part,
)
from utilities.check.input_reader import InputTable
from utilities.check.problem_text import Findings, capped, csv_canon, exact, hint, row_key, show

ROW_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
BATCH_STATUSES = ("queued", "running", "paused", "cancelled", "completed", "completed_with_errors", "failed")
UNFINISHED_BATCH = ("queued", "running", "paused")
COMPLETED_BATCH = ("completed", "completed_with_errors")


@dataclass
class ValidationReport(Findings):
    """What a download got wrong against its input; ``problems()`` is empty for an honest download."""

    format: str
    input_rows: int
    rows_checked: int
    succeeded: int
    failed: int

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.issues)} problem(s)"
        return (
            f"{self.format} download: {self.rows_checked} rows checked against {self.input_rows} input rows "
            f"({self.succeeded} succeeded, {self.failed} failed): {verdict}"
        )


def validate(input_table: InputTable, download: Download, *, allow_pending: bool = False) -> ValidationReport:
    """Every way ``download`` departs from the contract for ``input_table``, each naming its row."""
    if download.format == "zip":
        # The primary member is checked against the input and the other one against the primary, so
        # one tampering shows once, named by the member that carries it.
        issues = list(download.parse_problems)
        primary = primary_part(download)
        if primary is not download:
            name = f"results.{primary.format}"
            issues += [f"{name}: {p}" for p in _content_problems(input_table, primary, allow_pending)]
        for name, part in download.parts.items():
            if part is not primary:
                issues += [f"{name}: {p}" for p in part.parse_problems + _neutralisation_problems(part)]
                against = f"{name} vs results.{primary.format}"
                issues += [f"{against}: {p}" for p in compare_downloads(part, primary).problems()]
        issues += _manifest_problems(download)
    else:
        issues = _content_problems(input_table, download, allow_pending)
    statuses = Counter(row.status for row in download.rows)
    return ValidationReport(
        format=download.format,
        input_rows=len(input_table.rows),
        rows_checked=len(download.rows),
        succeeded=statuses["succeeded"],
        failed=statuses["failed"],
        issues=issues,
    )


def assert_download_matches(input_table: InputTable, download: Download, *, allow_pending: bool = False) -> None:
    """Raise ``AssertionError`` listing every problem when ``download`` does not match ``input_table``."""
    report = validate(input_table, download, allow_pending=allow_pending)
    if not report.ok:
        raise AssertionError("\n  - ".join([report.summary(), *report.problems()]))


def _content_problems(table: InputTable, download: Download, allow_pending: bool) -> list[str]:
    problems = list(download.parse_problems)
    problems += _column_problems(table.columns, download.columns)
    if len(download.rows) != len(table.rows):
        problems.append(f"the download has {len(download.rows)} rows, the input has {len(table.rows)}")
    if download.total is not None and download.total != len(download.rows):
        problems.append(f"'total' is {download.total} but the download has {len(download.rows)} rows")
    if download.status is not None and download.status not in BATCH_STATUSES:
        problems.append(f"batch status {download.status!r} is not one of {BATCH_STATUSES}")
    wrong_numbers = [
        f"row {position}: row_number is {row.row_number}, expected {position}"
        for position, row in enumerate(download.rows, start=1)
        if row.row_number is not None and row.row_number != position
    ]
    problems += capped(wrong_numbers, "rows with a wrong row_number")
    canon = csv_canon if download.format == "csv" else exact
    problems += capped(_order_problems(table, download, canon), "row differences")
    problems += capped(_status_problems(download, allow_pending), "rows with a status problem")
    return problems + _neutralisation_problems(download)


def _neutralisation_problems(download: Download) -> list[str]:
    unneutralised = [
        f'row {position}: cell {name!r} starts with {row.cell(name)[:1]!r} but lacks the leading "\'" (CSV injection)'
        for position, row in enumerate(download.rows, start=1)
        for name in sorted(row.unneutralised)
    ]
    return capped(unneutralised, "unneutralised cells")


def _column_problems(expected: list[str], got: list[str]) -> list[str]:
    problems = [f"column {name!r} of the input is missing from the download" for name in expected if name not in got]
    problems += [f"column {name!r} is in the download but not in the input" for name in got if name not in expected]
    shared_got = [name for name in got if name in expected]
    shared_expected = [name for name in expected if name in got]
    if shared_got != shared_expected:
        problems.append(f"original columns out of order: {shared_got} in the download, {shared_expected} in the input")
    return problems


def _order_problems(table: InputTable, download: Download, canon: Callable[[str | None], str | None]) -> list[str]:
    """Row-by-row content in input order; a permutation is told apart from dropped or altered rows."""
    shared = [name for name in table.columns if name in download.columns]
    expected = [tuple(canon(row.get(name)) for name in shared) for row in table.rows]
    got = [tuple(row.fields.get(name) for name in shared) for row in download.rows]
    if expected == got:
        return []
    where: dict[tuple, list[int]] = {}
    for index, key in enumerate(expected):
        where.setdefault(key, []).append(index)

    def moved(j: int) -> str:
        i = next((i for i in where[got[j]] if i != j), where[got[j]][0])
        return f"row {j + 1}: holds input row {i + 1}'s content, out of input order"

    if Counter(expected) == Counter(got):
        return ["the rows are all present but out of input order"] + [
            moved(j) for j in range(len(got)) if got[j] != expected[j]
        ]
    problems = []
    dropped: list[int] = []
    added: list[int] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, expected, got, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            problems += _field_problems(table, download, shared, canon, i1 + k, j1 + k)
        dropped += range(i1 + pairs, i2)
        added += range(j1 + pairs, j2)
    displaced = {got[j] for j in added} & {expected[i] for i in dropped}
    prompt = table.prompt_column
    for i in dropped:
        if expected[i] not in displaced:
            problems.append(f"row {i + 1}: input row {i + 1} ({show(table.rows[i].get(prompt))}) is missing")
    for j in added:
        if got[j] in displaced:
            origin = next(i for i in dropped if expected[i] == got[j])
            # A row sitting at its own input position is not out of order; its neighbours moved.
            if j >= len(expected) or got[j] != expected[j]:
                problems.append(f"row {j + 1}: holds input row {origin + 1}'s content, out of input order")
        else:
            text = show(download.rows[j].fields.get(prompt))
            problems.append(f"row {j + 1}: the download has a row that is not in the input ({text})")
    return sorted(problems, key=row_key)


def _field_problems(
    table: InputTable,
    download: Download,
    shared: list[str],
    canon: Callable[[str | None], str | None],
    i: int,
    j: int,
) -> list[str]:
    problems = []
    for name in shared:
        want, have = table.rows[i].get(name), download.rows[j].fields.get(name)
        if canon(want) == have:
            continue
        if have is None:
            message = f"row {j + 1}: field {name!r} is missing from the download"
        else:
            message = f"row {j + 1}: field {name!r} is {show(have)} in the download, {show(want)} in the input"
        if i != j:
            message += f" (input row {i + 1})"
        problems.append(message + hint(have, want))
    return problems


def _status_problems(download: Download, allow_pending: bool) -> list[str]:
    batch = download.status
    pending_forbidden = batch in COMPLETED_BATCH or (not allow_pending and batch not in UNFINISHED_BATCH)
    problems = []
    for position, row in enumerate(download.rows, start=1):
        if row.status not in ROW_STATUSES:
            problems.append(f"row {position}: status {row.status!r} is not one of {ROW_STATUSES}")
        elif row.status == "succeeded" and not (row.enhanced_prompt or "").strip():
            problems.append(f"row {position}: succeeded but its enhanced prompt is empty")
        elif row.status == "failed" and not (row.error or "").strip():
            problems.append(f"row {position}: failed but carries no error message")
        elif row.status in ("pending", "running") and pending_forbidden:
            problems.append(f"row {position}: still {row.status} in a download of a {batch or 'finished'} batch")
    return problems


def _manifest_problems(download: Download) -> list[str]:
    manifest = download.manifest
    if manifest is None:
        return []
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return ["manifest.json is not an object with a 'files' list"]
    problems = []
    listed = set()
    for entry in manifest["files"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            problems.append(f"manifest.json: file entry {entry!r} has no name")
            continue
        listed.add(name)
        if name not in download.member_names:
            problems.append(f"manifest.json lists {name}, which is not in the archive")
        elif name in download.members:
            data = download.members[name]
            if entry.get("bytes") != len(data):
                problems.append(
                    f"manifest.json: {name} has {len(data)} bytes, the manifest says {entry.get('bytes')!r}"
                )
            actual = hashlib.sha256(data).hexdigest()
            if entry.get("sha256") != actual:
                problems.append(
                    f"manifest.json: sha256 of {name} is {actual}, the manifest says {entry.get('sha256')!r}"
                )
    problems += [f"manifest.json does not list {name}" for name in ZIP_MEMBERS[:2] if name not in listed]
    statuses = Counter(row.status for row in download.rows)
    actual_counts = {
        "total": len(download.rows),
        "succeeded": statuses["succeeded"],
        "failed": statuses["failed"],
    }
    for key, actual in actual_counts.items():
        if manifest.get(key) != actual:
            problems.append(f"manifest.json: {key} is {manifest.get(key)!r}, the rows say {actual}")
    results = download.parts.get("results.json")
    if results is not None:
        for key in ("batch_id", "status"):
            claimed, actual = manifest.get(key), getattr(results, key)
            if claimed != actual:
                problems.append(f"manifest.json: {key} is {claimed!r}, results.json says {actual!r}")
    return problems
