"""Seeded, byte-reproducible prompt files (CSV, XLSX, TXT, JSON, JSONL) and named invalid uploads for US-003."""

from __future__ import annotations

import codecs
import hashlib
import inspect
import io
import json
import logging
import random
import re
import struct
import sys
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import click
import openpyxl
from faker import Faker
from faker.config import AVAILABLE_LOCALES

logger = logging.getLogger(__name__)

Format = Literal["csv", "xlsx", "txt", "json", "jsonl"]
Encoding = Literal["utf-8", "utf-8-sig", "utf-16", "cp1252"]
FORMATS: tuple[str, ...] = get_args(Format)
ENCODINGS: tuple[str, ...] = get_args(Encoding)
DELIMITERS = (",", ";", "\t")
LINE_ENDINGS = ("\r\n", "\n")
MIXES = (
    "plain",
    "cjk",
    "rtl",
    "emoji_zwj",
    "combining",
    "special_chars",
    "formula_leading",
    "very_long",
    "multiline",
)
CP1252_SAFE_MIXES = ("plain", "special_chars", "formula_leading", "very_long", "multiline")

MAX_PROMPTS = 1000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_FIXTURES_DIR = Path("fixtures/files")
REGENERATE_COMMAND = "batchqa gen --fixtures fixtures/files"

CATEGORIES = ("content", "education", "business", "marketing", "technology", "creative", "health", "travel")
TAGS = (
    "writing",
    "blog",
    "science",
    "physics",
    "marketing",
    "strategy",
    "email",
    "social",
    "seo",
    "research",
    "summary",
    "translation",
    "code",
    "poetry",
    "planning",
    "finance",
)
AUDIENCES = ("five-year-old", "busy executive", "high-school student", "new hire", "skeptical engineer")
TONES = ("friendly", "formal", "playful", "neutral", "persuasive")
# Lengths cycle per very_long row; the longest stays under the backend's 32,000-character prompt limit.
VERY_LONG_LENGTHS = (2_000, 4_000, 8_000, 16_000, 24_000, 30_000)


@dataclass(frozen=True, kw_only=True)
class GenSpec:
    """What to generate. ``xlsx`` ignores encoding, delimiter and line ending; ``txt`` holds prompts only.

    Rows cycle through ``mix`` in order; each row's faker locale is drawn from ``locales``. The ``cjk``
    and ``rtl`` mixes bring their own languages whatever ``locales`` says.
    """

    rows: int = 10
    extra_columns: tuple[str, ...] = ("category", "tags")
    fmt: Format = "csv"
    encoding: Encoding = "utf-8"
    delimiter: str = ","
    line_ending: str = "\r\n"
    locales: tuple[str, ...] = ("en_US",)
    mix: tuple[str, ...] = ("plain",)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("extra_columns", "locales", "mix"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        problems = []
        if self.rows < 0:
            problems.append(f"rows must be >= 0, not {self.rows}")
        for name, allowed in (
            ("fmt", FORMATS),
            ("encoding", ENCODINGS),
            ("delimiter", DELIMITERS),
            ("line_ending", LINE_ENDINGS),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if not self.mix or set(self.mix) - set(MIXES):
            problems.append(f"mix must name one or more of {MIXES}, not {self.mix}")
        if not self.locales or set(self.locales) - set(AVAILABLE_LOCALES):
            problems.append(f"locales must be faker locales, not {self.locales}")
        if "prompt" in self.extra_columns or len(set(self.extra_columns)) != len(self.extra_columns):
            problems.append(f"extra_columns must be distinct and must not repeat 'prompt': {self.extra_columns}")
        if not all(self.extra_columns):
            problems.append("extra_columns must not contain an empty name")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def columns(self) -> tuple[str, ...]:
        return ("prompt",) if self.fmt == "txt" else ("prompt", *self.extra_columns)


class _FakerPool:
    """One seeded Faker per locale, made on first use, so every locale's stream depends only on the seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._fakers: dict[str, Faker] = {}

    def __getitem__(self, locale: str) -> Faker:
        if locale not in self._fakers:
            fake = Faker(locale)
            fake.seed_instance(self.seed)
            self._fakers[locale] = fake
        return self._fakers[locale]


@dataclass(frozen=True)
class _Row:
    rng: random.Random
    fakers: _FakerPool
    locale: str

    @property
    def fake(self) -> Faker:
        return self.fakers[self.locale]


def _topic(fake: Faker, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return fake.catch_phrase().lower()
    if kind == 1:
        return f"how to {fake.bs()}"
    if kind == 2:
        return f"the history of {fake.city()}"
    return f"working as a {fake.job()}"


_SLOT_MAKERS: dict[str, Callable[[Faker, random.Random], str]] = {
    "topic": _topic,
    "word": lambda fake, rng: fake.word(),
    "sentence": lambda fake, rng: fake.sentence(),
    "name": lambda fake, rng: fake.first_name(),
    "job": lambda fake, rng: fake.job(),
    "city": lambda fake, rng: fake.city(),
    "company": lambda fake, rng: fake.company(),
    "audience": lambda fake, rng: rng.choice(AUDIENCES),
    "tone": lambda fake, rng: rng.choice(TONES),
    "n": lambda fake, rng: str(rng.choice((3, 5, 7, 10))),
}


class _Slots(dict[str, str]):
    """Template blanks filled on first use: ``{topic2}`` is another topic, ``{en_company}`` an en_US company."""

    def __init__(self, row: _Row, fake: Faker, **fixed: str) -> None:
        super().__init__(fixed)
        self.row = row
        self.fake = fake

    def __missing__(self, key: str) -> str:
        kind, fake = key.rstrip("0123456789"), self.fake
        if kind.startswith("en_"):
            kind, fake = kind[3:], self.row.fakers["en_US"]
        self[key] = _SLOT_MAKERS[kind](fake, self.row.rng)
        return self[key]


def _fill(template: str, row: _Row, fake: Faker | None = None, **fixed: str) -> str:
    return template.format_map(_Slots(row, fake or row.fake, **fixed))


_PLAIN = (
    "Write a blog post about {topic}.",
    "Explain {topic} to a {audience}.",
    "Create a marketing plan for {company}.",
    "Draft a friendly email to {name} about {topic}.",
    "List {n} interview questions for a {job} position.",
    "Plan a three-day trip to {city} on a tight budget.",
    "Summarize the pros and cons of {topic} in {n} bullet points.",
    "Compare {topic} with {topic2} for a {audience}.",
)
_CJK = (
    ("zh_CN", "请写一篇关于{word}和{word2}的博客文章，字数约{n}00字。"),
    ("ja_JP", "{word}について、初心者にもわかるように説明してください。"),
    ("ko_KR", "{job}에 대한 마케팅 계획을 세워 주세요."),
    ("zh_CN", "用简单的语言解释“{word}”是什么意思：{sentence}"),
    ("ja_JP", "「{company}」の新商品のキャッチコピーを３つ考えてください。"),
    ("ko_KR", "{city}에서 3일 동안의 여행 일정을 짜 주세요."),
)
_RTL = (
    ("ar_AA", "اكتب مقالة عن {word} لمدونة {en_company}."),
    ("he_IL", "הסבר את {word} ב-3 שלבים עבור {en_job}."),
    ("ar_AA", "ترجم إلى الإنجليزية: {sentence}"),
    ("he_IL", "Translate into English: {sentence}"),
    ("ar_AA", "\N{RIGHT-TO-LEFT MARK}لخص عمل {job} في 5 نقاط عن {en_topic}."),
    ("he_IL", "כתוב מייל ל{name} על {en_topic} \N{LEFT-TO-RIGHT MARK}(2025)"),
)
_ZWJ_SEQUENCES = (
    "\N{MAN}\N{ZERO WIDTH JOINER}\N{WOMAN}\N{ZERO WIDTH JOINER}\N{GIRL}\N{ZERO WIDTH JOINER}\N{BOY}",
    "\N{WOMAN}\N{EMOJI MODIFIER FITZPATRICK TYPE-4}\N{ZERO WIDTH JOINER}\N{PERSONAL COMPUTER}",
    "\N{WAVING WHITE FLAG}\N{VARIATION SELECTOR-16}\N{ZERO WIDTH JOINER}\N{RAINBOW}",
    "\N{ADULT}\N{EMOJI MODIFIER FITZPATRICK TYPE-6}\N{ZERO WIDTH JOINER}\N{ROCKET}",
    "\N{HEAVY BLACK HEART}\N{VARIATION SELECTOR-16}\N{ZERO WIDTH JOINER}\N{FIRE}",
    "\N{BEAR FACE}\N{ZERO WIDTH JOINER}\N{SNOWFLAKE}\N{VARIATION SELECTOR-16}",
)
_EMOJI = (
    *_ZWJ_SEQUENCES,
    "\N{REGIONAL INDICATOR SYMBOL LETTER J}\N{REGIONAL INDICATOR SYMBOL LETTER P}",
    "1\N{VARIATION SELECTOR-16}\N{COMBINING ENCLOSING KEYCAP}",
    "\N{THUMBS UP SIGN}\N{EMOJI MODIFIER FITZPATRICK TYPE-1-2}",
)
_EMOJI_TEMPLATES = (
    "Write an Instagram caption about {topic} {zwj}{emoji}",
    "{zwj} Plan a family weekend in {city} {emoji}",
    "Explain {topic} using emoji hints only: {zwj} + {emoji} = ?",
    "Draft a tweet for {company} announcing {topic} {emoji}{zwj}",
    "Rewrite this for a {audience}: {sentence} {zwj}",
    "Give {n} ideas for a {zwj} themed party",
)
_ACCENTED = ("café", "naïve", "crème brûlée", "Ångström", "Tiếng Việt", "São Paulo", "Zürich", "Dvořák")
_DEVANAGARI = ("नमस्ते", "धन्यवाद", "स्वागत है")
_THAI = ("สวัสดีครับ", "ขอบคุณมาก", "ยินดีต้อนรับ")
_COMBINING_TEMPLATES = (
    "Explain why {nfd} and {nfc} look the same but may not compare equal.",
    "Write a menu description for {nfd} served in {city}.",
    "Write a spooky story titled {zalgo}.",
    "Translate {devanagari} into English and explain when to use it.",
    "Write a greeting card in Thai that starts with {thai}.",
    "Teach a {audience} how to pronounce {nfd}.",
)
_SPECIAL_TEMPLATES = (
    "Explain the difference between \"double quotes\", 'single quotes' and `backticks` in {topic}.",
    "Write SQL for: SELECT * FROM users WHERE name = 'O''Brien'; -- asked by {name}",
    "Why does <script>alert('xss')</script> & &amp; break {company}'s site?",
    "Split these values for {topic}: a,b;c\td|e",
    "Price check for {company}: €\N{NO-BREAK SPACE}19.99 — 50% off… © ® ™ ± 5°",
    "Escape these for a {audience}: C:\\Users\\{name}\\notes.txt, ${{HOME}}, {{{{braces}}}}, %s %d \\n",
    "Review the “smart quotes”, ‘single’ and «guillemets» in an essay about {topic}.",
)
# One per CSV-injection trigger the contract names (=, +, -, @, tab, CR); rows cycle through them in order.
_FORMULA_TEMPLATES = (
    '=HYPERLINK("https://example.com/?q={word}","Learn about {topic}")',
    "+1 555 0100: call {name} about {topic}",
    "-5% budget: explain {topic} to a {audience}",
    "@SUM(1+1)*cmd|' /C calc'!A0 {topic}",
    "\tIndented prompt: write a haiku about {topic}",
    "\rCarriage return first: summarize {topic}",
)
_MULTILINE_TEMPLATES = (
    "Write a poem about {topic}.\nIt should have three stanzas.\nEnd with a question.",
    "Turn these notes into an email to {name}:\n- {sentence}\n- {sentence2}\n- {sentence3}",
    "Fix the grammar in this paragraph:\n\n{sentence}\n\nKeep the tone {tone}.",
    "Step 1: research {topic}\r\nStep 2: outline it\r\nStep 3: write the draft",
    "Summarize for a {audience}:\n{sentence}\n",
    "Reply with a table:\n| name | role |\n| {name} | {job} |",
)


def _plain(row: _Row, k: int) -> str:
    return _fill(_PLAIN[k % len(_PLAIN)], row)


def _cjk(row: _Row, k: int) -> str:
    locale, template = _CJK[k % len(_CJK)]
    return _fill(template, row, row.fakers[locale])


def _rtl(row: _Row, k: int) -> str:
    locale, template = _RTL[k % len(_RTL)]
    return _fill(template, row, row.fakers[locale])


def _emoji_zwj(row: _Row, k: int) -> str:
    template = _EMOJI_TEMPLATES[k % len(_EMOJI_TEMPLATES)]
    zwj = _ZWJ_SEQUENCES[k % len(_ZWJ_SEQUENCES)]
    return _fill(template, row, zwj=zwj, emoji=row.rng.choice(_EMOJI))


def _zalgo(word: str, rng: random.Random) -> str:
    return "".join(char + "".join(chr(rng.randrange(0x300, 0x370)) for _ in range(rng.randint(1, 3))) for char in word)


def _combining(row: _Row, k: int) -> str:
    word = row.rng.choice(_ACCENTED)
    return _fill(
        _COMBINING_TEMPLATES[k % len(_COMBINING_TEMPLATES)],
        row,
        nfc=unicodedata.normalize("NFC", word),
        nfd=unicodedata.normalize("NFD", word),
        zalgo=_zalgo(row.fakers["en_US"].word(), row.rng),
        devanagari=row.rng.choice(_DEVANAGARI),
        thai=row.rng.choice(_THAI),
    )


def _special_chars(row: _Row, k: int) -> str:
    return _fill(_SPECIAL_TEMPLATES[k % len(_SPECIAL_TEMPLATES)], row)


def _formula_leading(row: _Row, k: int) -> str:
    return _fill(_FORMULA_TEMPLATES[k % len(_FORMULA_TEMPLATES)], row)


def _very_long(row: _Row, k: int) -> str:
    target = VERY_LONG_LENGTHS[k % len(VERY_LONG_LENGTHS)]
    parts = [_fill("Summarize the following notes about {topic} for a {audience}, keeping every action:", row)]
    size = len(parts[0])
    while size < target:
        parts.append(row.fake.sentence())
        size += len(parts[-1]) + 1
    text = " ".join(parts)[:target]
    space = text.rfind(" ", target - 40)
    return (text[:space] if space > 0 else text).rstrip()


def _multiline(row: _Row, k: int) -> str:
    return _fill(_MULTILINE_TEMPLATES[k % len(_MULTILINE_TEMPLATES)], row)


_MIX_BUILDERS: dict[str, Callable[[_Row, int], str]] = {
    "plain": _plain,
    "cjk": _cjk,
    "rtl": _rtl,
    "emoji_zwj": _emoji_zwj,
    "combining": _combining,
    "special_chars": _special_chars,
    "formula_leading": _formula_leading,
    "very_long": _very_long,
    "multiline": _multiline,
}


def _extra_value(column: str, row: _Row, mix: str) -> str:
    rng = row.rng
    match column:
        case "category":
            return rng.choice(CATEGORIES)
        case "tags":
            return ",".join(rng.sample(TAGS, rng.randint(1, 3)))
        case "mix":
            return mix
        case "locale":
            return row.locale
        case "audience":
            return rng.choice(AUDIENCES)
        case "tone":
            return rng.choice(TONES)
        case "max_words":
            return str(rng.choice((50, 100, 200, 400)))
        case "priority":
            return rng.choice(("low", "normal", "high"))
        case _:
            return row.fake.word()


_LINE_BREAK = re.compile(r"\s*(?:\r\n|\r|\n)\s*")
_CR = re.compile(r"\r\n?")


def _fit(record: dict[str, str], spec: GenSpec) -> dict[str, str]:
    """Make the row what the file will hold, so parsing the file gives back exactly these rows."""
    if spec.fmt == "txt":
        return {"prompt": _LINE_BREAK.sub(" ", record["prompt"]).strip()}
    if spec.fmt == "xlsx":
        # XML parsers turn a literal CR into LF, so an xlsx cell can only hold LF line breaks.
        return {column: _CR.sub("\n", value) for column, value in record.items()}
    return record


def iter_rows(spec: GenSpec) -> Iterator[dict[str, str]]:
    """Yield the rows of ``spec`` one at a time (for progress bars); ``generate_rows`` is the list form."""
    rng = random.Random(spec.seed)
    fakers = _FakerPool(spec.seed)
    seen: Counter[str] = Counter()
    for index in range(spec.rows):
        mix = spec.mix[index % len(spec.mix)]
        row = _Row(rng=rng, fakers=fakers, locale=rng.choice(spec.locales))
        record = {"prompt": _MIX_BUILDERS[mix](row, seen[mix])}
        seen[mix] += 1
        for column in spec.extra_columns:
            record[column] = _extra_value(column, row, mix)
        yield _fit(record, spec)


def generate_rows(spec: GenSpec) -> list[dict[str, str]]:
    """The rows ``spec`` describes: ``prompt`` plus the extra columns (``txt``: prompt only)."""
    return list(iter_rows(spec))


def generate(spec: GenSpec) -> bytes:
    """The file ``spec`` describes, byte for byte the same for the same spec."""
    return render(spec, generate_rows(spec))


def render(spec: GenSpec, rows: Sequence[Mapping[str, str]]) -> bytes:
    """Write ``rows`` in the format, encoding, delimiter and line ending of ``spec``."""
    columns = spec.columns
    if spec.fmt == "xlsx":
        return _zip(_workbook_members(columns, rows))
    if spec.fmt == "csv":
        text = "".join(
            _csv_line(values, spec.delimiter, spec.line_ending)
            for values in [columns, *([row[c] for c in columns] for row in rows)]
        )
    elif spec.fmt == "txt":
        text = "".join(_txt_line(index, row["prompt"]) + spec.line_ending for index, row in enumerate(rows, 1))
    elif spec.fmt == "json":
        records = [{c: row[c] for c in columns} for row in rows]
        # json escapes line breaks inside strings, so every literal "\n" here is indentation.
        text = json.dumps(records, ensure_ascii=False, indent=2).replace("\n", spec.line_ending) + spec.line_ending
    else:
        text = "".join(json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + spec.line_ending for row in rows)
    return _encode(text, spec.encoding)


def _csv_cell(value: str, delimiter: str) -> str:
    # csv.writer leaves a lone "\r" unquoted when the terminator is "\n", which splits the record on reading.
    if value == "" or any(char in value for char in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_line(values: Sequence[str], delimiter: str, line_ending: str) -> str:
    return delimiter.join(_csv_cell(value, delimiter) for value in values) + line_ending


def _txt_line(index: int, prompt: str) -> str:
    if "\r" in prompt or "\n" in prompt or not prompt.strip():
        raise ValueError(f"txt holds one prompt per line, but prompt {index} is blank or spans lines")
    return prompt


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16":
        # Python's "utf-16" codec follows the machine's byte order; pin little-endian so bytes match anywhere.
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start]
        line = exc.object.count("\n", 0, exc.start) + 1
        raise ValueError(
            f"{char!r} (U+{ord(char):04X}) on line {line} has no {encoding} form; "
            f"use mixes from {CP1252_SAFE_MIXES} with a Latin-script locale"
        ) from exc


@dataclass(frozen=True)
class _Member:
    """One zip entry: ``payload`` is stored as is (method 0) or is a raw deflate stream (method 8)."""

    name: str
    payload: bytes
    crc: int
    size: int
    method: int = 0

    @classmethod
    def stored(cls, name: str, data: bytes) -> _Member:
        return cls(name, data, zlib.crc32(data), len(data))


_DOS_DATE_1980_01_01 = (1 << 5) | 1
_FIXED_TIMESTAMP = "2000-01-01T00:00:00Z"
_APP_XML = (
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    b"<Application>batchqa csv_generator</Application></Properties>"
)


def _zip(members: Sequence[_Member]) -> bytes:
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


def _workbook_members(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> list[_Member]:
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
            members.append(_Member.stored(name, data))
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


def _deflate_bomb(prefix: bytes, repeats: int, suffix: bytes) -> bytes:
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


def _png_1x1() -> bytes:
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
    header = _csv_line(spec.columns, ",", "\r\n")
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
        excess = len(_csv_line(values, ",", "\r\n").encode()) - size
        prompt = padded[: len(padded) - excess]  # the padding is ASCII: one character is one byte
        values[0] = prompt[:-1] + "." if prompt.endswith(" ") else prompt
        lines.append(_csv_line(values, ",", "\r\n"))
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
    return _png_1x1()


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
    sheet = _Member(BOMB_SHEET, _deflate_bomb(prefix, _BOMB_REPEATS, suffix), crc, size, method=8)
    members = [m for m in _workbook_members(("prompt",), [{"prompt": "A"}]) if m.name != BOMB_SHEET]
    return _zip([*members, sheet])


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
    members = [m for m in _workbook_members(("prompt",), [{"prompt": "x"}]) if m.name != BOMB_SHEET]
    return _zip([*members, _Member.stored(BOMB_SHEET, sheet)])


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


@dataclass(frozen=True)
class _Fixture:
    name: str
    kind: Literal["valid", "invalid"]
    description: str
    build: Callable[[], bytes]
    prompts: int | None = None


def _valid(name: str, spec: GenSpec, description: str) -> _Fixture:
    return _Fixture(name, "valid", description, lambda: generate(spec), spec.rows)


def _invalid(name: str, variant: str) -> _Fixture:
    chosen = INVALID_VARIANTS[variant]
    return _Fixture(name, "invalid", chosen.description, lambda: chosen()[1])


def _fixture_plan() -> list[_Fixture]:
    same = "the same prompts as every valid-10 file"
    return [
        _valid("valid-10.csv", GenSpec(rows=10, seed=10), f"10 plain prompts, UTF-8, CRLF; {same}"),
        _valid("valid-100.csv", GenSpec(rows=100, seed=100), "100 plain prompts, UTF-8, CRLF"),
        _valid("valid-1000.csv", GenSpec(rows=1000, seed=1000), "1000 plain prompts, the limit"),
        _valid(
            "multi-column.csv",
            GenSpec(
                rows=25,
                extra_columns=("category", "tags", "audience", "tone", "max_words", "priority"),
                locales=("en_US", "de_DE", "fr_FR", "es_ES"),
                mix=("plain", "special_chars"),
                seed=25,
            ),
            "7 columns, European locales, quoting-heavy special characters",
        ),
        _valid(
            "unicode-mix.csv",
            GenSpec(
                rows=6 * len(MIXES),
                extra_columns=("category", "tags", "mix"),
                locales=("en_US", "ja_JP", "ar_AA", "ru_RU", "de_DE"),
                mix=MIXES,
                seed=54,
            ),
            "every content mix six times; the mix column names each row's mix",
        ),
        _valid("valid-10.xlsx", GenSpec(rows=10, fmt="xlsx", seed=10), f"sheet 'prompts'; {same}"),
        _valid("valid-10.txt", GenSpec(rows=10, fmt="txt", line_ending="\n", seed=10), f"one per line; {same}"),
        _valid(
            "valid-10.json",
            GenSpec(rows=10, fmt="json", line_ending="\n", seed=10),
            f'[{{"prompt", "category", "tags"}}, ...]; {same}',
        ),
        _invalid("invalid-format.csv", "corrupt_csv"),
        _invalid("empty.csv", "empty"),
        _invalid("too-many-1001.csv", "too_many_rows"),
        _invalid("missing-column.csv", "missing_prompt_column"),
        *(
            _invalid(f"invalid/{variant.filename}", name)
            for name, variant in INVALID_VARIANTS.items()
            if name != "too_large"  # 10 MiB is too big for git: generated on demand
        ),
    ]


_GITATTRIBUTES = (
    b"# Generated by `batchqa gen --fixtures`: the bytes are the test data, so keep line endings.\n* -text\n"
)


def _entry(name: str, data: bytes, kind: str, description: str, prompts: int | None = None) -> dict[str, object]:
    return {
        "name": name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kind": kind,
        "prompts": prompts,
        "description": description,
    }


def write_fixture_set(dest: Path) -> list[Path]:
    """Write the canonical fixture set, ``MANIFEST.json`` and a ``.gitattributes`` under ``dest``."""
    dest = Path(dest)
    written: list[Path] = []
    files = []
    for fixture in _fixture_plan():
        data = fixture.build()
        path = dest / fixture.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        logger.debug("wrote %s (%d bytes)", path, len(data))
        written.append(path)
        files.append(_entry(fixture.name, data, fixture.kind, fixture.description, fixture.prompts))
    too_large = INVALID_VARIANTS["too_large"]
    on_demand = {
        **_entry(f"invalid/{too_large.filename}", too_large()[1], "invalid", too_large.description),
        "command": f"batchqa gen --invalid too_large -o {too_large.filename}",
    }
    manifest = {
        "generator": "utilities.csv_generator",
        "regenerate": REGENERATE_COMMAND,
        "files": sorted(files, key=lambda entry: str(entry["name"])),
        "on_demand": [on_demand],
    }
    (dest / "MANIFEST.json").write_bytes(json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
    (dest / ".gitattributes").write_bytes(_GITATTRIBUTES)
    return sorted([*written, dest / "MANIFEST.json", dest / ".gitattributes"])


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_DELIMITER_NAMES = {",": ",", ";": ";", "tab": "\t"}


@click.command("gen")
@click.option("-n", "--rows", type=click.IntRange(min=0), default=10, show_default=True, help="Prompts to write.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--encoding", type=click.Choice(ENCODINGS), default="utf-8", show_default=True)
@click.option("--delimiter", type=click.Choice(list(_DELIMITER_NAMES)), default=",", show_default=True)
@click.option("--line-ending", type=click.Choice(["crlf", "lf"]), default="crlf", show_default=True)
@click.option("--columns", default="category,tags", show_default=True, help="Extra columns after prompt ('' = none).")
@click.option("--mix", default="plain", show_default=True, help=f"Comma-separated, or 'all': {', '.join(MIXES)}.")
@click.option("--locale", "locales", multiple=True, help="Faker locale; repeat or comma-separate [default: en_US].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write; '-' or none: stdout (with --invalid: the variant's own filename).",
)
@click.option("--invalid", type=click.Choice(list(INVALID_VARIANTS)), help="Write this named invalid file instead.")
@click.option(
    "--fixtures",
    "fixtures_dir",
    type=click.Path(file_okay=False),
    is_flag=False,
    flag_value=str(DEFAULT_FIXTURES_DIR),
    help=f"Regenerate the canonical fixture set into DIR [default: {DEFAULT_FIXTURES_DIR}].",
)
def gen(
    rows: int,
    fmt: str,
    encoding: str,
    delimiter: str,
    line_ending: str,
    columns: str,
    mix: str,
    locales: tuple[str, ...],
    seed: int,
    output: str | None,
    invalid: str | None,
    fixtures_dir: str | None,
) -> None:
    """Generate a prompt file for batch uploads, a named invalid file, or the whole fixture set."""
    if invalid and fixtures_dir:
        raise click.UsageError("--invalid and --fixtures are separate jobs; pass one")
    if fixtures_dir:
        for path in write_fixture_set(Path(fixtures_dir)):
            click.echo(f"{path}  {path.stat().st_size:,} bytes", err=True)
        return
    if invalid:
        filename, data = INVALID_VARIANTS[invalid](seed)
        _write(data, output or filename, f"invalid variant {invalid}")
        return
    try:
        spec = GenSpec(
            rows=rows,
            extra_columns=_names(columns),
            fmt=cast(Format, fmt),
            encoding=cast(Encoding, encoding),
            delimiter=_DELIMITER_NAMES[delimiter],
            line_ending="\r\n" if line_ending == "crlf" else "\n",
            locales=tuple(name for value in locales for name in _names(value)) or ("en_US",),
            mix=MIXES if mix == "all" else _names(mix),
            seed=seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if spec.rows >= 1000:
        with click.progressbar(
            iter_rows(spec), length=spec.rows, label=f"Generating {spec.rows} rows", file=sys.stderr
        ) as progress:
            records = list(progress)
    else:
        records = generate_rows(spec)
    try:
        data = render(spec, records)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _write(data, output or "-", f"{len(records)} prompts")


def _write(data: bytes, output: str, what: str) -> None:
    with click.open_file(output, "wb") as stream:
        stream.write(data)
    if output != "-":
        click.echo(
            f"wrote {output}: {what}, {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}", err=True
        )


gen_command = gen

if __name__ == "__main__":
    gen()
