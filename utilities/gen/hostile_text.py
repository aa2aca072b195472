"""Hostile text uploads: the generator's named invalid files with their refusals, encodings that lie, files
whose cost grows with their structure rather than their size, hostile JSON, and content rules."""

from __future__ import annotations

import codecs
import json
import random

from utilities.gen.hostile_file import HostileFile, entry, register
from utilities.gen.invalid import INVALID_VARIANTS

# csv_generator's named invalid files, with the refusal the contract gives each.
_VARIANT_ANSWERS: dict[str, tuple[str, int, str]] = {
    "empty": ("content", 422, "empty_file"),
    "header_only": ("content", 422, "no_prompts"),
    "too_many_rows": ("volume", 422, "too_many_prompts"),
    "too_large": ("volume", 413, "file_too_large"),
    "corrupt_csv": ("content", 422, "corrupt_csv"),
    "missing_prompt_column": ("content", 422, "missing_prompt_column"),
    "reserved_column": ("content", 422, "reserved_column"),
    "truncated_xlsx": ("xlsx", 422, "corrupt_xlsx"),
    "png_as_xlsx": ("type", 415, "unsupported_file_type"),
    "xlsx_zip_bomb": ("xlsx", 422, "unsafe_xlsx"),
    "xlsx_xml_entity": ("xlsx", 422, "unsafe_xlsx"),
    "wrong_encoding": ("encoding", 422, "encoding_error"),
    "nul_bytes": ("content", 422, "invalid_characters"),
    "invalid_format": ("type", 415, "unsupported_file_type"),
}
for _name, (_category, _status, _code) in _VARIANT_ANSWERS.items():
    _variant = INVALID_VARIANTS[_name]
    register(HostileFile(_name, _variant.filename, _category, _variant.description, _status, _code, _variant.build))


# Encodings ---------------------------------------------------------------------------------------------


@entry("utf16-no-bom-garbage.csv", "encoding", 422, "encoding_error")
def _utf16_bomless_garbage(seed: int) -> bytes:
    """A UTF-16 LE header without a BOM, then random code units including lone surrogates."""
    rng = random.Random(seed)
    units = b"".join(rng.randrange(0xD800, 0xE000).to_bytes(2, "little") for _ in range(64))
    return "prompt\r\nhello\r\n".encode("utf-16-le") + units + "\r\n".encode("utf-16-le")


@entry("mixed-encodings.csv", "encoding", 422, "encoding_error")
def _mixed_encodings(seed: int) -> bytes:
    """UTF-8 rows with multi-byte characters and, on line 4, a row saved as Windows-1252."""
    return "prompt\r\nÜbersetze „Käse“\r\n日本語で説明して\r\n".encode() + "Résumé for café staff\r\n".encode("cp1252")


@entry("bom-only.csv", "encoding", 422, "empty_file")
def _bom_only(seed: int) -> bytes:
    """Nothing but a UTF-8 byte-order mark."""
    return codecs.BOM_UTF8


@entry("utf16-bom-only.txt", "encoding", 422, "empty_file")
def _utf16_bom_only(seed: int) -> bytes:
    """A UTF-16 LE byte-order mark and three blank lines."""
    return codecs.BOM_UTF16_LE + "\r\n \r\n\t\r\n".encode("utf-16-le")


@entry("lone-surrogate.csv", "encoding", 422, "encoding_error")
def _lone_surrogate(seed: int) -> bytes:
    """A UTF-8 surrogate half (ED A0 80), as CESU-8 and WTF-8 writers emit, inside a prompt."""
    return b"prompt\r\nWrite a poem about \xed\xa0\x80 the sea\r\n"


@entry("overlong-utf8.csv", "encoding", 422, "encoding_error")
def _overlong_utf8(seed: int) -> bytes:
    """Overlong encodings of "/" and "." (C0 AF, E0 80 AE): the classic path-filter bypass."""
    return b"prompt\r\nOpen .\xe0\x80\xae\xc0\xaf.\xe0\x80\xae\xc0\xafetc\xc0\xafpasswd\r\n"


@entry("bom-then-invalid.csv", "encoding", 422, "encoding_error")
def _bom_then_invalid(seed: int) -> bytes:
    """A UTF-8 byte-order mark, then a line of bytes that are not UTF-8."""
    rng = random.Random(seed)
    return codecs.BOM_UTF8 + b"prompt\r\nfine\r\n" + bytes(rng.randrange(0x80, 0xC0) for _ in range(32)) + b"\r\n"


# Volume: files whose cost grows with their structure, not their size ---------------------------------


@entry("five-million-lines.txt", "volume", 422, "too_many_prompts")
def _five_million_lines(seed: int) -> bytes:
    """5,000,000 one-character prompts, 10,000,000 bytes: under the 10 MiB limit."""
    return b"a\n" * 5_000_000


@entry("ten-million-blank-lines.txt", "volume", 422, "too_many_prompts")
def _ten_million_blank_lines(seed: int) -> bytes:
    """One prompt, then 10,000,000 empty lines (skipped rows still cost a reader time)."""
    return b"Write a haiku about autumn\n" + b"\n" * 10_000_000


@entry("million-columns.csv", "volume", 422, "too_many_columns")
def _million_columns(seed: int) -> bytes:
    """A header of 1,000,001 columns (prompt, c1 ... c1000000) and one row."""
    return b"prompt," + b",".join(b"c%d" % index for index in range(1, 1_000_001)) + b"\r\nhello\r\n"


@entry("wide-row.csv", "volume", 422, "too_many_columns")
def _wide_row(seed: int) -> bytes:
    """A two-column header, then a row of 3,000,000 two-letter fields (60 bytes of memory each once parsed)."""
    return b"prompt,category\r\n" + b"ab," * 3_000_000 + b"ab\r\n"


@entry("huge-quoted-field.csv", "volume", 202, "accepted")
def _huge_quoted_field(seed: int) -> bytes:
    """One quoted prompt of 10,000,000 characters, the rest of the 10 MiB."""
    return b'prompt\r\n"' + b"x" * 10_000_000 + b'"\r\n'


@entry("unclosed-quote-million-lines.csv", "volume", 422, "value_too_long")
def _unclosed_quote_million_lines(seed: int) -> bytes:
    """A quote opened on line 2 and never closed, followed by 4,000,000 line breaks."""
    return b'prompt,category\r\n"never closed,x\r\n' + b"\r\n" * 4_000_000


@entry("astral-line.txt", "volume", 202, "accepted")
def _astral_line(seed: int) -> bytes:
    """One line of 2,500,000 emoji: four bytes each in UTF-8, four bytes each in memory too."""
    return "😀".encode() * 2_500_000


@entry("all-private-use.csv", "content", 422, "corrupt_csv")
def _all_private_use(seed: int) -> bytes:
    """Every BMP private-use character and non-character, so no character is left to read it as one column."""
    characters = "".join(chr(code) for code in range(0xE000, 0xF900)) + "\uffff\U0010ffff\U000ffffd"
    return f"prompt\r\n{characters}\r\n".encode()


# JSON --------------------------------------------------------------------------------------------------


@entry("deeply-nested.json", "json", 422, "invalid_json")
def _deeply_nested_json(seed: int) -> bytes:
    """100,000 nested lists: a recursive decoder's stack overflow."""
    return b"[" * 100_000 + b"]" * 100_000


@entry("nine-megabyte-string.json", "json", 202, "accepted")
def _nine_megabyte_string(seed: int) -> bytes:
    """One prompt of 9,000,000 characters in a valid JSON list."""
    return b'[{"prompt": "' + b"x" * 9_000_000 + b'"}]'


@entry("million-values.json", "json", 422, "too_many_values")
def _million_values(seed: int) -> bytes:
    """A list of 3,000,000 empty lists: 3 bytes of file, 80 bytes of memory each once decoded."""
    return b"[" + b"[]," * 3_000_000 + b"[]]"


@entry("giant-number.json", "json", 422, "invalid_json")
def _giant_number(seed: int) -> bytes:
    """A field holding a 5,000,000-digit integer (Python refuses to convert over 4,300 digits)."""
    return b'[{"prompt": "hello", "id": ' + b"7" * 5_000_000 + b"}]"


@entry("duplicate-keys.json", "json", 422, "duplicate_column")
def _duplicate_keys(seed: int) -> bytes:
    """An object with "prompt" twice: a JSON reader silently keeps one of the two prompts."""
    return b'[{"prompt": "harmless", "prompt": "the one a reviewer never saw"}]'


@entry("broken-line.jsonl", "json", 422, "invalid_json")
def _jsonl_broken_line(seed: int) -> bytes:
    """JSON Lines whose third line is cut off mid-object."""
    return b'{"prompt": "one"}\n{"prompt": "two"}\n{"prompt": "thr\n{"prompt": "four"}\n'


@entry("reserved-key.json", "content", 422, "reserved_column")
def _reserved_key(seed: int) -> bytes:
    """Objects with a " Row_Status " field, the reserved results column in other case and padding."""
    return json.dumps([{"prompt": "Explain tides", " Row_Status ": "succeeded"}]).encode()


# Content rules -----------------------------------------------------------------------------------------


@entry("whitespace-prompts.csv", "content", 202, "rows_failed")
def _whitespace_prompts(seed: int) -> bytes:
    """Every prompt is spaces, tabs or a no-break space while the category column is filled."""
    return "prompt,category\r\n   ,a\r\n\t,b\r\n\u00a0\u2003,c\r\n".encode()


@entry("duplicate-column.csv", "content", 422, "duplicate_column")
def _duplicate_column(seed: int) -> bytes:
    """Two prompt columns, "prompt" and " Prompt": which one would be enhanced?"""
    return b"prompt, Prompt\r\nfirst,second\r\n"


@entry("ansi-escape.csv", "content", 422, "invalid_characters")
def _ansi_escape(seed: int) -> bytes:
    """A prompt with ANSI escapes (ESC[2J clears the screen of whoever views the logs)."""
    return b"prompt\r\nHello \x1b[2J\x1b[31mgotcha\x1b[0m\r\n"


@entry("bell-in-header.csv", "content", 422, "invalid_characters")
def _bell_in_header(seed: int) -> bytes:
    """A control character (BEL) inside the header name."""
    return b"pro\x07mpt,category\r\nhi,x\r\n"
