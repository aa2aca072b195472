"""HEAD on the download endpoints answers what GET would, status and headers, with no body (RFC 9110 9.3.2)."""

from __future__ import annotations

import httpx
import pytest

from utilities.check.delivery import request_link
from utilities.client.api import BatchApi

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Downloads")

DOWNLOAD = "/api/v1/batch/download/{batch_id}"
# What describes the representation; Date and the framing (chunked or not) are the connection's.
COMPARED = (
    "content-type",
    "content-disposition",
    "content-encoding",
    "etag",
    "cache-control",
    "vary",
    "accept-ranges",
    "content-range",
)


@pytest.fixture
def finished_batch(api: BatchApi) -> str:
    accepted = api.upload(content=csv_bytes(prompt_rows(40)), filename="head.csv")
    assert api.wait_until(accepted["batch_id"])["status"] == "completed"
    return str(accepted["batch_id"])


def _same_answer(
    client: httpx.Client, url: str, *, compared: tuple[str, ...] = COMPARED, **kwargs: object
) -> tuple[httpx.Response, httpx.Response]:
    get = client.get(url, **kwargs)  # type: ignore[arg-type]
    head = client.head(url, **kwargs)  # type: ignore[arg-type]
    assert head.status_code == get.status_code, url
    assert head.content == b"", url
    assert {name: head.headers.get(name) for name in compared} == {name: get.headers.get(name) for name in compared}
    return get, head


@pytest.mark.parametrize(
    ("fmt", "coding"), [("csv", "identity"), ("csv", "gzip"), ("json", "identity"), ("json", "gzip"), ("zip", "gzip")]
)
def test_head_answers_the_headers_of_get_without_a_body(
    api: BatchApi, finished_batch: str, fmt: str, coding: str
) -> None:
    url = DOWNLOAD.format(batch_id=finished_batch)
    get, head = _same_answer(api.http, url, params={"format": fmt}, headers={"Accept-Encoding": coding})
    assert get.status_code == 200 and get.content
    assert head.headers["etag"] and head.headers["content-disposition"].startswith("attachment")
    if fmt == "zip":
        # The ZIP is built before it is sent, so its length is known to both.
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    else:
        # A streamed CSV or JSON has no length before it is read; HEAD does not claim one of 0.
        assert "content-length" not in head.headers


def test_head_answers_ranges_and_revalidation_as_get_does(api: BatchApi, finished_batch: str) -> None:
    url = DOWNLOAD.format(batch_id=finished_batch)
    ranged, head = _same_answer(api.http, url, params={"format": "zip"}, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and head.headers["content-length"] == "100"
    past_end, _ = _same_answer(api.http, url, params={"format": "zip"}, headers={"Range": "bytes=999999999-"})
    assert past_end.status_code == 416
    etag = ranged.headers["etag"]
    not_modified, _ = _same_answer(api.http, url, params={"format": "zip"}, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304


def test_head_refuses_as_get_does(api: BatchApi, finished_batch: str) -> None:
    missing, _ = _same_answer(api.http, DOWNLOAD.format(batch_id="no-such-batch"))
    assert missing.status_code == 404
    with httpx.Client(base_url=str(api.http.base_url)) as anonymous:
        refused, _ = _same_answer(anonymous, DOWNLOAD.format(batch_id=finished_batch))
    assert refused.status_code == 401


def test_head_on_a_signed_link_answers_its_headers(api: BatchApi, finished_batch: str) -> None:
    url = request_link(api.http, finished_batch, "zip").json()["url"]
    # max-age counts the link's seconds left, so it may tick between the two requests.
    compared = tuple(name for name in COMPARED if name != "cache-control")
    with httpx.Client() as anyone:
        get, head = _same_answer(anyone, url, compared=compared)
        assert get.status_code == 200 and head.headers["content-length"] == str(len(get.content))
        assert head.headers["cache-control"].startswith("public, max-age=")
        tampered, _ = _same_answer(anyone, url.replace("signature=", "signature=0"), compared=compared)
    assert tampered.status_code == 403
