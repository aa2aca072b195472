"""Magic numbers of file types people upload by mistake, so a PNG named ``.csv`` gets a clear 415."""

from __future__ import annotations

ZIP = "a ZIP archive"
OLE = "an OLE compound file (an old .xls, or a password-protected workbook)"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),
    (b"PK\x07\x08", ZIP),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a Linux program"),
)


def sniff_binary_type(data: bytes) -> str | None:
    """A human name for the binary type ``data`` starts like, or ``None`` when it is not one we know."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    return None
