"""Signed, expiring download links: a URL that serves one finished export without a session.

The link names the batch, the format, the batch's event sequence and an expiry, signed with HMAC-SHA256
under a key derived from the server's signing key (so a link can never pass for a bearer token, nor a token
for a link). Pinning the sequence makes a link stand for exactly one content: after a retry the old link
answers 410 instead of other rows, which is what lets a CDN cache its answer until the link expires.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from .errors import ApiError, Forbidden

_PURPOSE = b"batchqa download link v1"


class LinkOutdated(ApiError):
    status = 410
    code = "link_outdated"


@dataclass(frozen=True)
class SignedLink:
    batch_id: str
    fmt: str
    seq: int
    expires: int
    signature: str

    def query(self) -> str:
        return urlencode({"format": self.fmt, "seq": self.seq, "expires": self.expires, "signature": self.signature})


class DownloadLinks:
    """Issue and check links; ``now`` is injectable so expiry is testable without waiting."""

    def __init__(self, signing_key: str) -> None:
        self._key = hmac.new(signing_key.encode(), _PURPOSE, hashlib.sha256).digest()

    def _sign(self, batch_id: str, fmt: str, seq: int, expires: int) -> str:
        message = f"{batch_id}\n{fmt}\n{seq}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self, batch_id: str, fmt: str, seq: int, ttl_seconds: int, *, now: float | None = None) -> SignedLink:
        expires = int(now if now is not None else time.time()) + ttl_seconds
        return SignedLink(batch_id, fmt, seq, expires, self._sign(batch_id, fmt, seq, expires))

    def check(
        self, batch_id: str, fmt: str, seq: int, expires: int, signature: str, *, now: float | None = None
    ) -> None:
        """``Forbidden`` for a forged, altered or expired link; the signature is checked first."""
        # Bytes, not str: compare_digest refuses non-ASCII text, and a forged link may carry any.
        given = signature.lower().encode("utf-8", errors="surrogatepass")
        if not hmac.compare_digest(self._sign(batch_id, fmt, seq, expires).encode(), given):
            raise Forbidden("This download link is not valid (altered or not issued here).", code="invalid_link")
        current = now if now is not None else time.time()
        if current >= expires:
            raise Forbidden(
                "This download link has expired; ask for a new one.", code="link_expired", expired_at=expires
            )

    @staticmethod
    def check_current(seq: int, current_seq: int) -> None:
        if seq != current_seq:
            raise LinkOutdated(
                "The batch's results changed after this link was made (it was retried); ask for a new link.",
                link_seq=seq,
                current_seq=current_seq,
            )
