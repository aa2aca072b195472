"""Hostile names and disguised types: double extensions, NUL and right-to-left characters in names, HTML, PDF
and workbooks named .csv, polyglots."""

from __future__ import annotations

import random

from utilities.gen.containers import write_zip
from utilities.gen.hostile_file import entry, valid_csv
from utilities.gen.hostile_xlsx import workbook

# Names and types ---------------------------------------------------------------------------------------


@entry("prompts.csv.exe", "name", 415, "unsupported_file_type")
def _double_extension(seed: int) -> bytes:
    """A valid CSV under a name whose real extension is .exe."""
    return valid_csv(seed)


@entry("prompts.exe\x00.csv", "name", 415, "unsupported_file_type")
def _nul_in_name(seed: int) -> bytes:
    """A NUL that a C string would cut at: the name is prompts.exe.csv.

    Not refused for the NUL (it is dropped, and what is left ends in .csv) but for the content: an ELF program.
    """
    return b"\x7fELF\x02\x01\x01" + bytes(57)


@entry("../../../../etc/passwd", "name", 415, "unsupported_file_type")
def _dotdot_name(seed: int) -> bytes:
    """A valid CSV named with a path that climbs to /etc/passwd (no extension once reduced to its base)."""
    return valid_csv(seed)


@entry("prompts\u202evsc.exe", "name", 415, "unsupported_file_type")
def _rtl_override_name(seed: int) -> bytes:
    """A right-to-left override makes prompts.exe display as "promptsexe.csv"."""
    return valid_csv(seed)


@entry("prompts.csv?", "name", 415, "unsupported_file_type")
def _question_mark_name(seed: int) -> bytes:
    """An HTML page named "prompts.csv?" (a URL's query mark kept by a careless download)."""
    return _sign_in_page()


@entry("archive.zip", "type", 415, "unsupported_file_type")
def _zip_upload(seed: int) -> bytes:
    """A real workbook named .zip: not an extension the contract accepts."""
    return write_zip(workbook())


def _sign_in_page() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>\n"
        b"<form action='/login'><input name='prompt'></form>\n</body></html>\n"
    )


@entry("shared-link.csv", "type", 415, "unsupported_file_type")
def _html_named_csv(seed: int) -> bytes:
    """A sign-in page saved in place of a shared spreadsheet, named .csv."""
    return _sign_in_page()


@entry("polyglot.csv", "type", 415, "unsupported_file_type")
def _pdf_csv_polyglot(seed: int) -> bytes:
    """A file that is a valid CSV and a PDF at once: "%PDF-" on line 3, "%%EOF" at the end."""
    return (
        b"prompt,category\r\nSummarise this document,content\r\n"
        b"%PDF-1.4,content\r\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj,x\r\n"
        b"trailer << /Root 1 0 R >>,x\r\n%%EOF\r\n"
    )


@entry("report.csv", "type", 415, "unsupported_file_type")
def _pdf_named_csv(seed: int) -> bytes:
    """A PDF document named .csv."""
    return b"%PDF-1.7\n" + random.Random(seed).randbytes(1024) + b"\n%%EOF\n"


@entry("workbook.csv", "type", 415, "unsupported_file_type")
def _xlsx_named_csv(seed: int) -> bytes:
    """A real workbook named .csv."""
    return write_zip(workbook())
