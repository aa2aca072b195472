"""Uploads and pasted text to a ``ParsedTable``; each refusal is a typed ``ApiError`` naming row and column.

Order of checks in ``parse_upload``: the extension (415, decided on the sanitised name), the size (413),
emptiness (``empty_file``), the content's magic number (a PNG, PDF, ZIP, ... uploaded under a text
extension is 415; under .xlsx a non-zip known type is 415, an OLE file or unknown bytes ``corrupt_xlsx``),
then the format's parser and the shared rules in ``table``. Every error raised here carries
``details.filename`` (the sanitised name).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import faults
from ..errors import ApiError, InvalidContent, PayloadTooLarge, UnsupportedMediaType
from .csv_format import parse_csv
from .encoding import decode_pasted, decode_text
from .filenames import ALLOWED_EXTENSIONS, extension_of, safe_filename
from .json_format import parse_json, parse_jsonl
from .limits import IngestLimits
from .signatures import HTML, OLE, ZIP, sniff_binary_type
from .table import RESERVED_COLUMNS, ParsedTable, RowFailure, invalid
from .txt_format import parse_lines
from .xlsx_format import parse_xlsx

__all__ = [
    "ALLOWED_EXTENSIONS",
    "RESERVED_COLUMNS",
    "IngestLimits",
    "ParsedTable",
    "RowFailure",
    "parse_pasted_text",
    "parse_upload",
    "safe_filename",
]

# Whitespace and BOMs only; fullmatch stops at the first other character, where strip() would copy 40 MB.
_BLANK = re.compile(r"[\s\ufeff]*")
_TEXT_PARSERS: dict[str, Callable[[str, IngestLimits], ParsedTable]] = {
    ".csv": parse_csv,
    ".txt": parse_lines,
    ".json": parse_json,
    ".jsonl": parse_jsonl,
}


def parse_upload(filename: str, data: bytes, limits: IngestLimits) -> ParsedTable:
    """Parse an uploaded file by its extension; raise 415, 413 or 422 ``ApiError`` when it cannot be used."""
    name = safe_filename(filename)
    try:
        return _parse(name, data, limits)
    except ApiError as exc:
        exc.details = {"filename": name, **exc.details}
        raise


def parse_pasted_text(text: str | bytes, limits: IngestLimits) -> ParsedTable:
    """One prompt per line, as in a .txt file; over ``max_bytes`` of UTF-8 is a 413 like a file would be.

    ``bytes`` are the paste as the client sent it, which must be UTF-8 (``encoding_error`` names the offset).
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_bytes:
        raise PayloadTooLarge(
            f"The pasted text is {size:,} bytes; the limit is {limits.max_bytes:,}.",
            limit=limits.max_bytes,
            actual=size,
        )
    if isinstance(text, bytes):
        text = decode_pasted(text)
    if _BLANK.fullmatch(text):
        raise invalid("empty_file", "The pasted text is empty. Paste one prompt per line.")
    return parse_lines(text, limits, source_format="text")


def _parse(name: str, data: bytes, limits: IngestLimits) -> ParsedTable:
    extension = extension_of(name)
    if extension not in ALLOWED_EXTENSIONS:
        shown = f'"{extension}" files' if extension else "Files without an extension"
        raise UnsupportedMediaType(
            f"{shown} cannot be uploaded. Upload a {_allowed_list()} file.",
            extension=extension,
            allowed=sorted(ALLOWED_EXTENSIONS),
        )
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes "
            f"({limits.max_bytes / 1024 / 1024:g} MiB).",
            limit=limits.max_bytes,
            actual=len(data),
        )
    if not data or data.isspace():
        raise _empty()
    kind = None if faults.on("skip_type_sniffing") else sniff_binary_type(data)
    if extension == ".xlsx":
        if kind == OLE:
            raise invalid(
                "corrupt_xlsx",
                "The file is an old-style .xls or a password-protected workbook, not an .xlsx. "
                'Remove the password and save it as "Excel Workbook (.xlsx)".',
            )
        if kind not in (None, ZIP):
            raise _mislabelled(kind, extension)
        return parse_xlsx(data, limits)
    if kind is not None:
        raise _mislabelled(kind, extension)
    text = decode_text(data)
    if _BLANK.fullmatch(text):
        raise _empty()
    return _TEXT_PARSERS[extension](text, limits)


def _mislabelled(kind: str, extension: str) -> UnsupportedMediaType:
    advice = f"Upload a {_allowed_list()} file."
    if kind == ZIP:
        advice = "If it is an Excel workbook, name it .xlsx."
    elif kind == HTML:
        advice = "It looks like a web page (a sign-in page, say) saved in place of the file: download the file itself."
    return UnsupportedMediaType(
        f"The file is named {extension} but its content is {kind}. {advice}",
        extension=extension,
        detected=kind,
        allowed=sorted(ALLOWED_EXTENSIONS),
    )


def _empty() -> InvalidContent:
    return invalid("empty_file", "The file is empty: it holds no prompts.")


def _allowed_list() -> str:
    names = sorted(ALLOWED_EXTENSIONS)
    return ", ".join(names[:-1]) + f" or {names[-1]}"
