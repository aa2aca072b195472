"""The upload's form, read once, with pasted text kept as the bytes the client sent, and the one input it must
carry (a file or pasted text) taken from it.

Starlette decodes a form field itself and falls back to latin-1 when it is not UTF-8, so invalid bytes
would reach the parser as plausible text. The upload route needs them raw to refuse them by offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from .errors import BadRequest, PayloadTooLarge
from .ingest import safe_filename


@dataclass
class UploadForm:
    files: list[UploadFile] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)
    form: FormData | None = None

    async def close(self) -> None:
        if self.form is not None:
            await self.form.close()


class _RawFieldParser(MultiPartParser):
    """Starlette's streaming multipart parser, also keeping each plain field's bytes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.raw_fields: list[tuple[str, bytes]] = []

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            self.raw_fields.append((part.field_name, bytes(part.data)))
        super().on_part_end()


async def read_upload_form(request: Request, *, max_files: int, max_fields: int, max_part_size: int) -> UploadForm:
    """The ``file`` parts and the raw ``text`` fields of a multipart or urlencoded upload."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        parser = _RawFieldParser(
            request.headers,
            request.stream(),
            max_files=max_files,
            max_fields=max_fields,
            max_part_size=max_part_size,
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise BadRequest(f"The upload's multipart body could not be read: {exc.message}", code="bad_form") from None
        files = [item for item in form.getlist("file") if isinstance(item, UploadFile)]
        texts = [data for name, data in parser.raw_fields if name == "text"]
        return UploadForm(files=files, texts=texts, form=form)
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        texts = []
        for pair in body.split(b"&"):
            name, _, value = pair.partition(b"=")
            if unquote_to_bytes(name.replace(b"+", b" ")) == b"text":
                texts.append(unquote_to_bytes(value.replace(b"+", b" ")))
        return UploadForm(texts=texts)
    return UploadForm()


@dataclass(frozen=True)
class UploadInput:
    """The one input of an upload: a file's bytes with its (made safe) name, or pasted text (``filename`` None)."""

    data: bytes
    filename: str | None


async def single_input(form: UploadForm, *, max_bytes: int) -> UploadInput:
    """The upload's only input; a clear refusal when it has none, several files, or both a file and text."""
    files, texts = form.files, form.texts
    if len(files) > 1:
        raise BadRequest(
            f"Upload one file at a time; this request carried {len(files)}.",
            code="multiple_files",
            count=len(files),
            filenames=[f.filename for f in files],
        )
    if files and texts:
        raise BadRequest("Send either a file or pasted text, not both.", code="ambiguous_input")
    if files:
        filename = safe_filename(files[0].filename or "upload")
        data = await files[0].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PayloadTooLarge(
                f"{filename} is larger than the {max_bytes:,}-byte limit.", filename=filename, limit=max_bytes
            )
        return UploadInput(data, filename)
    if texts:
        return UploadInput(texts[0], None)
    raise BadRequest("Attach a file in the 'file' field or paste prompts in the 'text' field.", code="no_input")
