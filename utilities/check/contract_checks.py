"""Invariants of docs/contract.md that hold at every observed moment, as ``*_problems`` lists and ``assert_*`` checks.

Each problem names the promise it breaks, so a failing test says what the target got wrong, not only where.
Counts (docs/contract.md, "Batches"): ``processed`` is the rows that ran to an end (succeeded + failed);
cancelled rows are counted apart; ``percent`` = 100 * processed / total to one decimal.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from utilities.client.schemas import schema_problems

FINISHED = frozenset({"completed", "completed_with_errors", "failed"})
TERMINAL = FINISHED | {"cancelled"}
UNSETTLED_ROWS = frozenset({"pending", "running"})


def status_problems(body: Mapping[str, Any], *, where: str = "status") -> list[str]:
    """Every count and state promise one status body (or socket message) breaks."""
    # A socket message is checked against its own schema by the recorder; a status body against this one.
    body_schema = [] if "type" in body else schema_problems("batch_status", dict(body))
    problems = [f"{where}: schema: {p}" for p in body_schema]
    try:
        total, processed = int(body["total"]), int(body["processed"])
        succeeded, failed, cancelled = int(body["succeeded"]), int(body["failed"]), int(body["cancelled"])
        percent, status = float(body["percent"]), str(body["status"])
    except (KeyError, TypeError, ValueError):
        return problems or [f"{where}: the counts are missing or not numbers: {dict(body)}"]
    state = f"{status} {processed}/{total} (succeeded {succeeded}, failed {failed}, cancelled {cancelled})"
    if processed != succeeded + failed:
        problems.append(f"{where}: count promise broken: processed {processed} != succeeded + failed in {state}")
    if processed + cancelled > total:
        problems.append(f"{where}: count promise broken: processed + cancelled exceeds total in {state}")
    if min(total, processed, succeeded, failed, cancelled) < 0:
        problems.append(f"{where}: count promise broken: a negative count in {state}")
    expected = round(100 * processed / total, 1) if total else 0.0
    if abs(percent - expected) > 1e-9:
        problems.append(f"{where}: percent promise broken: {percent} for {processed}/{total}, expected {expected}")
    if status in FINISHED and processed + cancelled != total:
        problems.append(f"{where}: completion promise broken: {status} with rows still unsettled in {state}")
    if status == "completed" and failed:
        problems.append(f"{where}: completion promise broken: completed with {failed} failed rows")
    if status == "completed_with_errors" and not failed:
        problems.append(f"{where}: completion promise broken: completed_with_errors without a failed row")
    if status == "failed" and succeeded:
        problems.append(f"{where}: completion promise broken: failed with {succeeded} succeeded rows")
    return problems


def progression_problems(earlier: Mapping[str, Any], later: Mapping[str, Any], *, where: str = "status") -> list[str]:
    """What must never go backwards between two observations of one batch (a retry may lower failed only)."""
    problems = []
    for key in ("succeeded", "cancelled", "seq"):
        if key in earlier and key in later and later[key] < earlier[key]:
            problems.append(f"{where}: monotonic promise broken: {key} went from {earlier[key]} to {later[key]}")
    if earlier.get("status") in ("completed", "cancelled") and later.get("status") != earlier.get("status"):
        problems.append(f"{where}: terminal promise broken: {earlier['status']} became {later.get('status')}")
    return problems


def assert_status_invariants(
    body: Mapping[str, Any], earlier: Mapping[str, Any] | None = None, where: str = ""
) -> None:
    label = where or f"batch {body.get('batch_id')} {body.get('status')}"
    problems = status_problems(body, where=label)
    if earlier is not None:
        problems += progression_problems(earlier, body, where=label)
    assert not problems, "\n  ".join(["the status body breaks the contract:", *problems])


def rows_agree_problems(status: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The JSON download's rows against the status body's counts, taken while the batch is not moving."""
    counts = Counter(row.get("status") for row in rows)
    problems = []
    if len(rows) != status["total"]:
        problems.append(
            f"result promise broken: {len(rows)} rows in the download, the status says total {status['total']}"
        )
    for key in ("succeeded", "failed", "cancelled"):
        if counts[key] != status[key]:
            problems.append(f"count promise broken: {counts[key]} rows are {key}, the status says {status[key]}")
    if status["status"] in FINISHED and counts["pending"] + counts["running"]:
        problems.append(
            f"completion promise broken: the batch is {status['status']} but {counts['pending']} rows are pending "
            f"and {counts['running']} running"
        )
    return problems


def assert_rows_agree(status: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    problems = rows_agree_problems(status, rows)
    assert not problems, "\n  ".join(["the download disagrees with the status:", *problems])


def error_problems(response: httpx.Response, status: int, code: str | None = None) -> list[str]:
    """Whether ``response`` is the contract's error body with ``status`` (and ``code`` when given)."""
    request = f"{response.request.method} {response.request.url.path}"
    try:
        body = response.json()
    except ValueError:
        return [f"{request}: answered {response.status_code} with a body that is not JSON: {response.text[:200]!r}"]
    problems = [f"{request}: error body: {p}" for p in schema_problems("error", body)]
    got = body.get("error", {}).get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    if response.status_code != status or (code is not None and got != code):
        want = f"{status} {code}" if code else str(status)
        problems.insert(0, f"{request}: expected {want}, got {response.status_code} {got}: {response.text[:300]}")
    return problems


def assert_error(response: httpx.Response, status: int, code: str | None = None, *, promise: str) -> None:
    """``promise`` says in a few words what the target broke when the answer is not the expected error."""
    problems = error_problems(response, status, code)
    assert not problems, "\n  ".join([f"{promise}:", *problems])


def leaked(text: str, secrets_: Sequence[str]) -> list[str]:
    """The secrets (another user's prompts, file name, batch id) that appear in a response body."""
    return [secret for secret in secrets_ if secret and secret in text]


def unique_marker(prefix: str = "zq") -> str:
    """A token no enhancer would invent or drop: lowercase letters and digits, no word of any language."""
    return f"{prefix}{secrets.token_hex(4)}"


def own_prompt_problems(rows: Sequence[Mapping[str, Any]], markers: Sequence[str]) -> list[str]:
    """Each succeeded row's enhanced prompt carries its own row's marker and no other row's.

    ``markers[i]`` is the unique token written into input row i+1's prompt; an enhancer that keeps the
    user's details keeps it, so a result made from another row's prompt shows at once.
    """
    problems = []
    for index, (row, marker) in enumerate(zip(rows, markers, strict=False), start=1):
        if row.get("status") != "succeeded":
            continue
        enhanced = row.get("enhanced_prompt") or ""
        if marker not in enhanced:
            others = [i for i, m in enumerate(markers, start=1) if m != marker and m in enhanced]
            source = f" (it carries row {others[0]}'s marker)" if others else ""
            problems.append(
                f"row {index}: result promise broken: the enhanced prompt is not made from its own prompt{source}"
            )
    return problems


__all__ = [
    "FINISHED",
    "TERMINAL",
    "UNSETTLED_ROWS",
    "assert_error",
    "assert_rows_agree",
    "assert_status_invariants",
    "error_problems",
    "leaked",
    "own_prompt_problems",
    "progression_problems",
    "rows_agree_problems",
    "status_problems",
    "unique_marker",
]
