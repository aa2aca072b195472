"""A named, seeded corpus of hostile uploads, each with the exact refusal it must get, and a runner for it.

Every entry is one way a file can hurt an upload endpoint: encodings that lie, sizes that amplify in
memory, archives that unpack into gigabytes, XML that expands or reads local files, names that disguise
their type. ``CORPUS[name](seed)`` returns ``(upload filename, bytes)``, the same bytes for the same seed.
``write_corpus(dest)`` writes them with a manifest (for ``batchqa gen --corpus DIR``); ``run_corpus``
posts them to a target and reports wrong answers, slow answers and the server's memory.

``ACCEPTED`` holds files as costly as the hostile ones that a valid upload must nevertheless take: a
prompt is bounded only by the file size, and a row breaking a rule of its own (an empty prompt next to
other values) is marked failed while the batch runs. Their status is 202 and their code says what the
rows get: ``accepted`` or ``rows_failed``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from utilities.client.api import BatchApi
from utilities.gen import (
    INVALID_VARIANTS,
    GenSpec,
    Member,
    deflate_bomb,
    generate,
    workbook_members,
    write_zip,
)

SHEET = "xl/worksheets/sheet1.xml"
SHARED_STRINGS = "xl/sharedStrings.xml"
STYLES = "xl/styles.xml"
_MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@dataclass(frozen=True)
class HostileFile:
    """One corpus entry; calling it returns ``(filename, bytes)``, the same bytes for the same seed."""

    name: str
    filename: str
    category: str
    description: str
    status: int
    code: str
    build: Callable[[int], bytes]

    def __call__(self, seed: int = 0) -> tuple[str, bytes]:
        return self.filename, self.build(seed)


CORPUS: dict[str, HostileFile] = {}
ACCEPTED: dict[str, HostileFile] = {}


def _entry(
    filename: str, category: str, status: int, code: str
) -> Callable[[Callable[[int], bytes]], Callable[[int], bytes]]:
    def register(build: Callable[[int], bytes]) -> Callable[[int], bytes]:
        name = build.__name__.lstrip("_")
        description = (build.__doc__ or "").strip().splitlines()[0]
        registry = ACCEPTED if status == 202 else CORPUS
        registry[name] = HostileFile(name, filename, category, description, status, code, build)
        return build

    return register


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
    CORPUS[_name] = HostileFile(
        _name, _variant.filename, _category, _variant.description, _status, _code, _variant.build
    )


def _valid_csv(seed: int, rows: int = 5) -> bytes:
    return generate(GenSpec(rows=rows, seed=seed))


# Encodings ---------------------------------------------------------------------------------------------


@_entry("utf16-no-bom-garbage.csv", "encoding", 422, "encoding_error")
def _utf16_bomless_garbage(seed: int) -> bytes:
    """A UTF-16 LE header without a BOM, then random code units including lone surrogates."""
    rng = random.Random(seed)
    units = b"".join(rng.randrange(0xD800, 0xE000).to_bytes(2, "little") for _ in range(64))
    return "prompt\r\nhello\r\n".encode("utf-16-le") + units + "\r\n".encode("utf-16-le")


@_entry("mixed-encodings.csv", "encoding", 422, "encoding_error")
def _mixed_encodings(seed: int) -> bytes:
    """UTF-8 rows with multi-byte characters and, on line 4, a row saved as Windows-1252."""
    return "prompt\r\nÜbersetze „Käse“\r\n日本語で説明して\r\n".encode() + "Résumé for café staff\r\n".encode("cp1252")


@_entry("bom-only.csv", "encoding", 422, "empty_file")
def _bom_only(seed: int) -> bytes:
    """Nothing but a UTF-8 byte-order mark."""
    return codecs.BOM_UTF8


@_entry("utf16-bom-only.txt", "encoding", 422, "empty_file")
def _utf16_bom_only(seed: int) -> bytes:
    """A UTF-16 LE byte-order mark and three blank lines."""
    return codecs.BOM_UTF16_LE + "\r\n \r\n\t\r\n".encode("utf-16-le")


@_entry("lone-surrogate.csv", "encoding", 422, "encoding_error")
def _lone_surrogate(seed: int) -> bytes:
    """A UTF-8 surrogate half (ED A0 80), as CESU-8 and WTF-8 writers emit, inside a prompt."""
    return b"prompt\r\nWrite a poem about \xed\xa0\x80 the sea\r\n"


@_entry("overlong-utf8.csv", "encoding", 422, "encoding_error")
def _overlong_utf8(seed: int) -> bytes:
    """Overlong encodings of "/" and "." (C0 AF, E0 80 AE): the classic path-filter bypass."""
    return b"prompt\r\nOpen .\xe0\x80\xae\xc0\xaf.\xe0\x80\xae\xc0\xafetc\xc0\xafpasswd\r\n"


@_entry("bom-then-invalid.csv", "encoding", 422, "encoding_error")
def _bom_then_invalid(seed: int) -> bytes:
    """A UTF-8 byte-order mark, then a line of bytes that are not UTF-8."""
    rng = random.Random(seed)
    return codecs.BOM_UTF8 + b"prompt\r\nfine\r\n" + bytes(rng.randrange(0x80, 0xC0) for _ in range(32)) + b"\r\n"


# Volume: files whose cost grows with their structure, not their size ---------------------------------


@_entry("five-million-lines.txt", "volume", 422, "too_many_prompts")
def _five_million_lines(seed: int) -> bytes:
    """5,000,000 one-character prompts, 10,000,000 bytes: under the 10 MiB limit."""
    return b"a\n" * 5_000_000


@_entry("ten-million-blank-lines.txt", "volume", 422, "too_many_prompts")
def _ten_million_blank_lines(seed: int) -> bytes:
    """One prompt, then 10,000,000 empty lines (skipped rows still cost a reader time)."""
    return b"Write a haiku about autumn\n" + b"\n" * 10_000_000


@_entry("million-columns.csv", "volume", 422, "too_many_columns")
def _million_columns(seed: int) -> bytes:
    """A header of 1,000,001 columns (prompt, c1 ... c1000000) and one row."""
    return b"prompt," + b",".join(b"c%d" % index for index in range(1, 1_000_001)) + b"\r\nhello\r\n"


@_entry("wide-row.csv", "volume", 422, "too_many_columns")
def _wide_row(seed: int) -> bytes:
    """A two-column header, then a row of 3,000,000 two-letter fields (60 bytes of memory each once parsed)."""
    return b"prompt,category\r\n" + b"ab," * 3_000_000 + b"ab\r\n"


@_entry("huge-quoted-field.csv", "volume", 202, "accepted")
def _huge_quoted_field(seed: int) -> bytes:
    """One quoted prompt of 10,000,000 characters, the rest of the 10 MiB."""
    return b'prompt\r\n"' + b"x" * 10_000_000 + b'"\r\n'


@_entry("unclosed-quote-million-lines.csv", "volume", 422, "value_too_long")
def _unclosed_quote_million_lines(seed: int) -> bytes:
    """A quote opened on line 2 and never closed, followed by 4,000,000 line breaks."""
    return b'prompt,category\r\n"never closed,x\r\n' + b"\r\n" * 4_000_000


@_entry("astral-line.txt", "volume", 202, "accepted")
def _astral_line(seed: int) -> bytes:
    """One line of 2,500,000 emoji: four bytes each in UTF-8, four bytes each in memory too."""
    return "😀".encode() * 2_500_000


@_entry("all-private-use.csv", "content", 422, "corrupt_csv")
def _all_private_use(seed: int) -> bytes:
    """Every BMP private-use character and non-character, so no character is left to read it as one column."""
    characters = "".join(chr(code) for code in range(0xE000, 0xF900)) + "\uffff\U0010ffff\U000ffffd"
    return f"prompt\r\n{characters}\r\n".encode()


# JSON --------------------------------------------------------------------------------------------------


@_entry("deeply-nested.json", "json", 422, "invalid_json")
def _deeply_nested_json(seed: int) -> bytes:
    """100,000 nested lists: a recursive decoder's stack overflow."""
    return b"[" * 100_000 + b"]" * 100_000


@_entry("nine-megabyte-string.json", "json", 202, "accepted")
def _nine_megabyte_string(seed: int) -> bytes:
    """One prompt of 9,000,000 characters in a valid JSON list."""
    return b'[{"prompt": "' + b"x" * 9_000_000 + b'"}]'


@_entry("million-values.json", "json", 422, "too_many_values")
def _million_values(seed: int) -> bytes:
    """A list of 3,000,000 empty lists: 3 bytes of file, 80 bytes of memory each once decoded."""
    return b"[" + b"[]," * 3_000_000 + b"[]]"


@_entry("giant-number.json", "json", 422, "invalid_json")
def _giant_number(seed: int) -> bytes:
    """A field holding a 5,000,000-digit integer (Python refuses to convert over 4,300 digits)."""
    return b'[{"prompt": "hello", "id": ' + b"7" * 5_000_000 + b"}]"


@_entry("duplicate-keys.json", "json", 422, "duplicate_column")
def _duplicate_keys(seed: int) -> bytes:
    """An object with "prompt" twice: a JSON reader silently keeps one of the two prompts."""
    return b'[{"prompt": "harmless", "prompt": "the one a reviewer never saw"}]'


@_entry("broken-line.jsonl", "json", 422, "invalid_json")
def _jsonl_broken_line(seed: int) -> bytes:
    """JSON Lines whose third line is cut off mid-object."""
    return b'{"prompt": "one"}\n{"prompt": "two"}\n{"prompt": "thr\n{"prompt": "four"}\n'


@_entry("reserved-key.json", "content", 422, "reserved_column")
def _reserved_key(seed: int) -> bytes:
    """Objects with a " Row_Status " field, the reserved results column in other case and padding."""
    return json.dumps([{"prompt": "Explain tides", " Row_Status ": "succeeded"}]).encode()


# XLSX --------------------------------------------------------------------------------------------------


def _workbook(prompts: Sequence[str] = ("Write a limerick",), parts: Mapping[str, bytes] | None = None) -> list[Member]:
    """A real openpyxl workbook's parts, with ``parts`` replacing (or adding) parts by name."""
    parts = parts or {}
    members = workbook_members(("prompt",), [{"prompt": prompt} for prompt in prompts])
    kept = [member for member in members if member.name not in parts]
    return kept + [Member.stored(name, data) for name, data in parts.items()]


def _sheet_xml(rows: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="'
        + _MAIN_NS
        + b'"><sheetData>'
        + rows
        + b"</sheetData></worksheet>"
    )


@_entry("ten-thousand-entries.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_10001_entries(seed: int) -> bytes:
    """A valid workbook plus 9,992 empty parts: 10,001 zip entries, one over the limit."""
    members = _workbook()
    padding = [Member.stored(f"xl/media/pad{index:05d}.bin", b"") for index in range(10_001 - len(members))]
    return write_zip([*members, *padding])


@_entry("absurd-declared-size.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_absurd_declared_size(seed: int) -> bytes:
    """A workbook whose sheet's directory entry claims 4 GB uncompressed (0xFFFFFFFE bytes)."""
    members = [Member(m.name, m.payload, m.crc, 0xFFFF_FFFE) if m.name == SHEET else m for m in _workbook(("Hello",))]
    return write_zip(members)


@_entry("lying-small-size.xlsx", "xlsx", 422, "corrupt_xlsx")
def _xlsx_lying_small_size(seed: int) -> bytes:
    """A sheet declared as 300 bytes whose deflate stream inflates to about 25 MiB (the reader must stop)."""
    prefix = _sheet_xml(b"")[: -len(b"</sheetData></worksheet>")] + b'<row r="1"><c r="A1" t="inlineStr"><is><t>'
    suffix = b"</t></is></c></row></sheetData></worksheet>"
    stream = deflate_bomb(prefix, 100_000, suffix)
    members = [member for member in _workbook() if member.name != SHEET]
    return write_zip([*members, Member(SHEET, stream, 0x1234_5678, 300, method=8)])


def _billion_laughs() -> bytes:
    entities = [b'<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE sst [\n'
        + b"\n".join(entities)
        + b'\n]>\n<sst xmlns="'
        + _MAIN_NS
        + b'" count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    )


@_entry("billion-laughs.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_billion_laughs(seed: int) -> bytes:
    """sharedStrings.xml declares nine nested entities that expand "lol" a billion times."""
    return write_zip(_workbook(parts={SHARED_STRINGS: _billion_laughs()}))


_XXE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<sst xmlns="' + _MAIN_NS + b'" count="1" uniqueCount="1"><si><t>&xxe;</t></si></sst>'
)


@_entry("xxe-shared-strings.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_xxe(seed: int) -> bytes:
    """sharedStrings.xml declares an external entity reading /etc/passwd into the first prompt."""
    return write_zip(_workbook(parts={SHARED_STRINGS: _XXE}))


@_entry("xxe-utf16.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_xxe_utf16(seed: int) -> bytes:
    """The same external entity in a UTF-16 part, which a byte-level scan for <!DOCTYPE does not see."""
    text = _XXE.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return write_zip(_workbook(parts={SHARED_STRINGS: codecs.BOM_UTF16_LE + text.encode("utf-16-le")}))


@_entry("ebcdic-part.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_ebcdic_part(seed: int) -> bytes:
    """A sheet declared as EBCDIC (cp037): its markup hides from every check that reads UTF-8 bytes."""
    body = _sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>')
    body = body.split(b"?>", 1)[1].decode().encode("cp037")
    return write_zip(_workbook(parts={SHEET: b'<?xml version="1.0" encoding="cp037"?>' + body}))


@_entry("path-traversal.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_path_traversal(seed: int) -> bytes:
    """A zip whose entries are named ../../../etc/cron.d/batchqa and /tmp/owned besides a workbook."""
    evil = [Member.stored("../../../etc/cron.d/batchqa", b"* * * * * root id\n"), Member.stored("/tmp/owned", b"x")]
    return write_zip([*_workbook(), *evil])


@_entry("duplicate-entry.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_duplicate_entry(seed: int) -> bytes:
    """Two entries named xl/worksheets/sheet1.xml: a scanner may check one while the reader opens the other."""
    members = _workbook(("harmless",))
    second = Member.stored(SHEET, _sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'))
    return write_zip([*members, second])


@_entry("far-cell.xlsx", "xlsx", 422, "too_many_columns")
def _xlsx_far_cell(seed: int) -> bytes:
    """A header in A1 and one value in XFD1048576, the last cell of a sheet (16,384 columns to pad)."""
    rows = (
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'
        b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far away</t></is></c></row>'
    )
    return write_zip(_workbook(parts={SHEET: _sheet_xml(rows)}))


@_entry("many-shared-strings.xlsx", "xlsx", 422, "too_many_values")
def _xlsx_many_shared_strings(seed: int) -> bytes:
    """A shared-string table of 150,000 distinct texts, which openpyxl reads whole before any sheet."""
    strings = b"".join(b"<si><t>s%d</t></si>" % index for index in range(150_000))
    table = b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="' + _MAIN_NS + b'">' + strings + b"</sst>"
    return write_zip(_workbook(parts={SHARED_STRINGS: table}))


@_entry("many-cells.xlsx", "xlsx", 422, "too_many_values")
def _xlsx_many_cells(seed: int) -> bytes:
    """A sheet of 2,000 rows of 60 numeric cells (120,000), more than a batch's 1,001 rows of 100."""
    cells = b"".join(b"<c><v>%d</v></c>" % column for column in range(60))
    rows = b"".join(b'<row r="%d">%s</row>' % (row, cells) for row in range(1, 2001))
    return write_zip(_workbook(parts={SHEET: _sheet_xml(rows)}))


@_entry("styles-bomb.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_styles_bomb(seed: int) -> bytes:
    """styles.xml with 80,000 cell formats: openpyxl builds an object for each before reading a cell."""
    xfs = b"<xf/>" * 80_000
    styles = (
        b'<?xml version="1.0"?>\n<styleSheet xmlns="' + _MAIN_NS + b'"><cellXfs>' + xfs + b"</cellXfs></styleSheet>"
    )
    return write_zip(_workbook(parts={STYLES: styles}))


@_entry("encrypted-ole.xlsx", "xlsx", 422, "corrupt_xlsx")
def _xlsx_encrypted_ole(seed: int) -> bytes:
    """An OLE compound file header (a password-protected workbook or an old .xls) named .xlsx."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + random.Random(seed).randbytes(4096)


@_entry("plain-zip-traversal.xlsx", "xlsx", 422, "unsafe_xlsx")
def _plain_zip_traversal(seed: int) -> bytes:
    """A plain zip (no workbook) whose only entry is named ..\\..\\windows\\system32\\evil.dll."""
    return write_zip([Member.stored("..\\..\\windows\\system32\\evil.dll", b"MZ" + bytes(64))])


# Names and types ---------------------------------------------------------------------------------------


@_entry("prompts.csv.exe", "name", 415, "unsupported_file_type")
def _double_extension(seed: int) -> bytes:
    """A valid CSV under a name whose real extension is .exe."""
    return _valid_csv(seed)


@_entry("prompts.exe\x00.csv", "name", 415, "unsupported_file_type")
def _nul_in_name(seed: int) -> bytes:
    """A NUL that a C string would cut at: the name is prompts.exe.csv.

    Not refused for the NUL (it is dropped, and what is left ends in .csv) but for the content: an ELF program.
    """
    return b"\x7fELF\x02\x01\x01" + bytes(57)


@_entry("../../../../etc/passwd", "name", 415, "unsupported_file_type")
def _dotdot_name(seed: int) -> bytes:
    """A valid CSV named with a path that climbs to /etc/passwd (no extension once reduced to its base)."""
    return _valid_csv(seed)


@_entry("prompts\u202evsc.exe", "name", 415, "unsupported_file_type")
def _rtl_override_name(seed: int) -> bytes:
    """A right-to-left override makes prompts.exe display as "promptsexe.csv"."""
    return _valid_csv(seed)


@_entry("prompts.csv?", "name", 415, "unsupported_file_type")
def _question_mark_name(seed: int) -> bytes:
    """An HTML page named "prompts.csv?" (a URL's query mark kept by a careless download)."""
    return _sign_in_page()


@_entry("archive.zip", "type", 415, "unsupported_file_type")
def _zip_upload(seed: int) -> bytes:
    """A real workbook named .zip: not an extension the contract accepts."""
    return write_zip(_workbook())


def _sign_in_page() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>\n"
        b"<form action='/login'><input name='prompt'></form>\n</body></html>\n"
    )


@_entry("shared-link.csv", "type", 415, "unsupported_file_type")
def _html_named_csv(seed: int) -> bytes:
    """A sign-in page saved in place of a shared spreadsheet, named .csv."""
    return _sign_in_page()


@_entry("polyglot.csv", "type", 415, "unsupported_file_type")
def _pdf_csv_polyglot(seed: int) -> bytes:
    """A file that is a valid CSV and a PDF at once: "%PDF-" on line 3, "%%EOF" at the end."""
    return (
        b"prompt,category\r\nSummarise this document,content\r\n"
        b"%PDF-1.4,content\r\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj,x\r\n"
        b"trailer << /Root 1 0 R >>,x\r\n%%EOF\r\n"
    )


@_entry("report.csv", "type", 415, "unsupported_file_type")
def _pdf_named_csv(seed: int) -> bytes:
    """A PDF document named .csv."""
    return b"%PDF-1.7\n" + random.Random(seed).randbytes(1024) + b"\n%%EOF\n"


@_entry("workbook.csv", "type", 415, "unsupported_file_type")
def _xlsx_named_csv(seed: int) -> bytes:
    """A real workbook named .csv."""
    return write_zip(_workbook())


# Content rules -----------------------------------------------------------------------------------------


@_entry("whitespace-prompts.csv", "content", 202, "rows_failed")
def _whitespace_prompts(seed: int) -> bytes:
    """Every prompt is spaces, tabs or a no-break space while the category column is filled."""
    return "prompt,category\r\n   ,a\r\n\t,b\r\n\u00a0\u2003,c\r\n".encode()


@_entry("duplicate-column.csv", "content", 422, "duplicate_column")
def _duplicate_column(seed: int) -> bytes:
    """Two prompt columns, "prompt" and " Prompt": which one would be enhanced?"""
    return b"prompt, Prompt\r\nfirst,second\r\n"


@_entry("ansi-escape.csv", "content", 422, "invalid_characters")
def _ansi_escape(seed: int) -> bytes:
    """A prompt with ANSI escapes (ESC[2J clears the screen of whoever views the logs)."""
    return b"prompt\r\nHello \x1b[2J\x1b[31mgotcha\x1b[0m\r\n"


@_entry("bell-in-header.csv", "content", 422, "invalid_characters")
def _bell_in_header(seed: int) -> bytes:
    """A control character (BEL) inside the header name."""
    return b"pro\x07mpt,category\r\nhi,x\r\n"


def corpus(names: Iterable[str] | None = None) -> list[HostileFile]:
    """The entries named, or all of them, in a stable order."""
    return [CORPUS[name] for name in names] if names is not None else list(CORPUS.values())


def accepted_corpus() -> list[HostileFile]:
    """The costly files a valid upload must take whole, in a stable order."""
    return list(ACCEPTED.values())


def write_corpus(dest: Path, *, seed: int = 0, names: Iterable[str] | None = None) -> list[Path]:
    """Write the entries (all by default) as ``dest/<name>`` and a ``MANIFEST.json`` with each one's upload
    name and expected refusal; the upload names stay in the manifest, as several are not valid file names.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    entries = []
    for entry in corpus(names):
        filename, data = entry(seed)
        path = dest / entry.name
        path.write_bytes(data)
        written.append(path)
        entries.append(
            {
                "name": entry.name,
                "upload_filename": filename,
                "category": entry.category,
                "status": entry.status,
                "code": entry.code,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "description": entry.description,
            }
        )
    manifest = {"generator": "utilities.gen.adversarial", "seed": seed, "files": entries}
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [*written, dest / "MANIFEST.json"]


@dataclass(frozen=True)
class MemorySample:
    """A process's resident memory and its peak since start (or since the peak was last reset), in KiB."""

    rss_kib: int
    peak_kib: int


def read_memory(pid: int) -> MemorySample:
    """VmRSS and VmHWM from ``/proc/<pid>/status`` (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return MemorySample(rss_kib=fields["VmRSS"], peak_kib=fields["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Answer:
    """What the target answered to one corpus entry."""

    entry: HostileFile
    status: int
    code: str | None
    seconds: float

    def problem(self, max_seconds: float) -> str | None:
        if (self.status, self.code) != (self.entry.status, self.entry.code):
            return f"{self.entry.name}: got {self.status} {self.code}, expected {self.entry.status} {self.entry.code}"
        if self.seconds > max_seconds:
            return f"{self.entry.name}: answered in {self.seconds:.2f} s, the limit is {max_seconds:g} s"
        return None


@dataclass
class CorpusReport:
    """The answers to a corpus run, the server's memory around it, and what went wrong."""

    answers: list[Answer]
    max_seconds: float
    memory_limit_mib: float
    before: MemorySample | None = None
    after: MemorySample | None = None
    peak_reset: bool = False
    batches_created: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def slowest(self) -> Answer:
        return max(self.answers, key=lambda answer: answer.seconds)

    @property
    def growth_mib(self) -> float | None:
        """Resident memory after the corpus minus before it."""
        return None if self.before is None or self.after is None else (self.after.rss_kib - self.before.rss_kib) / 1024

    @property
    def peak_growth_mib(self) -> float | None:
        """The peak during the corpus minus the resident memory before it."""
        if self.before is None or self.after is None:
            return None
        baseline = self.before.rss_kib if self.peak_reset else self.before.peak_kib
        return (self.after.peak_kib - baseline) / 1024

    def problems(self) -> list[str]:
        found = [problem for answer in self.answers if (problem := answer.problem(self.max_seconds))]
        for label, growth in (("resident memory", self.growth_mib), ("peak memory", self.peak_growth_mib)):
            if growth is not None and growth >= self.memory_limit_mib:
                found.append(f"the server's {label} grew by {growth:.0f} MiB; the limit is {self.memory_limit_mib:g}")
        if self.batches_created:
            found.append(f"{self.batches_created} batch(es) were created from hostile files")
        return found + self.extra

    def summary(self) -> str:
        slowest = self.slowest
        memory = ""
        if self.before is not None and self.after is not None:
            memory = (
                f"; server RSS {self.before.rss_kib / 1024:.0f} -> {self.after.rss_kib / 1024:.0f} MiB, "
                f"peak {self.after.peak_kib / 1024:.0f} MiB"
                + ("" if self.peak_reset else " (peak not reset: includes start-up)")
            )
        return (
            f"{len(self.answers)} hostile files, slowest {slowest.entry.name} in {slowest.seconds:.2f} s{memory}: "
            + ("OK" if not self.problems() else f"{len(self.problems())} problem(s)")
        )


def run_corpus(
    api: BatchApi,
    entries: Sequence[HostileFile],
    *,
    pid: int | None = None,
    seed: int = 0,
    max_seconds: float = 2.0,
    memory_limit_mib: float = 100.0,
) -> CorpusReport:
    """Post every entry as ``api``'s user and collect the answers; ``pid`` (a local server) adds memory.

    Each file is built before its clock starts, so the time is the request's alone.
    """
    before = None
    peak_reset = False
    if pid is not None:
        peak_reset = reset_peak(pid)
        before = read_memory(pid)
    answers = []
    for entry in entries:
        filename, data = entry(seed)
        started = time.perf_counter()
        response = api.upload_raw(content=data, filename=filename)
        seconds = time.perf_counter() - started
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        answers.append(Answer(entry, response.status_code, code, seconds))
    after = read_memory(pid) if pid is not None else None
    return CorpusReport(
        answers=answers,
        max_seconds=max_seconds,
        memory_limit_mib=memory_limit_mib,
        before=before,
        after=after,
        peak_reset=peak_reset,
        batches_created=len(api.list_batches()),
    )


__all__ = [
    "ACCEPTED",
    "CORPUS",
    "Answer",
    "CorpusReport",
    "HostileFile",
    "MemorySample",
    "accepted_corpus",
    "corpus",
    "read_memory",
    "reset_peak",
    "run_corpus",
    "write_corpus",
]
