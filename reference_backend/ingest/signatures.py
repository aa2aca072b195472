"""Magic numbers of file types people upload by mistake, so a PNG named ``.csv`` gets a clear 415.

Besides the magic number at the start: a PDF reader accepts ``%PDF-`` anywhere in the first KiB, so a file
that is a CSV and a PDF at once (a polyglot) is refused as a PDF; and a web page saved in place of a file
(a sign-in page behind a share link, typically) is refused as HTML.
"""

from __future__ import annotations

import re

ZIP = "a ZIP archive"
OLE = "an OLE compound file (an old .xls, or a password-protected workbook)"
PDF = "a PDF document"
HTML = "an HTML page"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", PDF),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),
    (b"PK\x07\x08", ZIP),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a Linux program"),
)
_PDF_WINDOW = 1024
_PDF_HEADER = re.compile(rb"(?:^|[\r\n])%PDF-\d")
_HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)


def sniff_binary_type(data: bytes) -> str | None:
    """A human name for the type ``data`` is, when it is one people upload by mistake, else ``None``."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if _PDF_HEADER.search(data, 0, _PDF_WINDOW) and b"%%EOF" in data[-_PDF_WINDOW:]:
        return PDF
    if _HTML_START.match(data, 0, 64 * 1024):
        return HTML
    return None
