"""Seeded, byte-reproducible prompt files (CSV, XLSX, TXT, JSON, JSONL) and named invalid uploads for US-003.

The generator lives in ``utilities.gen``, one module per concept (``content``: what the rows say;
``writers``: rows to bytes; ``containers``: zip, workbook and deflate by hand; ``invalid``: the named
invalid files; ``fixtures``: the committed set; ``cli``: ``batchqa gen``). This module keeps the names
everything imports.
"""

from __future__ import annotations

from utilities.gen.cli import gen
from utilities.gen.containers import Member, deflate_bomb, png_1x1, workbook_members, write_zip
from utilities.gen.content import (
    AUDIENCES,
    CATEGORIES,
    CP1252_SAFE_MIXES,
    DELIMITERS,
    ENCODINGS,
    FORMATS,
    LINE_ENDINGS,
    MAX_PROMPTS,
    MAX_UPLOAD_BYTES,
    MIXES,
    TAGS,
    TONES,
    VERY_LONG_LENGTHS,
    Encoding,
    Format,
    GenSpec,
    generate_rows,
    iter_rows,
)
from utilities.gen.fixtures import DEFAULT_FIXTURES_DIR, REGENERATE_COMMAND, write_fixture_set
from utilities.gen.invalid import BOMB_SHEET, INVALID_VARIANTS, InvalidVariant
from utilities.gen.long_prompts import LONG_LENGTHS, long_prompt_rows, long_prompts_csv
from utilities.gen.writers import csv_line, generate, render

gen_command = gen

__all__ = [
    "AUDIENCES",
    "BOMB_SHEET",
    "CATEGORIES",
    "CP1252_SAFE_MIXES",
    "DEFAULT_FIXTURES_DIR",
    "DELIMITERS",
    "ENCODINGS",
    "FORMATS",
    "INVALID_VARIANTS",
    "LINE_ENDINGS",
    "LONG_LENGTHS",
    "MAX_PROMPTS",
    "MAX_UPLOAD_BYTES",
    "MIXES",
    "REGENERATE_COMMAND",
    "TAGS",
    "TONES",
    "VERY_LONG_LENGTHS",
    "Encoding",
    "Format",
    "GenSpec",
    "InvalidVariant",
    "Member",
    "csv_line",
    "deflate_bomb",
    "gen",
    "gen_command",
    "generate",
    "generate_rows",
    "iter_rows",
    "long_prompt_rows",
    "long_prompts_csv",
    "png_1x1",
    "render",
    "workbook_members",
    "write_fixture_set",
    "write_zip",
]

if __name__ == "__main__":
    gen()
