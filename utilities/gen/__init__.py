"""Seeded, byte-reproducible prompt files (CSV, XLSX, TXT, JSON, JSONL), named invalid uploads and the hostile
corpus for US-003, one module per concept: ``content`` (what the rows say), ``writers`` (rows to bytes),
``containers`` (zip, workbook and deflate by hand), ``invalid`` (the named invalid files), ``long_prompts``,
``fixtures`` (the committed set), ``hostile_file`` / ``hostile_text`` / ``hostile_xlsx`` / ``hostile_names`` /
``hostile_corpus`` (uploads a target must refuse, with their refusals), ``corpus_run`` (posting the corpus to a
target), ``cli`` (``batchqa gen``).

Names load on first use (``utilities._lazy``), so no module imports the whole package.
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "ACCEPTED": "hostile_corpus",
    "AUDIENCES": "content",
    "BOMB_SHEET": "invalid",
    "CATEGORIES": "content",
    "CORPUS": "hostile_corpus",
    "CP1252_SAFE_MIXES": "content",
    "CorpusReport": "corpus_run",
    "DEFAULT_FIXTURES_DIR": "fixtures",
    "DELIMITERS": "content",
    "ENCODINGS": "content",
    "Encoding": "content",
    "FORMATS": "content",
    "Format": "content",
    "GenSpec": "content",
    "HostileFile": "hostile_file",
    "INVALID_VARIANTS": "invalid",
    "InvalidVariant": "invalid",
    "LINE_ENDINGS": "content",
    "LONG_LENGTHS": "long_prompts",
    "MAX_PROMPTS": "content",
    "MAX_UPLOAD_BYTES": "content",
    "MIXES": "content",
    "Member": "containers",
    "REGENERATE_COMMAND": "fixtures",
    "TAGS": "content",
    "TONES": "content",
    "VERY_LONG_LENGTHS": "content",
    "accepted_corpus": "hostile_corpus",
    "corpus": "hostile_corpus",
    "csv_line": "writers",
    "deflate_bomb": "containers",
    "gen": "cli",
    "generate": "writers",
    "generate_rows": "content",
    "iter_rows": "content",
    "long_prompt_rows": "long_prompts",
    "long_prompts_csv": "long_prompts",
    "png_1x1": "containers",
    "render": "writers",
    "run_corpus": "corpus_run",
    "workbook_members": "containers",
    "write_corpus": "hostile_corpus",
    "write_fixture_set": "fixtures",
    "write_zip": "containers",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
