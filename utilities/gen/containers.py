"""Byte-reproducible containers: a hand-written zip, an openpyxl workbook's parts, a deflate bomb, a PNG."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import openpyxl


@dataclass(frozen=True)
class Member:
    """One zip entry: ``payload`` is stored as is (method 0) or is a raw deflate stream (method 8)."""

    name: str
    payload: bytes
    crc: int
    size: int
    method: int = 0

    @classmethod
    def stored(cls, name: str, data: bytes) -> Member:
        return cls(name, data, zlib.crc32(data), len(data))


_DOS_DATE_1980_01_01 = (1 << 5) | 1
_FIXED_TIMESTAMP = "2000-01-01T00:00:00Z"
_APP_XML = (
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    b"<Application>batchqa csv_generator</Application></Properties>"
)


def write_zip(members: Sequence[Member]) -> bytes:
    """A zip of ``members`` in name order, dated 1980-01-01, with no extra fields.

    Written by hand rather than with ``zipfile`` because zipfile stamps the host OS into every entry
    and deflate output varies between zlib builds (zlib-ng); stored entries are the same bytes anywhere.
    """
    body = bytearray()
    directory = bytearray()
    for member in sorted(members, key=lambda m: m.name):
        name = member.name.encode("ascii")
        common = struct.pack(
            "<HHHHHIII",
            20,
            0,
            member.method,
            0,
            _DOS_DATE_1980_01_01,
            member.crc,
            len(member.payload),
            member.size,
        )
        offset = len(body)
        body += struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(name), 0) + name + member.payload
        directory += struct.pack("<IH", 0x02014B50, 20) + common
        directory += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    return bytes(body + directory + end)


def workbook_members(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> list[Member]:
    """The entries of an openpyxl workbook of ``rows``, with its clock and version readings pinned."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "prompts"
    sheet.append(list(columns))
    for row in rows:
        sheet.append([row[c] for c in columns])
    for line in sheet.iter_rows():
        for cell in line:
            if cell.data_type == "f":
                cell.data_type = "s"  # openpyxl reads a leading "=" as a formula; a prompt is text
    workbook.properties.creator = "batchqa"
    buffer = io.BytesIO()
    workbook.save(buffer)
    members = []
    with zipfile.ZipFile(buffer) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" + _FIXED_TIMESTAMP.encode(), data)
            elif name == "docProps/app.xml":
                data = _APP_XML  # openpyxl writes its own version here
            members.append(Member.stored(name, data))
    return members


class _BitWriter:
    """Deflate's bit order: fields fill bytes from the least significant bit; Huffman codes go MSB first."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def bits(self, value: int, count: int) -> None:
        self.value |= value << self.count
        self.count += count

    def code(self, code: int, length: int) -> None:
        self.bits(int(f"{code:0{length}b}"[::-1], 2), length)

    def fixed_literals(self, data: bytes) -> None:
        for byte in data:
            if byte < 144:
                self.code(0x30 + byte, 8)
            else:
                self.code(0x190 + byte - 144, 9)
        self.code(0, 7)  # end of block

    def getvalue(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def deflate_bomb(prefix: bytes, repeats: int, suffix: bytes) -> bytes:
    """A raw deflate stream of ``prefix``, its last byte ``258 * repeats`` more times, then ``suffix``.

    Hand-built so the bytes do not depend on the zlib build: the middle block gives the two symbols it
    uses (copy 258 bytes, end of block) one-bit codes and one distance (1) a one-bit code, so each copy
    costs two bits, about 1:1000, deflate's ceiling.
    """
    out = _BitWriter()
    out.bits(0b010, 3)  # not final, fixed Huffman
    out.fixed_literals(prefix)
    out.bits(0b100, 3)  # not final, dynamic Huffman
    out.bits(286 - 257, 5)  # literal/length codes 0..285
    out.bits(1 - 1, 5)  # one distance code
    order = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1)
    out.bits(len(order) - 4, 4)
    for symbol in order:
        out.bits(1 if symbol in (1, 18) else 0, 3)  # code-length alphabet: "1" -> 0, "18" (zeros) -> 1
    for zeros in (138, 118):  # literals 0..255 unused
        out.code(1, 1)
        out.bits(zeros - 11, 7)
    out.code(0, 1)  # 256, end of block: length 1
    out.code(1, 1)
    out.bits(28 - 11, 7)  # 257..284 unused
    out.code(0, 1)  # 285, copy 258: length 1
    out.code(0, 1)  # distance code 0 (distance 1): length 1
    out.bits(((1 << (2 * repeats)) - 1) // 3, 2 * repeats)  # "1" (copy 258) then "0" (distance 1), repeated
    out.code(0, 1)  # end of block
    out.bits(0b011, 3)  # final, fixed Huffman
    out.fixed_literals(suffix)
    return out.getvalue()


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    scanline = b"\x00\x2e\x86\xc1"  # filter "none", one RGB pixel
    stored = b"\x01" + struct.pack("<HH", len(scanline), len(scanline) ^ 0xFFFF) + scanline
    image = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(scanline))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", image)
        + chunk(b"IEND", b"")
    )
