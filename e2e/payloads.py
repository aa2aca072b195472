"""Uploads the black-box suites build: rows whose prompts carry unique markers, in every accepted format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from utilities.check.contract_checks import unique_marker
from utilities.gen import workbook_members, write_zip

SUBJECTS = ("renewable energy", "sourdough baking", "time management", "city cycling", "tide pools")


@dataclass(frozen=True)
class Rows:
    """Input rows (column order as written) and the marker each row's prompt carries."""

    columns: list[str]
    rows: list[dict[str, str]]
    markers: list[str]

    @property
    def prompts(self) -> list[str]:
        return [row["prompt"] for row in self.rows]


def marked_rows(count: int, *, prompt_first: bool = False) -> Rows:
    """``count`` rows, each prompt with its own marker; the prompt column is not the first unless asked."""
    markers = [unique_marker() for _ in range(count)]
    rows = []
    for i, marker in enumerate(markers, start=1):
        prompt = f"Write a short guide about {SUBJECTS[i % len(SUBJECTS)]} named {marker}, part {i}"
        rows.append({"id": f"id-{i}", "prompt": prompt, "category": "education", "note": f"n{i}"})
    columns = ["prompt", "id", "category", "note"] if prompt_first else ["id", "category", "prompt", "note"]
    return Rows(columns, [{c: row[c] for c in columns} for row in rows], markers)


def csv_bytes(rows: Sequence[dict[str, str]], columns: Sequence[str] | None = None) -> bytes:
    columns = list(columns or rows[0].keys())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def encode(data: Rows, fmt: str) -> tuple[str, bytes]:
    """``(filename, bytes)`` of ``data`` in ``fmt``: csv, xlsx, json, jsonl, or txt (prompts only)."""
    if fmt == "csv":
        return "rows.csv", csv_bytes(data.rows, data.columns)
    if fmt == "json":
        return "rows.json", json.dumps(data.rows, ensure_ascii=False).encode("utf-8")
    if fmt == "jsonl":
        lines = [json.dumps(row, ensure_ascii=False) for row in data.rows]
        return "rows.jsonl", ("\n".join(lines) + "\n").encode("utf-8")
    if fmt == "txt":
        return "rows.txt", ("\n".join(data.prompts) + "\n").encode("utf-8")
    if fmt == "xlsx":
        return "rows.xlsx", write_zip(workbook_members(data.columns, data.rows))
    raise ValueError(f"unknown format {fmt!r}")
