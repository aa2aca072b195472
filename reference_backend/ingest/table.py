"""The header and row rules every format shares, and the ``ParsedTable`` they produce.

Policies, the same for every format:

- A record whose cells are all empty or whitespace is skipped: it is not a prompt, is not counted against
  the limit and gets no row number. Row numbers (``details.row``) count the remaining records from 1,
  header excluded, exactly as the download's ``row_number`` does. Records past ``max_prompts`` are only
  counted, so ``too_many_prompts`` can report the total, up to ``max_records_read`` records read (blank
  ones included): past that the file is refused without reading the rest (``details.rows_read``).
- A record with fewer cells than the header is padded with ``""`` (a format decides what too many means).
- A column with a blank header and no value in any record is dropped; one that holds values keeps its
  blank name (two such columns are a ``duplicate_column``).
- Column names are compared after stripping whitespace and BOMs, case-insensitively: that is how the
  prompt column is found, and how duplicates and reserved names are recognised.
- Columns count by position up to the last one with a name or a value: more than ``max_columns`` is
  ``too_many_columns``. Trailing empty cells (spreadsheets pad rows with them) do not count.
- Values keep their exact text; the prompt is stripped only to decide whether it is empty. Any value may be
  ``max_value_chars`` long (``value_too_long``), which a file within the size limit only reaches as an XLSX.
- A record breaking a rule of its own, not the file's, is kept and marked failed (``ParsedTable.failures``):
  an empty prompt next to other values (``empty_prompt``), a prompt over a provider's ``max_prompt_chars``
  (``prompt_too_long``). The batch stores it failed with that reason and runs the rest, as the spec asks of
  invalid prompts in a batch; only a problem of the whole file refuses the upload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import InvalidContent
from .limits import IngestLimits

PROMPT_COLUMN = "prompt"
RESERVED_COLUMNS: tuple[str, ...] = ("row_number", "enhanced_prompt", "techniques", "row_status", "row_error")

# C0 controls except tab, LF and CR.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class RowFailure:
    """Why one record cannot be sent to the provider; the download shows it as ``code: message``."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class ParsedTable:
    columns: list[str]
    prompt_column: str
    rows: list[dict[str, str]]
    source_format: str
    # Row number (from 1, as in the download) -> why that row fails without being sent to the provider.
    failures: dict[int, RowFailure] = field(default_factory=dict)


# Where a record sits in its file: ("line", 18), ("sheet_row", 19) or ("element", 18).
Where = tuple[str, int]


class RawRecord(NamedTuple):
    """One input record before the shared rules: its cells in header order and where it sits in the file."""

    cells: list[str]
    where: Where


def normalise_name(name: str) -> str:
    return name.replace("\ufeff", "").strip().casefold()


def is_blank(value: str) -> bool:
    # "\x1c".isspace() is True; a cell of control characters must reach the character check, not vanish.
    return not value.strip() and not _CONTROL.search(value)


def is_blank_record(cells: list[str]) -> bool:
    # A loop, not all(genexpr): this runs once per record, up to millions of times for a hostile file.
    for cell in cells:  # noqa: SIM110
        if cell.strip() or _CONTROL.search(cell):
            return False
    return True


def invalid(code: str, message: str, **details: object) -> InvalidContent:
    return InvalidContent(message, code=code, **details)


def describe(row: int | None, where: Where | None) -> str:
    """``"Row 17 (line 18)"``: how messages name a record; ``row=None`` names the header."""
    base = f"Row {row}" if row is not None else "The header"
    return f"{base} ({where[0].replace('_', ' ')} {where[1]})" if where else base


def _place(row: int | None, where: Where | None) -> dict[str, int]:
    details = {"row": row} if row is not None else {}
    return details | ({where[0]: where[1]} if where else {})


def build_table(
    header: list[str],
    records: Iterable[RawRecord],
    *,
    source_format: str,
    limits: IngestLimits,
    header_where: Where | None = None,
) -> ParsedTable:
    """Apply the shared rules to a header and its records; raise ``InvalidContent`` on the first breach."""
    header = list(header)
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    check_width(used_width(header), limits)
    # Stream: a 10 MiB file of one-character lines is five million records; keep only what can be used, and
    # stop reading at max_records_read so such a file costs milliseconds, not seconds.
    kept: list[tuple[list[str], Where]] = []
    used: set[int] = set()
    count = 0
    for read, (cells, where) in enumerate(records, start=1):
        if read > limits.max_records_read:
            raise too_many_records(limits)
        if is_blank_record(cells):
            continue
        count += 1
        if count <= limits.max_prompts:
            check_width(used_width(cells), limits)
            used.update(index for index, cell in enumerate(cells) if not is_blank(cell))
            kept.append((cells, where))
    keep = sorted(used.union(index for index, name in enumerate(header) if not is_blank(name)))
    header += [""] * (max(keep, default=-1) + 1 - len(header))
    columns = [header[index] for index in keep]
    prompt_index = _check_header(columns, header_where)
    if not count:
        raise invalid("no_prompts", "The file has no prompts: there are no rows under the header.")
    if count > limits.max_prompts:
        raise invalid(
            "too_many_prompts",
            f"The file has {count:,} prompts; the limit is {limits.max_prompts:,} per batch. "
            "Split it into smaller files.",
            limit=limits.max_prompts,
            actual=count,
        )

    prompt_column = columns[prompt_index]
    rows: list[dict[str, str]] = []
    failures: dict[int, RowFailure] = {}
    for number, (cells, where) in enumerate(kept, start=1):
        values = [cells[index] if index < len(cells) else "" for index in keep]
        for name, value in zip(columns, values, strict=True):
            _check_characters(value, row=number, where=where, column=name)
            if len(value) > limits.max_value_chars:
                raise value_too_long(limits, row=number, where=where, column=name, actual=len(value))
        failure = row_failure(values[prompt_index], row=number, where=where, limits=limits)
        if failure is not None:
            failures[number] = failure
        rows.append(dict(zip(columns, values, strict=True)))
    return ParsedTable(
        columns=columns, prompt_column=prompt_column, rows=rows, source_format=source_format, failures=failures
    )


def row_failure(prompt: str, *, row: int, where: Where | None, limits: IngestLimits) -> RowFailure | None:
    """Why this prompt cannot go to the provider, or ``None``; its row fails, the batch still runs."""
    if is_blank(prompt):
        return RowFailure("empty_prompt", f"{describe(row, where)}: the prompt is empty; the row was not processed.")
    limit = limits.max_prompt_chars
    if limit is not None and len(prompt) > limit:
        return RowFailure(
            "prompt_too_long",
            f"{describe(row, where)}: the prompt is {len(prompt):,} characters long; this deployment's provider "
            f"accepts at most {limit:,}. Shorten it or split it.",
        )
    return None


def used_width(cells: list[str]) -> int:
    """The number of cells up to the last one that is not blank (spreadsheets pad rows with empty cells)."""
    width = len(cells)
    while width and is_blank(cells[width - 1]):
        width -= 1
    return width


def check_width(width: int, limits: IngestLimits) -> int:
    """``width`` when it is within ``max_columns``; columns count by position up to the last one in use."""
    if width > limits.max_columns:
        raise invalid(
            "too_many_columns",
            f"The file has {width:,} columns (counting to the last one with a "
            f"name or a value); the limit is "
            f"{limits.max_columns:,}. Keep the prompt column and the few columns the results need.",
            limit=limits.max_columns,
            actual=width,
        )
    return width


def value_too_long(
    limits: IngestLimits,
    *,
    row: int | None,
    where: Where | None,
    column: str | None = None,
    actual: int | None = None,
    hint: str = "",
) -> InvalidContent:
    """A value over ``max_value_chars``; ``actual`` is ``None`` when a reader stopped at the limit."""
    place = describe(row, where) if row is not None or where is None else f"{where[0].capitalize()} {where[1]}"
    shown = f', column "{column}"' if column is not None else ""
    size = f"{actual:,} characters long" if actual is not None else f"longer than {limits.max_value_chars:,} characters"
    return invalid(
        "value_too_long",
        f"{place}{shown}: a value is {size}; the limit for any value is {limits.max_value_chars:,} characters." + hint,
        **_place(row, where),
        **({"column": column} if column is not None else {}),
        limit=limits.max_value_chars,
        **({"actual": actual} if actual is not None else {}),
    )


def too_many_records(limits: IngestLimits) -> InvalidContent:
    return invalid(
        "too_many_prompts",
        f"The file has more than {limits.max_records_read:,} rows (blank ones included); the limit is "
        f"{limits.max_prompts:,} prompts per batch. Split it into smaller files.",
        limit=limits.max_prompts,
        rows_read=limits.max_records_read,
    )


def _check_header(columns: list[str], where: Where | None) -> int:
    seen: dict[str, int] = {}
    for position, name in enumerate(columns, start=1):
        _check_characters(name, row=None, where=where, column=name)
        key = normalise_name(name)
        if key in seen:
            shown = f'"{name}"' if key else "with an empty name"
            raise invalid(
                "duplicate_column",
                f"There are two columns {shown} (columns {seen[key]} and {position}). "
                "Column names must be unique; rename one of them.",
                column=name,
                positions=[seen[key], position],
                columns=columns,
            )
        seen[key] = position
    for name in columns:
        if normalise_name(name) in RESERVED_COLUMNS:
            raise invalid(
                "reserved_column",
                f'The column name "{name.strip()}" is reserved for the results file. '
                "Rename that column and upload again.",
                column=name,
                reserved=list(RESERVED_COLUMNS),
            )
    if PROMPT_COLUMN not in seen:
        found = ", ".join(f'"{name}"' for name in columns) or "none"
        raise invalid(
            "missing_prompt_column",
            f'The file has no "prompt" column (the first non-empty row is read as the header; columns '
            f'found: {found}). Add a column named "prompt" that holds the prompts.',
            columns=columns,
        )
    return seen[PROMPT_COLUMN] - 1


def _check_characters(value: str, *, row: int | None, where: Where | None, column: str) -> None:
    found = _CONTROL.search(value)
    if found is None:
        return
    codepoint = f"U+{ord(found.group()):04X}"
    raise invalid(
        "invalid_characters",
        f'{describe(row, where)}, column "{column}": contains the control character {codepoint}, '
        "which is not allowed. Remove it and upload again.",
        **_place(row, where),
        column=column,
        codepoint=codepoint,
    )
