"""The batch lifecycle: queued, running, paused, resumed, completed, cancelled and retried, with the counts
checked at every observed state, and every illegal transition refused with 409."""

from __future__ import annotations

import json

import pytest

from utilities.check.contract_checks import assert_error, assert_rows_agree, assert_status_invariants
from utilities.client.api import BatchApi
from utilities.pytest_plugin import Target

from ..observe import StatusWatch, hold_still, wait_until_still
from ..payloads import csv_bytes, marked_rows

ACTIONS = ("pause", "resume", "cancel", "retry")


def upload_long(api: BatchApi, count: int) -> str:
    data = marked_rows(count, prompt_first=True)
    return api.upload(content=csv_bytes(data.rows, data.columns), filename="long.csv")["batch_id"]


def upload_with_failures(api: BatchApi, target: Target) -> tuple[str, list[int]]:
    """Five pasted prompts, rows 2 and 4 the target's failing prompt on demand."""
    failing = target.profile.failing_prompt
    data = marked_rows(5)
    prompts = [failing if i in (1, 3) else prompt for i, prompt in enumerate(data.prompts)]
    return api.upload(text="\n".join(prompts))["batch_id"], [2, 4]


def assert_refused(api: BatchApi, batch_id: str, action: str, state: str) -> None:
    before = api.status(batch_id)
    assert_error(
        api.action_raw(batch_id, action),
        409,
        "illegal_transition",
        promise=f"transition promise broken: {action} of a {state} batch must be refused",
    )
    after = api.status(batch_id)
    # A running batch's seq moves with its progress; a settled one's must not move at all.
    keys = ("status",) if state == "running" else ("status", "seq")
    assert [after[k] for k in keys] == [before[k] for k in keys], (
        f"transition promise broken: a refused {action} changed the {state} batch: {before} -> {after}"
    )


def test_pause_holds_the_batch_still_and_resume_runs_it_to_completed(shared_api: BatchApi, target: Target) -> None:
    target.require("pause")
    target.require("slow_batches")
    api = shared_api
    batch = upload_long(api, 300)
    with StatusWatch(api, batch) as watch:
        api.wait_for_progress(batch, 20)
        paused = api.pause(batch)
        assert paused["status"] == "paused", f"pause promise broken: pause answered {paused['status']}"
        assert_status_invariants(paused, where="the pause response")
        rows = wait_until_still(api, batch)
        settled = api.status(batch)
        assert settled["processed"] < settled["total"], "the batch finished before the pause could be seen"
        window = hold_still(api, batch, 1.0)
        moved = [
            s
            for s in window
            if (s["status"], s["processed"], s["seq"]) != ("paused", settled["processed"], settled["seq"])
        ]
        assert not moved, f"pause promise broken: a paused batch moved: {settled} then {moved[:2]}"
        assert settled["eta_seconds"] is None, f"a paused batch has no ETA, got {settled['eta_seconds']}"
        assert_rows_agree(settled, rows)
        assert_refused(api, batch, "pause", "paused")
        resumed = api.resume(batch)
        assert resumed["status"] in ("running", "queued"), f"resume promise broken: resume answered {resumed['status']}"
        final = api.wait_until(batch, timeout=60)
        watch.wait_for_status(final["status"])
    assert final["status"] == "completed", f"completion promise broken: the batch ended {final['status']}"
    assert watch.problems() == [], "\n".join(watch.problems())
    seen = watch.seen()
    assert "paused" in seen and seen[-1] == "completed", f"lifecycle seen: {seen}"
    assert seen.index("paused") < len(seen) - 1 and "running" in seen[seen.index("paused") :], (
        f"never ran again: {seen}"
    )
    assert_rows_agree(final, json.loads(api.download(batch, "json"))["rows"])
    for action in ACTIONS:
        assert_refused(api, batch, action, "completed")


def test_cancel_settles_pending_rows_and_nothing_more_is_processed(shared_api: BatchApi, target: Target) -> None:
    target.require("slow_batches")
    api = shared_api
    batch = upload_long(api, 400)
    with StatusWatch(api, batch) as watch:
        api.wait_for_progress(batch, 20)
        cancelled = api.cancel(batch)
        assert cancelled["status"] == "cancelled", f"cancel promise broken: cancel answered {cancelled['status']}"
        assert cancelled["cancelled"] > 0, f"cancel promise broken: no pending row was cancelled: {cancelled}"
        assert_status_invariants(cancelled, where="the cancel response")
        in_flight = cancelled["total"] - cancelled["processed"] - cancelled["cancelled"]
        rows = wait_until_still(api, batch)
        settled = api.status(batch)
        window = hold_still(api, batch, 1.0)
    assert settled["status"] == "cancelled" and settled["cancelled"] == cancelled["cancelled"], (
        f"cancel promise broken: after the cancel the batch became {settled}"
    )
    assert settled["processed"] <= cancelled["processed"] + in_flight, (
        f"cancel promise broken: {settled['processed'] - cancelled['processed']} rows were processed after the "
        f"cancel, only the {in_flight} in flight may land"
    )
    moved = [
        s
        for s in window
        if (s["processed"], s["cancelled"], s["status"]) != (settled["processed"], settled["cancelled"], "cancelled")
    ]
    assert not moved, f"cancel promise broken: a cancelled batch kept moving: {settled} then {moved[:2]}"
    assert not [r for r in rows if r["status"] == "pending"], "cancel promise broken: pending rows left after a cancel"
    assert_rows_agree(settled, rows)
    assert watch.problems() == [], "\n".join(watch.problems())
    for action in ACTIONS:
        assert_refused(api, batch, action, "cancelled")


def test_retry_sends_only_the_failed_rows_again(shared_api: BatchApi, target: Target) -> None:
    target.require("failing_prompts")
    target.require("retry")
    api = shared_api
    batch, failing = upload_with_failures(api, target)
    first = api.wait_until(batch, timeout=60)
    assert (first["status"], first["failed"], first["succeeded"]) == ("completed_with_errors", 2, 3), (
        f"error marking promise broken: two failing prompts of five gave {first}"
    )
    before = json.loads(api.download(batch, "json"))["rows"]
    assert_rows_agree(first, before)
    for action in ("pause", "resume", "cancel"):
        assert_refused(api, batch, action, "completed_with_errors")

    with StatusWatch(api, batch) as watch:
        retried = api.retry(batch)
        assert retried["status"] == "queued", f"retry promise broken: retry answered {retried['status']}"
        assert_status_invariants(retried, where="the retry response")
        assert retried["succeeded"] == first["succeeded"], f"retry promise broken: succeeded rows reset: {retried}"
        second = api.wait_until(batch, timeout=60)
        watch.wait_for_status(second["status"])
    assert watch.problems() == [], "\n".join(watch.problems())
    low = min((s["succeeded"] for s in watch.states), default=second["succeeded"])
    assert low >= first["succeeded"], f"retry promise broken: succeeded fell to {low} during the retry"
    assert (second["succeeded"], second["failed"]) == (3, 2), f"the failing prompts fail again: {second}"
    after = json.loads(api.download(batch, "json"))["rows"]
    assert_rows_agree(second, after)
    for old, new in zip(before, after, strict=True):
        number = old["row_number"]
        if number in failing:
            assert new["status"] == "failed" and new["error"], f"row {number}: failed again but without its reason"
            continue
        assert new == old, f"retry promise broken: row {number} succeeded before the retry and changed: {old} -> {new}"
    if target.profile.has("attempts"):
        counts = {
            row["row_number"]: (old.get("attempts"), row.get("attempts"))
            for old, row in zip(before, after, strict=True)
        }
        for number, (was, now) in counts.items():
            assert isinstance(was, int) and isinstance(now, int), f"row {number}: no attempts count: {was}, {now}"
            expected = was + 1 if number in failing else was
            assert now == expected, (
                f"retry promise broken: row {number} ({'failed' if number in failing else 'succeeded'}) was sent "
                f"{now} times after the retry, {was} before; expected {expected}"
            )


def test_a_finished_batch_without_failures_cannot_be_retried_paused_or_resumed(shared_api: BatchApi) -> None:
    batch = shared_api.upload(text="a prompt about tides\nanother prompt about kelp")["batch_id"]
    final = shared_api.wait_until(batch, timeout=60)
    assert final["status"] == "completed", final
    for action in ACTIONS:
        assert_refused(shared_api, batch, action, "completed")


def test_a_running_batch_cannot_be_resumed_or_retried(shared_api: BatchApi, target: Target) -> None:
    target.require("slow_batches")
    batch = upload_long(shared_api, 300)
    shared_api.wait_for_progress(batch, 10)
    for action in ("resume", "retry"):
        state = shared_api.status(batch)["status"]
        assert state == "running", f"the batch was {state} before it could be seen running"
        assert_refused(shared_api, batch, action, "running")
    shared_api.cancel(batch)


def test_unknown_action_and_format_are_refused(shared_api: BatchApi) -> None:
    batch = shared_api.upload(text="one prompt about gulls")["batch_id"]
    response = shared_api.action_raw(batch, "explode")
    assert response.status_code in (404, 405, 422), f"an unknown action must be refused: {response.status_code}"
    assert_error(shared_api.download_raw(batch, "xml"), 422, promise="an unknown download format must be refused")


@pytest.mark.parametrize("count", [1, 37])
def test_completed_only_when_every_row_is_settled(shared_api: BatchApi, count: int) -> None:
    data = marked_rows(count)
    batch = shared_api.upload(content=csv_bytes(data.rows, data.columns), filename="settle.csv")["batch_id"]
    with StatusWatch(shared_api, batch) as watch:
        final = shared_api.wait_until(batch, timeout=60)
        rows = json.loads(shared_api.download(batch, "json"))["rows"]
    assert final["status"] == "completed", final
    assert_rows_agree(final, rows)
    assert watch.problems() == [], "\n".join(watch.problems())
    assert (final["processed"], final["percent"]) == (count, 100.0), final
    assert final["started_at"] and final["finished_at"], f"a finished batch has its times: {final}"
