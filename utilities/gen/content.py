"""What a generated file says: ``GenSpec`` and the seeded prompt rows it describes, mix by mix."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from faker import Faker
from faker.config import AVAILABLE_LOCALES

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
# Lengths cycle per very_long row; the longest stays under 32,000 characters, a limit some providers have.
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
