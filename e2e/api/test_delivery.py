"""Results performance as the spec asks ("stream large files, compression, CDN delivery"): compressed transfer,
strong validators with 304, resumable ZIP ranges and signed, expiring links, on a finished 1000-prompt batch."""

from __future__ import annotations

import pytest

from utilities.check.delivery import check_delivery
from utilities.client.api import BatchApi
from utilities.gen import GenSpec, generate

pytestmark = [pytest.mark.perf]


def test_a_finished_1000_prompt_batch_downloads_compressed_cacheable_resumable_and_by_signed_link(
    shared_api: BatchApi, request: pytest.FixtureRequest
) -> None:
    batch_id = shared_api.upload(content=generate(GenSpec(rows=1000, seed=7)), filename="deliver.csv")["batch_id"]
    assert shared_api.wait_until(batch_id, timeout=300)["status"] == "completed"

    report = check_delivery(shared_api.http, batch_id)

    request.node.user_properties.append(("delivery", report.summary()))
    assert report.problems() == [], report.summary()
