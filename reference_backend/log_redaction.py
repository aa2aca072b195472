"""Keep credentials out of the server log: ``?token=...`` in a logged URL becomes ``?token=[redacted]``, and
the value of a logged ``Authorization``, ``Cookie`` or ``Set-Cookie`` header becomes ``[redacted]``.

Browsers cannot set headers on a WebSocket, so the progress socket accepts its bearer token in the query
string, and uvicorn logs every socket handshake with its full path; at DEBUG, the websockets library also
logs every handshake header, the session cookie and bearer token among them (OWASP Logging Cheat Sheet:
session ids and access tokens must not be logged).
"""

from __future__ import annotations

import logging
import re

from . import faults

_SECRET_PARAM = re.compile(r"(?i)([?&](?:access_)?token=)[^&\s\"']+")
_SECRET_HEADER = re.compile(r"(?im)\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*:\s*)[^\r\n]+")
# Loggers whose handlers carry uvicorn's lines and ours.
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    return _SECRET_HEADER.sub(r"\1\2[redacted]", _SECRET_PARAM.sub(r"\1[redacted]", text))


class RedactTokens(logging.Filter):
    """Rewrites a record whose formatted message holds a token; a filter on a handler sees every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if faults.on("log_tokens"):
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Add the filter to every handler of the loggers that write the server's lines (call after logging set-up)."""
    token_filter = RedactTokens()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactTokens) for f in target.filters):
                target.addFilter(token_filter)
