"""The limits an upload is held to; defaults follow US-003 (1000 prompts, 10 MiB, no per-prompt limit).

A prompt is bounded only by the file: the spec names no character limit and lists very long prompts among
the inputs a batch must take. ``max_prompt_chars`` is for a deployment whose provider has one; a prompt
over it fails as its own row (``prompt_too_long``), the rest of the batch runs.

The other bounds keep a hostile file's cost in proportion to what a real batch can hold: parsers stop
reading at ``max_records_read`` records, a value may be at most ``max_value_chars`` long (only an XLSX,
whose text is compressed, can hold more characters than it has bytes), a CSV record may make the reader
build at most ``max_record_fields`` fields from at most ``max_record_lines`` lines, a worksheet may hold
at most ``max_cells`` cells and a JSON document ``max_values`` values. The hostile files that forced each
bound are in ``utilities/gen/hostile_text.py`` and ``hostile_xlsx.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestLimits:
    max_prompts: int = 1000
    max_prompt_chars: int | None = None
    max_bytes: int = 10 * 1024 * 1024
    max_columns: int = 100
    # Any value, prompt or not, whatever the provider's limit: by default as long as the file limit allows.
    max_value_chars: int = 10 * 1024 * 1024
    # Delimiters in one CSV record: the reader may build a field (~60 bytes) for each one.
    max_record_fields: int = 256 * 1024
    # Physical lines in one CSV record (a quoted multi-line value): each costs the reader a Python call.
    max_record_lines: int = 50_000

    @property
    def max_records_read(self) -> int:
        """Records (blank ones too) read before a file is refused as too long without reading the rest."""
        return 100 * self.max_prompts

    @property
    def max_cells(self) -> int:
        """Worksheet cells (or shared strings): the header and every row full."""
        return (self.max_prompts + 1) * self.max_columns

    @property
    def max_values(self) -> int:
        """JSON values: every row full, with room for nested fields (``"tags": ["a", "b"]``)."""
        return 2 * self.max_cells
