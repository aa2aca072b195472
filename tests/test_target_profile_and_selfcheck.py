"""The target profile's reading rules and the self-check's matrix, from files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from utilities.check.contract_checks import own_prompt_problems, progression_problems, status_problems
from utilities.client.profile import DEFAULT_LIMITS, ProfileError, load_profile
from utilities.selfcheck import NO_FAULT, Cell, Matrix, contract_faults, first_failure

pytestmark = pytest.mark.area("Reporting")

STATUS = {
    "batch_id": "b" * 32,
    "status": "running",
    "filename": "x.csv",
    "total": 3,
    "processed": 1,
    "succeeded": 1,
    "failed": 0,
    "cancelled": 0,
    "percent": 33.3,
    "eta_seconds": 2.0,
    "seq": 3,
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": "2026-01-01T00:00:00Z",
    "finished_at": None,
    "updated_at": "2026-01-01T00:00:01Z",
}


def test_a_profile_names_only_what_a_target_lacks(tmp_path: Path) -> None:
    path = tmp_path / "staging.toml"
    path.write_text('name = "staging"\n[capabilities]\npause = false\n[limits]\nmax_prompts = 500\n')
    profile = load_profile(path)
    assert not profile.has("pause") and profile.has("retry")
    assert profile.limit("max_prompts") == 500
    assert profile.limit("max_upload_bytes") == DEFAULT_LIMITS["max_upload_bytes"]
    assert "says the target has no pausing" in profile.missing_reason("pause")
    assert not profile.has("server_log"), "a capability that needs a value is absent until the profile gives it"


@pytest.mark.parametrize(
    "text",
    ['{"capabilities": {"teleport": true}}', '{"limits": {"max_prompts": -1}}', '{"colour": "red"}', "{not json"],
)
def test_an_unknown_or_malformed_profile_is_refused_with_the_reason(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ProfileError):
        load_profile(path)


def test_status_invariants_name_the_broken_promise() -> None:
    assert status_problems(STATUS) == []
    assert any("percent promise" in p for p in status_problems({**STATUS, "percent": 33.0}))
    assert any("count promise" in p for p in status_problems({**STATUS, "processed": 2}))
    assert any("completion promise" in p for p in status_problems({**STATUS, "status": "completed"}))
    assert any("monotonic" in p for p in progression_problems(STATUS, {**STATUS, "succeeded": 0, "processed": 0}))


def test_own_prompt_check_says_whose_marker_a_result_carries() -> None:
    rows = [{"status": "succeeded", "enhanced_prompt": "about zq2"}, {"status": "succeeded", "enhanced_prompt": "zq2"}]
    assert own_prompt_problems(rows, ["zq1", "zq2"]) == [
        "row 1: result promise broken: the enhanced prompt is not made from its own prompt (it carries row 2's marker)"
    ]


def test_first_failure_reads_the_node_id_and_counts_from_junit(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="e2e.api.test_a" name="test_ok"/>'
        '<testcase classname="e2e.api.test_a" name="test_bad[x]"><failure message="order promise broken"/></testcase>'
        '<testcase classname="e2e.api.test_b" name="test_skip"><skipped/></testcase></testsuite></testsuites>'
    )
    nodeid, message, counts = first_failure(junit)
    assert nodeid == "e2e/api/test_a.py::test_bad[x]" and message == "order promise broken"
    assert counts == {"passed": 1, "failed": 1, "skipped": 1}


def test_the_matrix_fails_when_a_fault_is_caught_by_no_suite_or_the_baseline_fails() -> None:
    def cell(fault: str, suite: str, caught: str | None) -> Cell:
        return Cell(fault, suite, 1 if caught else 0, 5, int(bool(caught)), 0, 1.0, caught)

    matrix = Matrix(
        ["api", "sockets"],
        [
            cell(NO_FAULT, "api", None),
            cell(NO_FAULT, "sockets", None),
            cell("swap_rows", "api", "e2e/api/test_results.py::test_x"),
            cell("swap_rows", "sockets", None),
            cell("ghost", "api", None),
            cell("ghost", "sockets", None),
        ],
    )
    assert matrix.uncaught() == ["ghost"]
    assert matrix.problems() == ["fault ghost was caught by no suite"]
    assert "Caught: 1 of 2 faults." in matrix.markdown()
    assert json.dumps([c.caught for c in matrix.cells]) == "[false, false, true, false, false, false]"


def test_the_catalogue_offers_contract_faults_and_leaves_latency_out() -> None:
    faults = contract_faults()
    assert faults and "slow_requests" not in faults and "slow_rows" not in faults
