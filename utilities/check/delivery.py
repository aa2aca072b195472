"""Check how a target delivers a finished batch's downloads: compression, validators, ranges, signed links.

Each ``check_*`` takes an ``httpx.Client`` that is logged in to the target (base URL and bearer token set)
and a finished batch, talks only HTTP as docs/contract.md describes it, and returns a ``DeliveryReport``
whose ``problems()`` a test asserts empty. ``check_delivery`` runs them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

DOWNLOAD = "/api/v1/batch/download/{batch_id}"
LINK = "/api/v1/batch/download/{batch_id}/link"


@dataclass
class DeliveryReport:
    """What was checked, what each check measured, and what went wrong."""

    checked: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def expect(self, name: str, condition: bool, problem: str) -> bool:
        self.checked.append(name)
        if not condition:
            self.found.append(f"{name}: {problem}")
        return condition

    def problems(self) -> list[str]:
        return list(self.found)

    def merge(self, other: DeliveryReport) -> DeliveryReport:
        self.checked += other.checked
        self.found += other.found
        self.figures.update(other.figures)
        return self

    def summary(self) -> str:
        verdict = "OK" if not self.found else f"{len(self.found)} problem(s)"
        lines = [f"{len(self.checked)} delivery checks: {verdict}"]
        lines += [f"  - {problem}" for problem in self.found]
        return "\n".join(lines)


def _get(http: httpx.Client, batch_id: str, fmt: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return http.get(DOWNLOAD.format(batch_id=batch_id), params={"format": fmt}, headers=headers or {})


def check_compression(http: httpx.Client, batch_id: str, fmt: str = "csv", coding: str = "gzip") -> DeliveryReport:
    """With ``Accept-Encoding: coding`` the body arrives in that coding, smaller, and decodes to the same bytes."""
    report = DeliveryReport()
    plain = _get(http, batch_id, fmt, {"Accept-Encoding": "identity"})
    packed = _get(http, batch_id, fmt, {"Accept-Encoding": coding})
    name = f"compression[{fmt},{coding}]"
    if not report.expect(name, plain.status_code == packed.status_code == 200, f"status {packed.status_code}"):
        return report
    report.expect(
        name,
        packed.headers.get("content-encoding") == coding,
        f"Content-Encoding {packed.headers.get('content-encoding')!r}",
    )
    report.expect(name, plain.headers.get("content-encoding") is None, "identity was asked for but a coding was sent")
    report.expect(name, "accept-encoding" in packed.headers.get("vary", "").lower(), "no Vary: Accept-Encoding")
    report.expect(name, packed.content == plain.content, "the decoded body differs from the uncompressed one")
    wire, raw = packed.num_bytes_downloaded, plain.num_bytes_downloaded
    report.expect(name, wire < raw, f"{wire:,} bytes on the wire compressed, {raw:,} uncompressed")
    report.figures[f"{fmt}_{coding}_bytes"] = wire
    report.figures[f"{fmt}_identity_bytes"] = raw
    return report


def check_conditional(http: httpx.Client, batch_id: str, fmt: str = "csv") -> DeliveryReport:
    """A strong ``ETag`` and ``Cache-Control: private`` on a finished batch; ``If-None-Match`` gets 304."""
    report = DeliveryReport()
    name = f"etag[{fmt}]"
    first = _get(http, batch_id, fmt, {"Accept-Encoding": "identity"})
    etag = first.headers.get("etag")
    if not report.expect(name, first.status_code == 200 and bool(etag), f"status {first.status_code}, ETag {etag!r}"):
        return report
    assert etag is not None
    report.expect(name, not etag.startswith("W/") and etag.startswith('"'), f"{etag} is not a strong quoted tag")
    cache = first.headers.get("cache-control", "")
    report.expect(name, "private" in cache or "public" in cache, f"Cache-Control {cache!r} names no cache scope")
    again = _get(http, batch_id, fmt, {"Accept-Encoding": "identity"})
    report.expect(name, again.headers.get("etag") == etag, "the same download came with another ETag")
    report.expect(name, again.content == first.content, "the same finished download came back different")
    revalidated = _get(http, batch_id, fmt, {"Accept-Encoding": "identity", "If-None-Match": etag})
    report.expect(name, revalidated.status_code == 304, f"If-None-Match answered {revalidated.status_code}")
    report.expect(name, revalidated.content == b"", "a 304 carried a body")
    report.expect(name, revalidated.headers.get("etag") == etag, "the 304 did not repeat the ETag")
    other = _get(http, batch_id, fmt, {"Accept-Encoding": "identity", "If-None-Match": '"not-this-one"'})
    report.expect(name, other.status_code == 200, f"a stale If-None-Match answered {other.status_code}")
    if fmt != "zip":
        packed = _get(http, batch_id, fmt, {"Accept-Encoding": "gzip"})
        if packed.headers.get("content-encoding"):
            report.expect(name, packed.headers.get("etag") != etag, "gzip and identity bodies share one strong ETag")
    return report


def check_ranges(http: httpx.Client, batch_id: str, fmt: str = "zip") -> DeliveryReport:
    """``Accept-Ranges: bytes``, 206 with the right slice, a resumed download equal to the whole, 416 past the end."""
    report = DeliveryReport()
    name = f"range[{fmt}]"
    whole = _get(http, batch_id, fmt)
    size = len(whole.content)
    if not report.expect(name, whole.status_code == 200 and size > 200, f"status {whole.status_code}, {size} bytes"):
        return report
    report.expect(
        name, whole.headers.get("accept-ranges") == "bytes", f"Accept-Ranges {whole.headers.get('accept-ranges')!r}"
    )
    head = _get(http, batch_id, fmt, {"Range": "bytes=0-99"})
    report.expect(name, head.status_code == 206, f"Range bytes=0-99 answered {head.status_code}")
    report.expect(name, head.content == whole.content[:100], "the first 100 bytes differ from the whole file's")
    report.expect(
        name,
        head.headers.get("content-range") == f"bytes 0-99/{size}",
        f"Content-Range {head.headers.get('content-range')!r}",
    )
    half = size // 2
    rest = _get(http, batch_id, fmt, {"Range": f"bytes={half}-", "If-Range": whole.headers.get("etag", "")})
    resumed = whole.content[:half] + rest.content
    report.expect(
        name, rest.status_code == 206 and resumed == whole.content, "a download resumed at half is not the file"
    )
    tail = _get(http, batch_id, fmt, {"Range": "bytes=-10"})
    report.expect(name, tail.status_code == 206 and tail.content == whole.content[-10:], "the suffix range is wrong")
    past = _get(http, batch_id, fmt, {"Range": f"bytes={size}-"})
    report.expect(name, past.status_code == 416, f"a range past the end answered {past.status_code}")
    report.expect(
        name,
        past.headers.get("content-range") == f"bytes */{size}",
        f"416 Content-Range {past.headers.get('content-range')!r}",
    )
    changed = _get(http, batch_id, fmt, {"Range": "bytes=0-99", "If-Range": '"another-version"'})
    report.expect(
        name, changed.status_code == 200 and changed.content == whole.content, "If-Range mismatch was not 200"
    )
    return report


def request_link(http: httpx.Client, batch_id: str, fmt: str = "csv", ttl: int | None = None) -> httpx.Response:
    params: dict[str, str | int] = {"format": fmt} | ({"ttl": ttl} if ttl is not None else {})
    return http.post(LINK.format(batch_id=batch_id), params=params)


def _anonymous(http: httpx.Client, url: str) -> httpx.Response:
    with httpx.Client(timeout=http.timeout) as anonymous:
        return anonymous.get(url)


def _alterations(url: str, fmt: str) -> dict[str, str]:
    """The link with its signature, its expiry and its format changed, one at a time, by query name.

    Names are matched loosely (``signature``, ``X-Amz-Signature``; ``expires``, ``X-Amz-Expires``), so the
    check works for this contract's links and for presigned storage URLs alike.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    changes = {
        "signature": lambda value: ("0" if value[:1] != "0" else "1") + value[1:],
        "expires": lambda value: str(int(value) * 10) if value.isdigit() else value + "0",
        "format": lambda value: "json" if fmt != "json" else "csv",
    }
    altered = {}
    for match, change in changes.items():
        key = next((name for name in query if match in name.lower()), None)
        if key is not None:
            altered[match] = urlunsplit(parts._replace(query=urlencode({**query, key: change(query[key])})))
    return altered


def check_signed_link(
    http: httpx.Client, batch_id: str, fmt: str = "csv", *, ttl: int = 2, expiry_timeout: float = 15.0
) -> DeliveryReport:
    """A link works without a session and gives the same bytes; altered links are refused; it expires."""
    report = DeliveryReport()
    name = f"signed_link[{fmt}]"
    answer = request_link(http, batch_id, fmt, ttl=ttl)
    if not report.expect(name, answer.status_code == 200, f"asking for a link answered {answer.status_code}"):
        return report
    url = answer.json()["url"]
    expected = _get(http, batch_id, fmt, {"Accept-Encoding": "identity"}).content
    served = _anonymous(http, url)
    report.expect(name, served.status_code == 200, f"the link answered {served.status_code} without a session")
    report.expect(name, served.content == expected, "the link served other bytes than the download")
    alterations = _alterations(url, fmt)
    report.expect(name, "signature" in alterations, f"the link {url} carries no signature parameter")
    for what, altered_url in alterations.items():
        altered = _anonymous(http, altered_url)
        report.expect(
            name, altered.status_code == 403, f"a link with its {what} altered answered {altered.status_code}"
        )
    deadline = time.monotonic() + expiry_timeout
    expired = served
    while time.monotonic() < deadline:  # expiry is wall-clock time on the server: poll for it
        expired = _anonymous(http, url)
        if expired.status_code != 200:
            break
        time.sleep(0.2)
    report.expect(
        name, expired.status_code in (403, 410), f"the link still answered {expired.status_code} after {ttl} s"
    )
    return report


def check_delivery(
    http: httpx.Client, batch_id: str, *, formats: Iterable[str] = ("csv", "json"), codings: Iterable[str] = ("gzip",)
) -> DeliveryReport:
    """Every delivery check on one finished batch."""
    report = DeliveryReport()
    for fmt in formats:
        for coding in codings:
            report.merge(check_compression(http, batch_id, fmt, coding))
        report.merge(check_conditional(http, batch_id, fmt))
    report.merge(check_conditional(http, batch_id, "zip"))
    report.merge(check_ranges(http, batch_id, "zip"))
    report.merge(check_signed_link(http, batch_id, "csv"))
    return report
