"""Typed API errors, rendered as ``{"error": {"code", "message", "details"}}`` by one handler."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client caused or must hear about; ``status`` is the HTTP status to answer with."""

    status: int = 400
    code: str = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "file_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_file_type"


class InvalidContent(ApiError):
    """The file arrived whole but its content breaks a rule (format, encoding, limits, columns)."""

    status = 422
    code = "invalid_content"


class TooManyRequests(ApiError):
    """429 with ``Retry-After``: the client must wait ``retry_after`` seconds before trying again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, **details: Any):
        super().__init__(message, code=code, retry_after=retry_after, **details)
        self.headers = {"Retry-After": str(retry_after)}
