"""US-003 results performance ("stream large files, compression, CDN delivery") on any target, through HTTP only."""

from __future__ import annotations

import pytest

from utilities.check.delivery import check_delivery

from .support import FIXTURE_FILES, User

pytestmark = [pytest.mark.e2e, pytest.mark.perf]

VALID_1000 = FIXTURE_FILES / "valid-1000.csv"


def test_a_finished_1000_prompt_batch_downloads_compressed_cacheable_resumable_and_by_signed_link(
    user: User, request: pytest.FixtureRequest
) -> None:
    batch_id = user.api.upload(VALID_1000)["batch_id"]
    assert user.api.wait_until(batch_id, timeout=300)["status"] == "completed"

    report = check_delivery(user.api.http, batch_id)

    request.node.user_properties.append(("delivery", report.summary()))
    request.node.user_properties.append(("delivery_bytes", report.figures))
    assert report.problems() == [], report.summary()
