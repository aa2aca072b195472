"""Named invalid uploads, one per way a file breaks the contract, each the same bytes for the same seed."""

from __future__ import annotations

import inspect
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker

from utilities.gen.containers import Member, deflate_bomb, png_1x1, workbook_members, write_zip
from utilities.gen.content import MAX_PROMPTS, MAX_UPLOAD_BYTES, GenSpec, generate_rows
from utilities.gen.writers import csv_line, generate, render


@dataclass(frozen=True)
class InvalidVariant:
    """A named invalid upload; calling it returns ``(filename, bytes)``, the same bytes for the same seed."""

    name: str
    filename: str
    description: str
    build: Callable[[int], bytes]

    def __call__(self, seed: int = 0) -> tuple[str, bytes]:
        return self.filename, self.build(seed)


INVALID_VARIANTS: dict[str, InvalidVariant] = {}


def _variant(filename: str) -> Callable[[Callable[[int], bytes]], Callable[[int], bytes]]:
    def register(build: Callable[[int], bytes]) -> Callable[[int], bytes]:
        name = build.__name__.lstrip("_")
        description = inspect.cleandoc(build.__doc__ or "").splitlines()[0]
        INVALID_VARIANTS[name] = InvalidVariant(name=name, filename=filename, description=description, build=build)
        return build

    return register


@_variant("empty.csv")
def _empty(seed: int) -> bytes:
    """A zero-byte file."""
    return b""


@_variant("header-only.csv")
def _header_only(seed: int) -> bytes:
    """The header row prompt,category,tags and no prompts."""
    return generate(GenSpec(rows=0, seed=seed))


@_variant("too-many-1001.csv")
def _too_many_rows(seed: int) -> bytes:
    """1001 valid prompts, one over the 1000-prompt limit."""
    return generate(GenSpec(rows=MAX_PROMPTS + 1, seed=seed))


@_variant("too-large.csv")
def _too_large(seed: int) -> bytes:
    """A valid CSV of 500 prompts (each under 32,000 characters) padded to exactly 10 MiB + 1 byte."""
    spec = GenSpec(rows=500, seed=seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    sentences = [fake.sentence() for _ in range(256)]
    rng = random.Random(seed)
    header = csv_line(spec.columns, ",", "\r\n")
    budget = MAX_UPLOAD_BYTES + 1 - len(header.encode())
    lines: list[str] = []
    rows = generate_rows(spec)
    for index, row in enumerate(rows):
        size = budget // (len(rows) - index)  # spread what is left; the last row takes the exact rest
        budget -= size
        parts = [row["prompt"], "Background notes:"]
        length = sum(map(len, parts))
        while length < size:
            parts.append(rng.choice(sentences))
            length += len(parts[-1]) + 1
        padded = " ".join(parts)
        values = [padded, row["category"], row["tags"]]
        excess = len(csv_line(values, ",", "\r\n").encode()) - size
        prompt = padded[: len(padded) - excess]  # the padding is ASCII: one character is one byte
        values[0] = prompt[:-1] + "." if prompt.endswith(" ") else prompt
        lines.append(csv_line(values, ",", "\r\n"))
    return (header + "".join(lines)).encode()


@_variant("corrupt.csv")
def _corrupt_csv(seed: int) -> bytes:
    """Line 3 opens a quote that never closes, so the rest of the file reads as one field."""
    rows = generate_rows(GenSpec(rows=8, extra_columns=("category",), seed=seed))
    lines = ["prompt,category"]
    for index, row in enumerate(rows):
        prompt = row["prompt"].replace('"', "").replace(",", "")
        lines.append(f'"{prompt},{row["category"]}' if index == 1 else f"{prompt},{row['category']}")
    return ("\r\n".join(lines) + "\r\n").encode()


@_variant("missing-column.csv")
def _missing_prompt_column(seed: int) -> bytes:
    """Valid rows under a header without a prompt column (it says text instead)."""
    return b"text" + generate(GenSpec(rows=10, seed=seed)).removeprefix(b"prompt")


@_variant("reserved-column.csv")
def _reserved_column(seed: int) -> bytes:
    """Valid prompts plus a row_status column, a name the contract reserves for results."""
    return generate(GenSpec(rows=10, extra_columns=("category", "row_status"), seed=seed))


@_variant("truncated.xlsx")
def _truncated_xlsx(seed: int) -> bytes:
    """The first half of a valid workbook: a zip cut off before its central directory."""
    data = generate(GenSpec(rows=10, fmt="xlsx", seed=seed))
    return data[: len(data) // 2]


@_variant("png-renamed.xlsx")
def _png_as_xlsx(seed: int) -> bytes:
    """A real 1x1 PNG image saved under an .xlsx name."""
    return png_1x1()


BOMB_SHEET = "xl/worksheets/sheet1.xml"
_BOMB_REPEATS = 520_000  # 520,000 * 258 bytes, about 128 MiB, from a file of about 130 KB


@_variant("zip-bomb.xlsx")
def _xlsx_zip_bomb(seed: int) -> bytes:
    """A real workbook whose sheet inflates to about 128 MiB (one cell of A's) from a 130 KB file."""
    prefix = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>A'
    )
    suffix = b"</t></is></c></row></sheetData></worksheet>"
    size = len(prefix) + 258 * _BOMB_REPEATS + len(suffix)
    crc = zlib.crc32(prefix)
    block = b"A" * (1 << 20)
    full, rest = divmod(258 * _BOMB_REPEATS, len(block))
    for _ in range(full):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, zlib.crc32(block[:rest], crc))
    sheet = Member(BOMB_SHEET, deflate_bomb(prefix, _BOMB_REPEATS, suffix), crc, size, method=8)
    members = [m for m in workbook_members(("prompt",), [{"prompt": "A"}]) if m.name != BOMB_SHEET]
    return write_zip([*members, sheet])


@_variant("xml-entity.xlsx")
def _xlsx_xml_entity(seed: int) -> bytes:
    """A workbook whose sheet declares a DTD with an external (file:///etc/passwd) and an internal entity."""
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        b'<!DOCTYPE worksheet [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
        b'  <!ENTITY topic "Write a blog post about XML entities">\n]>\n'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>&topic;</t></is></c></row>'
        b'<row r="3"><c r="A3" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    members = [m for m in workbook_members(("prompt",), [{"prompt": "x"}]) if m.name != BOMB_SHEET]
    return write_zip([*members, Member.stored(BOMB_SHEET, sheet)])


@_variant("wrong-encoding.csv")
def _wrong_encoding(seed: int) -> bytes:
    """Rows of high bytes and C1 controls: UTF, CJK and most Windows codecs refuse them; Latin-1 reads C1 junk."""
    rng = random.Random(seed)
    lines = [b"prompt,category"]
    for _ in range(10):
        noise = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(16, 40)))
        # 0x81 has no cp1252 character, 0x98 none in cp1251, 0xFF is never valid UTF-8 or a CJK byte.
        lines.append(b"\x81" + noise[:8] + b"\x98\xff" + noise[8:] + b"\x80,content")
    data = b"\r\n".join(lines) + b"\r\n"
    return data if len(data) % 2 else data + b"\x9d"  # odd length, so no UTF-16 reading fits either


@_variant("nul-bytes.csv")
def _nul_bytes(seed: int) -> bytes:
    """A UTF-8 CSV whose every other prompt has a NUL byte in the middle."""
    spec = GenSpec(rows=10, seed=seed)
    rows = generate_rows(spec)
    for row in rows[::2]:
        middle = len(row["prompt"]) // 2
        row["prompt"] = row["prompt"][:middle] + "\x00" + row["prompt"][middle:]
    return render(spec, rows)


@_variant("binary.csv")
def _invalid_format(seed: int) -> bytes:
    """Binary data behind a gzip magic number, named .csv."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + random.Random(seed).randbytes(2048)
