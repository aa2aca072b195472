"""Isolation: another user's batch is as missing as one that never existed, on every endpoint, and nothing leaks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from utilities.check.contract_checks import assert_error, leaked, unique_marker
from utilities.client.api import BatchApi
from utilities.client.socket_probe import probe_socket

OWNER_ENDPOINTS = [
    ("GET", "/api/v1/batch/status/{id}"),
    ("GET", "/api/v1/batch/download/{id}?format=csv"),
    ("GET", "/api/v1/batch/download/{id}?format=json"),
    ("GET", "/api/v1/batch/download/{id}?format=zip"),
    ("POST", "/api/v1/batch/{id}/pause"),
    ("POST", "/api/v1/batch/{id}/resume"),
    ("POST", "/api/v1/batch/{id}/cancel"),
    ("POST", "/api/v1/batch/{id}/retry"),
]
MISSING = "0" * 32


@pytest.fixture
def private_batch(make_user: Callable[..., BatchApi]) -> tuple[BatchApi, str, list[str]]:
    """The owner, a finished batch of theirs, and the secrets it holds (prompts, file name, batch id)."""
    owner = make_user(prefix="owner")
    marker = unique_marker("secret")
    filename = f"{marker}-private.csv"
    body = f"prompt,category\r\nConfidential plan {marker} one,legal\r\nConfidential plan {marker} two,legal\r\n"
    batch = owner.upload(content=body.encode(), filename=filename)["batch_id"]
    owner.wait_until(batch, timeout=60)
    return owner, batch, [marker, batch]


@pytest.mark.parametrize(("method", "template"), OWNER_ENDPOINTS, ids=[" ".join(e) for e in OWNER_ENDPOINTS])
def test_another_users_batch_is_404_like_a_missing_one_and_leaks_nothing(
    private_batch: tuple[BatchApi, str, list[str]],
    make_user: Callable[..., BatchApi],
    method: str,
    template: str,
) -> None:
    owner, batch, secrets = private_batch
    before = owner.status(batch)
    intruder = make_user(prefix="intruder")

    theirs = intruder.http.request(method, template.format(id=batch))
    missing = intruder.http.request(method, template.format(id=MISSING))

    assert_error(theirs, 404, "batch_not_found", promise="isolation: another user's batch must be 404")
    assert_error(missing, 404, "batch_not_found", promise="a missing batch must be 404")
    found = leaked(theirs.text.replace(batch, ""), secrets[:-1])
    assert not found, f"isolation promise broken: the 404 body shows the owner's data {found}: {theirs.text[:300]}"
    after = owner.status(batch)
    assert (after["status"], after["seq"]) == (before["status"], before["seq"]), (
        f"isolation promise broken: {method} by another user changed the owner's batch: {before} -> {after}"
    )


def test_the_list_shows_only_the_users_own_batches(
    private_batch: tuple[BatchApi, str, list[str]], make_user: Callable[..., BatchApi]
) -> None:
    _, _, secrets = private_batch
    intruder = make_user(prefix="intruder")
    own = intruder.upload(text="my own prompt about tide pools")["batch_id"]
    response = intruder.http.get("/api/v1/batch")
    listed = [b["batch_id"] for b in response.json()["batches"]]
    assert listed == [own], f"isolation promise broken: the list holds {listed}, expected only the user's {own}"
    assert not leaked(response.text, secrets), "isolation promise broken: the list shows another user's data"


def test_another_users_batch_socket_closes_4404_like_a_missing_one(
    private_batch: tuple[BatchApi, str, list[str]], make_user: Callable[..., BatchApi], base_url: str
) -> None:
    _, batch, _ = private_batch
    intruder = make_user(prefix="intruder")
    bearer = {"Authorization": f"Bearer {intruder.token}"}
    theirs = probe_socket(base_url, batch, headers=bearer, until_messages=1, timeout=10)
    missing = probe_socket(base_url, MISSING, headers=bearer, until_messages=1, timeout=10)
    assert (theirs.close_code, theirs.messages) == (4404, []), (
        f"isolation promise broken: another user's batch socket gave {theirs.close_code} with {theirs.messages[:1]}"
    )
    assert (missing.close_code, missing.close_reason) == (4404, theirs.close_reason), (
        "isolation promise broken: another user's batch and a missing one must close alike: "
        f"{theirs.close_code} {theirs.close_reason!r} vs {missing.close_code} {missing.close_reason!r}"
    )
