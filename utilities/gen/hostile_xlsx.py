"""Hostile workbooks: archives that unpack into gigabytes or lie about sizes, XML that expands or reads local
files, path traversal, duplicate entries, far cells, style bombs, an encrypted OLE file."""

from __future__ import annotations

import codecs
import random
from collections.abc import Mapping, Sequence

from utilities.gen.containers import Member, deflate_bomb, workbook_members, write_zip
from utilities.gen.hostile_file import entry

SHEET = "xl/worksheets/sheet1.xml"
SHARED_STRINGS = "xl/sharedStrings.xml"
STYLES = "xl/styles.xml"
MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# XLSX --------------------------------------------------------------------------------------------------


def workbook(prompts: Sequence[str] = ("Write a limerick",), parts: Mapping[str, bytes] | None = None) -> list[Member]:
    """A real openpyxl workbook's parts, with ``parts`` replacing (or adding) parts by name."""
    parts = parts or {}
    members = workbook_members(("prompt",), [{"prompt": prompt} for prompt in prompts])
    kept = [member for member in members if member.name not in parts]
    return kept + [Member.stored(name, data) for name, data in parts.items()]


def sheet_xml(rows: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="'
        + MAIN_NS
        + b'"><sheetData>'
        + rows
        + b"</sheetData></worksheet>"
    )


@entry("ten-thousand-entries.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_10001_entries(seed: int) -> bytes:
    """A valid workbook plus 9,992 empty parts: 10,001 zip entries, one over the limit."""
    members = workbook()
    padding = [Member.stored(f"xl/media/pad{index:05d}.bin", b"") for index in range(10_001 - len(members))]
    return write_zip([*members, *padding])


@entry("absurd-declared-size.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_absurd_declared_size(seed: int) -> bytes:
    """A workbook whose sheet's directory entry claims 4 GB uncompressed (0xFFFFFFFE bytes)."""
    members = [Member(m.name, m.payload, m.crc, 0xFFFF_FFFE) if m.name == SHEET else m for m in workbook(("Hello",))]
    return write_zip(members)


@entry("lying-small-size.xlsx", "xlsx", 422, "corrupt_xlsx")
def _xlsx_lying_small_size(seed: int) -> bytes:
    """A sheet declared as 300 bytes whose deflate stream inflates to about 25 MiB (the reader must stop)."""
    prefix = sheet_xml(b"")[: -len(b"</sheetData></worksheet>")] + b'<row r="1"><c r="A1" t="inlineStr"><is><t>'
    suffix = b"</t></is></c></row></sheetData></worksheet>"
    stream = deflate_bomb(prefix, 100_000, suffix)
    members = [member for member in workbook() if member.name != SHEET]
    return write_zip([*members, Member(SHEET, stream, 0x1234_5678, 300, method=8)])


def _billion_laughs() -> bytes:
    entities = [b'<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE sst [\n'
        + b"\n".join(entities)
        + b'\n]>\n<sst xmlns="'
        + MAIN_NS
        + b'" count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    )


@entry("billion-laughs.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_billion_laughs(seed: int) -> bytes:
    """sharedStrings.xml declares nine nested entities that expand "lol" a billion times."""
    return write_zip(workbook(parts={SHARED_STRINGS: _billion_laughs()}))


_XXE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<sst xmlns="' + MAIN_NS + b'" count="1" uniqueCount="1"><si><t>&xxe;</t></si></sst>'
)


@entry("xxe-shared-strings.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_xxe(seed: int) -> bytes:
    """sharedStrings.xml declares an external entity reading /etc/passwd into the first prompt."""
    return write_zip(workbook(parts={SHARED_STRINGS: _XXE}))


@entry("xxe-utf16.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_xxe_utf16(seed: int) -> bytes:
    """The same external entity in a UTF-16 part, which a byte-level scan for <!DOCTYPE does not see."""
    text = _XXE.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return write_zip(workbook(parts={SHARED_STRINGS: codecs.BOM_UTF16_LE + text.encode("utf-16-le")}))


@entry("ebcdic-part.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_ebcdic_part(seed: int) -> bytes:
    """A sheet declared as EBCDIC (cp037): its markup hides from every check that reads UTF-8 bytes."""
    body = sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>')
    body = body.split(b"?>", 1)[1].decode().encode("cp037")
    return write_zip(workbook(parts={SHEET: b'<?xml version="1.0" encoding="cp037"?>' + body}))


@entry("path-traversal.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_path_traversal(seed: int) -> bytes:
    """A zip whose entries are named ../../../etc/cron.d/batchqa and /tmp/owned besides a workbook."""
    evil = [Member.stored("../../../etc/cron.d/batchqa", b"* * * * * root id\n"), Member.stored("/tmp/owned", b"x")]
    return write_zip([*workbook(), *evil])


@entry("duplicate-entry.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_duplicate_entry(seed: int) -> bytes:
    """Two entries named xl/worksheets/sheet1.xml: a scanner may check one while the reader opens the other."""
    members = workbook(("harmless",))
    second = Member.stored(SHEET, sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'))
    return write_zip([*members, second])


@entry("far-cell.xlsx", "xlsx", 422, "too_many_columns")
def _xlsx_far_cell(seed: int) -> bytes:
    """A header in A1 and one value in XFD1048576, the last cell of a sheet (16,384 columns to pad)."""
    rows = (
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'
        b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far away</t></is></c></row>'
    )
    return write_zip(workbook(parts={SHEET: sheet_xml(rows)}))


@entry("many-shared-strings.xlsx", "xlsx", 422, "too_many_values")
def _xlsx_many_shared_strings(seed: int) -> bytes:
    """A shared-string table of 150,000 distinct texts, which openpyxl reads whole before any sheet."""
    strings = b"".join(b"<si><t>s%d</t></si>" % index for index in range(150_000))
    table = b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="' + MAIN_NS + b'">' + strings + b"</sst>"
    return write_zip(workbook(parts={SHARED_STRINGS: table}))


@entry("many-cells.xlsx", "xlsx", 422, "too_many_values")
def _xlsx_many_cells(seed: int) -> bytes:
    """A sheet of 2,000 rows of 60 numeric cells (120,000), more than a batch's 1,001 rows of 100."""
    cells = b"".join(b"<c><v>%d</v></c>" % column for column in range(60))
    rows = b"".join(b'<row r="%d">%s</row>' % (row, cells) for row in range(1, 2001))
    return write_zip(workbook(parts={SHEET: sheet_xml(rows)}))


@entry("styles-bomb.xlsx", "xlsx", 422, "unsafe_xlsx")
def _xlsx_styles_bomb(seed: int) -> bytes:
    """styles.xml with 80,000 cell formats: openpyxl builds an object for each before reading a cell."""
    xfs = b"<xf/>" * 80_000
    styles = b'<?xml version="1.0"?>\n<styleSheet xmlns="' + MAIN_NS + b'"><cellXfs>' + xfs + b"</cellXfs></styleSheet>"
    return write_zip(workbook(parts={STYLES: styles}))


@entry("encrypted-ole.xlsx", "xlsx", 422, "corrupt_xlsx")
def _xlsx_encrypted_ole(seed: int) -> bytes:
    """An OLE compound file header (a password-protected workbook or an old .xls) named .xlsx."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + random.Random(seed).randbytes(4096)


@entry("plain-zip-traversal.xlsx", "xlsx", 422, "unsafe_xlsx")
def _plain_zip_traversal(seed: int) -> bytes:
    """A plain zip (no workbook) whose only entry is named ..\\..\\windows\\system32\\evil.dll."""
    return write_zip([Member.stored("..\\..\\windows\\system32\\evil.dll", b"MZ" + bytes(64))])
