"""Downloads fit for a CDN, against a real server: compression, ETag/304, ranges, signed links; and the checks fail."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reference_backend.download_links import DownloadLinks
from reference_backend.errors import Forbidden
from reference_backend.http_delivery import RangeNotSatisfiable, etag_matches, negotiate_coding, parse_range
from utilities.check.delivery import (
    check_compression,
    check_conditional,
    check_delivery,
    check_ranges,
    check_signed_link,
    request_link,
)
from utilities.client.api import BatchApi
from utilities.client.schemas import assert_matches_schema
from utilities.procs.backend import BackendProcess
from utilities.procs.services import MotoServer

from .helpers import csv_bytes, prompt_rows

pytestmark = pytest.mark.area("Downloads")


@pytest.fixture
def finished_batch(api: BatchApi) -> str:
    accepted = api.upload(content=csv_bytes(prompt_rows(300)), filename="deliver.csv")
    assert api.wait_until(accepted["batch_id"])["status"] == "completed"
    return str(accepted["batch_id"])


def test_a_finished_batch_passes_every_delivery_check(api: BatchApi, finished_batch: str) -> None:
    report = check_delivery(api.http, finished_batch, codings=("gzip", "br"))
    assert report.problems() == [], report.summary()
    assert len(report.checked) > 40
    assert report.figures["csv_gzip_bytes"] * 4 < report.figures["csv_identity_bytes"]


def test_an_unfinished_batch_is_not_cached_ranged_or_linked(slow_api: BatchApi) -> None:
    accepted = slow_api.upload(content=csv_bytes(prompt_rows(200)), filename="running.csv")
    batch_id = accepted["batch_id"]
    try:
        response = slow_api.http.get(f"/api/v1/batch/download/{batch_id}", params={"format": "zip"})
        assert (response.headers.get("etag"), response.headers["cache-control"]) == (None, "no-store")
        assert response.headers["accept-ranges"] == "none"
        ranged = slow_api.http.get(
            f"/api/v1/batch/download/{batch_id}", params={"format": "zip"}, headers={"Range": "bytes=0-9"}
        )
        assert ranged.status_code == 200
        link = request_link(slow_api.http, batch_id)
        assert (link.status_code, link.json()["error"]["code"]) == (409, "batch_not_finished")
    finally:
        slow_api.cancel(batch_id)


def test_a_link_made_before_a_retry_answers_410_and_a_new_link_works(api: BatchApi) -> None:
    rows = [{"prompt": "Write a haiku", "n": "1"}, {"prompt": "", "n": "2"}]
    batch_id = api.upload(content=csv_bytes(rows), filename="retry.csv")["batch_id"]
    api.wait_until(batch_id)
    old = request_link(api.http, batch_id, "json").json()["url"]
    assert httpx.get(old).status_code == 200
    api.retry(batch_id)
    stale = httpx.get(old)
    assert (stale.status_code, stale.json()["error"]["code"]) == (410, "link_outdated")
    assert httpx.get(request_link(api.http, batch_id, "json").json()["url"]).status_code == 200


def test_the_link_lifetime_is_capped_and_reported(api: BatchApi, finished_batch: str) -> None:
    answer = request_link(api.http, finished_batch, "zip", ttl=10**9).json()
    assert_matches_schema("download_link", answer)
    assert answer["expires_in"] == 7 * 24 * 3600
    assert answer["expires_at"].endswith("Z")
    served = httpx.get(answer["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "application/zip"
    assert served.headers["cache-control"].startswith("public, max-age=")


def test_in_s3_mode_a_link_is_a_presigned_url_that_s3_serves(
    moto_server: MotoServer, s3_bucket: str, start_backend: Callable[..., BackendProcess]
) -> None:
    server = start_backend(env=moto_server.env(s3_bucket))
    assert server.url is not None
    with BatchApi.new_user(server.url, "s3-link") as api:
        batch_id = api.upload(content=csv_bytes(prompt_rows(20)), filename="s3.csv")["batch_id"]
        api.wait_until(batch_id)
        answers = [request_link(api.http, batch_id, "csv", ttl=60).json() for _ in range(2)]
        expected = api.download(batch_id, "csv")
    url = answers[0]["url"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(moto_server.endpoint_url)
    assert query["X-Amz-Expires"] == ["60"] and query["X-Amz-Signature"]
    served = httpx.get(url)
    assert served.status_code == 200
    assert served.content == expected
    assert served.headers["content-disposition"].startswith('attachment; filename="s3-results.csv"')
    exports = moto_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="exports/").get("Contents", [])
    assert [item["Key"].rsplit("/", 1)[-1] for item in exports] == ["s3-results.csv"]  # written once


def _careless_target() -> httpx.Client:
    """A target that ignores every delivery header: one body, no validators, no ranges, links never expire."""
    body = b"row_number,prompt\r\n" + b"1,the same text again and again\r\n" * 200

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/link"):
            return httpx.Response(200, json={"url": "http://careless.test/api/v1/batch/download/b?signature=abcd"})
        return httpx.Response(200, content=body)

    return httpx.Client(base_url="http://careless.test", transport=httpx.MockTransport(handle))


def test_each_check_reports_a_target_that_ignores_the_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    careless = _careless_target()
    monkeypatch.setattr("utilities.check.delivery._anonymous", lambda http, url: careless.get(url))
    assert any("Content-Encoding" in p for p in check_compression(careless, "b").problems())
    assert check_conditional(careless, "b").problems() == ["etag[csv]: status 200, ETag None"]
    ranges = check_ranges(careless, "b").problems()
    assert any("Accept-Ranges" in p for p in ranges) and any("answered 200" in p for p in ranges)
    links = check_signed_link(careless, "b", expiry_timeout=0.5).problems()
    assert any("signature altered answered 200" in p for p in links)
    assert any("still answered 200" in p for p in links)


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, "identity"),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("gzip;q=0, br;q=0", "identity"),
        ("*", "br"),
        ("identity", "identity"),
    ],
)
def test_content_coding_follows_the_clients_preferences(header: str | None, coding: str) -> None:
    assert negotiate_coding(header) == coding


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=900-", (900, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=5-1", None),
        ("bytes=x-1", None),
    ],
)
def test_one_byte_range_is_served_and_what_may_be_ignored_is(header: str, expected: tuple[int, int] | None) -> None:
    wanted = parse_range(header, 1000)
    assert (None if wanted is None else (wanted.start, wanted.end)) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_if_none_match_compares_tags_weakly_and_star_matches() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"z"')
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches(None, '"b"')


def test_a_link_is_refused_once_expired_or_altered_and_keys_differ_per_server() -> None:
    links = DownloadLinks("server-key")
    link = links.issue("b1", "csv", 7, ttl_seconds=60, now=1000)
    links.check("b1", "csv", 7, link.expires, link.signature, now=1059)
    with pytest.raises(Forbidden) as expired:
        links.check("b1", "csv", 7, link.expires, link.signature, now=1060)
    assert expired.value.code == "link_expired"
    for altered in (("b2", "csv", 7), ("b1", "zip", 7), ("b1", "csv", 8)):
        with pytest.raises(Forbidden) as caught:
            links.check(*altered, link.expires, link.signature, now=1000)
        assert caught.value.code == "invalid_link"
    with pytest.raises(Forbidden):
        DownloadLinks("other-key").check("b1", "csv", 7, link.expires, link.signature, now=1000)
    with pytest.raises(Forbidden):  # any text a forger sends is refused, not a server error
        links.check("b1", "csv", 7, link.expires, "\u0082y\u00e3i\ud800", now=1000)
