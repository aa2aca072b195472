"""Small builders shared by the self-tests (input files made in memory)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence


def csv_bytes(rows: Sequence[dict[str, str]], *, columns: Sequence[str] | None = None) -> bytes:
    columns = list(columns or rows[0].keys())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def prompt_rows(count: int, *, start: int = 1) -> list[dict[str, str]]:
    topics = ("renewable energy", "sourdough baking", "time management", "quantum computing", "city cycling")
    categories = ("content", "education", "business", "productivity", "science")
    return [
        {
            "prompt": f"Write a short guide about {topics[i % len(topics)]}, part {i}",
            "category": categories[i % len(categories)],
            "tags": f"tag{i % 7},series",
        }
        for i in range(start, start + count)
    ]
