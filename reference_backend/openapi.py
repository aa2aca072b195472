"""What the OpenAPI document says each route can answer: the error body and every error status it may send."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_DESCRIPTIONS = {
    400: "Bad request: the request is not one this route can act on.",
    401: "Not authenticated: no token, or one that is forged, malformed, expired or logged out.",
    403: "Forbidden.",
    404: "Not found, or another user's.",
    409: "Conflict with the current state.",
    410: "Gone: what this signed link stood for has changed.",
    413: "Too large.",
    415: "Unsupported file type.",
    416: "Range not satisfiable: the range starts past the end (Content-Range names the size).",
    422: "The content breaks a rule.",
    429: "Too many failed attempts; wait the Retry-After seconds.",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable reason, e.g. too_many_prompts.")
    message: str = Field(description="For people: what went wrong and what to do.")
    details: dict[str, Any] = Field(description="The file, row, column or limit involved.")


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


RETRY_AFTER = {"Retry-After": {"description": "Whole seconds to wait.", "schema": {"type": "integer"}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that may answer each of ``statuses`` with the error body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        responses[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 429:
            responses[status]["headers"] = RETRY_AFTER
    return responses


def links_to_batch(*operation_ids: str) -> dict[str, Any]:
    """OpenAPI links from an answer carrying ``batch_id`` to the operations that take it (for API clients and
    schema fuzzers that chain calls)."""
    return {
        operation_id: {"operationId": operation_id, "parameters": {"batch_id": "$response.body#/batch_id"}}
        for operation_id in operation_ids
    }


def content(*media_types: str, description: str = "Successful response.") -> dict[int | str, dict[str, Any]]:
    """``responses=`` entry declaring the media types of a 200 that is not JSON (or not only JSON)."""
    return {200: {"description": description, "content": {media: {} for media in media_types}}}
