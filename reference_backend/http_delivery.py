"""HTTP delivery of a download: content coding, strong validators, byte ranges (RFC 9110).

A finished batch's export is the same bytes on every request (rows no longer change, the ZIP's dates are the
batch's), so its ``ETag`` is derived from what decides those bytes: batch, event sequence, format, content
coding and the export layout's version. A retry bumps the sequence, so the tag changes with the content.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

try:
    import brotli
except ImportError:  # an optional speed-up: without it, br is simply not offered
    brotli = None

# Bump when the bytes of an export change for the same rows, so cached copies are not revalidated as equal.
EXPORT_LAYOUT_VERSION = 1
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
MIN_COMPRESS_CHUNK = 64 * 1024


def supported_codings() -> tuple[str, ...]:
    """Codings this process can produce, best first."""
    return ("br", "gzip") if brotli is not None else ("gzip",)


def negotiate_coding(accept_encoding: str | None) -> str:
    """The content coding to send: the client's most preferred one we support, else ``identity``.

    Quality values decide; on a tie the server's order (br before gzip) does. ``q=0`` refuses a coding.
    """
    if not accept_encoding:
        return "identity"
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name:
            weights[name] = quality
    best, best_quality = "identity", 0.0
    for coding in supported_codings():
        quality = weights.get(coding, weights.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = coding, quality
    return best


def compress(chunks: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """``chunks`` encoded with ``coding`` as they stream; deterministic (gzip carries no time or name)."""
    if coding == "identity":
        yield from chunks
        return
    if coding == "gzip":
        encoder = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        process, finish = encoder.compress, encoder.flush
    elif coding == "br" and brotli is not None:
        encoder = brotli.Compressor(quality=BROTLI_QUALITY)
        process, finish = encoder.process, encoder.finish
    else:
        raise ValueError(f"unsupported content coding {coding!r}")
    for chunk in chunks:
        if out := process(chunk):
            yield out
    yield finish()


def strong_etag(*parts: object) -> str:
    """A quoted strong entity tag over ``parts`` and the export layout's version."""
    digest = hashlib.sha256(repr((EXPORT_LAYOUT_VERSION, *parts)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match``: weak comparison (RFC 9110 13.1.2), ``*`` matches any current representation."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(Exception):
    """No byte of the requested range lies within the representation: answer 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range of a ``Range: bytes=...`` header, or ``None`` to send the whole representation.

    ``None`` too for what a server may ignore (another unit, several ranges, syntax it cannot read);
    ``RangeNotSatisfiable`` when the range starts past the end or the file is empty.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise RangeNotSatisfiable
            if size == 0:
                raise RangeNotSatisfiable
            return ByteRange(max(size - suffix, 0), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    if end < start:
        return None
    return ByteRange(start, min(end, size - 1))
