"""The limits an upload is held to; defaults follow US-003 (1000 prompts, 32,000 characters, 10 MiB).

The derived bounds keep a hostile file's cost in proportion to what a real batch can hold: parsers stop
reading at ``max_records_read`` records, a value may be at most ``max_value_chars`` long (the CSV reader's
buffer stays a few MB), a worksheet may hold at most ``max_cells`` cells and a JSON document ``max_values``
values. The hostile files that forced each bound are in ``utilities/gen/adversarial.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestLimits:
    max_prompts: int = 1000
    max_prompt_chars: int = 32_000
    max_bytes: int = 10 * 1024 * 1024
    max_columns: int = 100

    @property
    def max_value_chars(self) -> int:
        """Any value, prompt or not; long notes columns are fine, a 10 MB cell is not."""
        return 8 * self.max_prompt_chars

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
