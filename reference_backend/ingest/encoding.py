"""Bytes to text: a BOM decides, else strict UTF-8, else a charset-normalizer guess accepted only when clear.

Order of trust:

1. A byte-order mark names the encoding (UTF-8, UTF-16 LE/BE as Excel's "Unicode text", UTF-32); bytes
   that do not decode under it are an ``encoding_error``.
2. UTF-16 without a BOM is recognised by its zero bytes (every other byte, never the others); bytes that
   decode as UTF-8 are UTF-8.
3. A file whose every non-ASCII byte sits in a UTF-8-shaped sequence, some of them invalid (overlong forms
   such as ``C0 AF`` for "/", surrogate halves such as ``ED A0 80``), was written as UTF-8 by a broken or
   hostile writer: an ``encoding_error``, never a Windows-1252 guess. A file holding valid multi-byte UTF-8
   *and* other invalid bytes is a mix of encodings; guessing would garble one half, so it is an
   ``encoding_error`` too. Both name the line of the first bad byte.
4. Otherwise charset-normalizer guesses. Among its least-messy answers, Windows-1252 wins whenever it is one
   of them (the legacy export of Western Excel; latin-1 text decodes the same); any other answer is taken
   only when it is the sole candidate or the text's language was recognised. Anything else is an
   ``encoding_error`` asking for UTF-8.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterator

from charset_normalizer import from_bytes

from ..errors import InvalidContent

logger = logging.getLogger(__name__)

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    # UTF-32 LE before UTF-16 LE: its BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
_MAX_CHAOS = 0.1
_TIE = 0.01
_MIN_COHERENCE = 0.3
_UTF16_ZERO_SHARE = 0.3
_WESTERN = "cp1252"
_NON_ASCII_DECODED = re.compile(r"[^\x00-\x7f\ufffd]")
# A lead byte followed by as many continuation bytes as it announces: what a UTF-8 writer emits, valid or not.
_UTF8_SHAPED = re.compile(rb"[\xc0-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf7][\x80-\xbf]{3}")
# Only these three end a line; str.splitlines() would also split on U+2028, U+0085, \x0c and friends.
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ADVICE = 'Save it as UTF-8 (in Excel: "CSV UTF-8") and upload it again.'


def decode_text(data: bytes) -> str:
    """The text of ``data``, or ``InvalidContent(code="encoding_error")`` when its encoding is unclear."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                line = _line_of(data[len(bom) : len(bom) + exc.start], codec)
                raise _error(
                    f"The file starts with a {label} byte-order mark but line {line} is not valid {label}. " + _ADVICE,
                    line=line,
                    encoding=label,
                ) from None
    utf16 = _bomless_utf16(data)
    if utf16 is not None:
        return utf16
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = _line_of(data[: exc.start], "utf-8")
    if _UTF8_SHAPED.sub(b"", data).isascii():
        raise _error(
            f"The file is UTF-8 with invalid sequences in it (overlong forms or surrogate halves, which some "
            f"writers emit and filters miss; the first is on line {bad_line}). " + _ADVICE,
            line=bad_line,
        )
    if _NON_ASCII_DECODED.search(data.decode("utf-8", errors="replace")):
        raise _error(
            f"The file mixes UTF-8 with another encoding (the first byte that is not UTF-8 is on line "
            f"{bad_line}). " + _ADVICE,
            line=bad_line,
        )
    encoding = _guess(data)
    if encoding is None:
        raise _error(
            f"The file is not UTF-8 (the first byte that is not is on line {bad_line}) and its encoding "
            "could not be recognised with confidence. " + _ADVICE,
            line=bad_line,
        )
    logger.info("decoding an upload as %s", encoding)
    return data.decode(encoding)


def decode_pasted(data: bytes) -> str:
    """Pasted text as the client sent it: UTF-8 (what browsers send), else an ``encoding_error``.

    No guessing here: a paste has no file encoding to recover, so a bad byte is named by its offset.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of(data[: exc.start], "utf-8")
        raise _error(
            f"The pasted text is not valid UTF-8: byte {exc.start:,} (on line {line}) is 0x{data[exc.start]:02X}, "
            "which cannot start or continue a UTF-8 character. Paste the text from a UTF-8 source.",
            byte_offset=exc.start,
            line=line,
        ) from None


def _bomless_utf16(data: bytes) -> str | None:
    # ASCII-heavy UTF-16 without a BOM is valid UTF-8 full of NULs; recognise it by its zero high bytes.
    if len(data) < 4 or len(data) % 2:
        return None
    half = len(data) // 2
    high_le, high_be = data[1::2].count(0), data[0::2].count(0)
    for codec, zeros, others in (("utf-16-le", high_le, high_be), ("utf-16-be", high_be, high_le)):
        if zeros >= _UTF16_ZERO_SHARE * half and others == 0:
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                return None
    return None


def _guess(data: bytes) -> str | None:
    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.chaos > _MAX_CHAOS:
        return None
    tied = [match for match in matches if match.chaos <= best.chaos + _TIE]
    if any(_WESTERN in match.could_be_from_charset for match in tied):
        return _WESTERN
    if len(tied) == 1 or best.coherence >= _MIN_COHERENCE:
        return best.encoding
    return None


def line_spans(text: str) -> Iterator[tuple[int, int, int]]:
    """``(start, end, next_start)`` of each line of ``text`` after a leading BOM; CRLF, CR and LF end lines.

    Spans, not strings, and lazy on purpose: a 10 MiB upload can hold five million lines (a list of them
    costs 300 MB) or one line of ten million characters (a slice of it costs up to 40 MB more). ``str.find``
    rather than a regex: it skips a long line a hundred times faster.
    """
    start = 1 if text.startswith("\ufeff") else 0
    size = len(text)
    next_lf = text.find("\n", start)
    next_cr = text.find("\r", start)
    while True:
        if 0 <= next_lf < start:
            next_lf = text.find("\n", start)
        if 0 <= next_cr < start:
            next_cr = text.find("\r", start)
        if next_lf < 0 and next_cr < 0:
            yield start, size, size
            return
        end = next_cr if next_lf < 0 or 0 <= next_cr < next_lf else next_lf
        following = end + 2 if end == next_cr and end + 1 == next_lf else end + 1
        yield start, end, following
        start = following


def count_line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _line_of(prefix: bytes, codec: str) -> int:
    return count_line_breaks(prefix.decode(codec, errors="replace")) + 1


def _error(message: str, **details: object) -> InvalidContent:
    return InvalidContent(message, code="encoding_error", **details)
