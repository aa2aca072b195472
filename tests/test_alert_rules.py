"""deploy/alerts.yaml: promtool checks and unit-tests it, and every series it reads is one the backend exposes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from utilities.client.api import BatchApi
from utilities.procs.backend import BackendProcess
from utilities.procs.promtool import MISSING, find_promtool

from .conftest_services import service_missing

pytestmark = pytest.mark.area("Kit conventions")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "alerts.yaml"
RULE_TESTS = DEPLOY / "alerts.test.yaml"
# Series Prometheus makes itself rather than scraping: `up`, and the labels it adds to every scraped series.
SYNTHESISED = {"up"}
SCRAPE_LABELS = {"job", "instance"}
# Labels whose values are ids of the moment rather than a fixed set.
FREE_LABELS = {"worker"}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"inf", "nan"}
_SERIES = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')

Exposed = dict[str, dict[str, set[str]]]  # sample name -> label name -> values seen


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = find_promtool()
    if path is None:
        service_missing(MISSING)
    return path


def promtool_run(promtool: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *map(str, args)], capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:  # type: ignore[type-arg]
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not functions, keywords, label names or durations)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        before = expr[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == "." or match.group().lower() in _KEYWORDS:
            continue  # part of a number such as 1e3
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function
        names.add(match.group())
    return names


def parse_series(selector: str) -> tuple[str, dict[str, str]]:
    match = _SERIES.match(selector)
    assert match, f"not a series selector: {selector!r}"
    return match.group(1), dict(_LABEL.findall(match.group(2) or ""))


def scrape(url: str) -> tuple[str, Exposed]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    exposed: Exposed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = exposed.setdefault(sample.name, {})
            for key, value in sample.labels.items():
                labels.setdefault(key, set()).add(value)
    return text, exposed


@pytest.fixture(scope="module")
def busy_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """A backend that has run a batch, so every metric has seen some traffic."""
    with BackendProcess(tmp_path_factory.mktemp("alerts-backend")) as server:
        with BatchApi.new_user(server.url, "alerts") as api:
            batch = api.upload(text="Write a short guide about sourdough\nExplain city cycling")["batch_id"]
            assert api.wait_until(batch, timeout=60)["status"] == "completed"
        yield server


def test_metric_names_reads_series_not_functions_labels_or_numbers() -> None:
    expr = (
        'max(a_depth) > 1e3 and sum by (instance, le) (rate(b_total{code="5xx"}[5m])) '
        "/ on(job) group_left c_seconds offset 5m == 0 or time() - d_ts > 90"
    )
    assert metric_names(expr) == {"a_depth", "b_total", "c_seconds", "d_ts"}


def test_alert_rules_pass_promtool_check(promtool: Path) -> None:
    result = promtool_run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(promtool: Path) -> None:
    result = promtool_run(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_window_a_summary_and_a_firing_test() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if check.get("exp_alerts")
    }
    problems = []
    for rule in rules():
        name = rule.get("alert", "?")
        if not rule.get("for"):
            problems.append(f"{name} has no for: window")
        if not rule.get("annotations", {}).get("summary"):
            problems.append(f"{name} has no summary")
        if rule.get("labels", {}).get("severity") not in {"warning", "critical"}:
            problems.append(f"{name} has no severity warning/critical")
        if name not in fired:
            problems.append(f"{name} is never fired in {RULE_TESTS.name}")
    assert problems == []


def test_every_series_the_rules_read_is_exposed_by_the_backend(busy_backend: BackendProcess) -> None:
    assert busy_backend.url
    _, exposed = scrape(busy_backend.url)
    used = {name for rule in rules() for name in metric_names(rule["expr"])}
    missing = sorted(used - set(exposed) - SYNTHESISED)
    assert missing == [], f"rules read series the backend does not expose: {missing}"


def test_rule_test_series_have_the_backends_names_and_labels(busy_backend: BackendProcess) -> None:
    assert busy_backend.url
    _, exposed = scrape(busy_backend.url)
    problems = []
    for case in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]:
        for series in case["input_series"]:
            name, labels = parse_series(series["series"])
            if name in SYNTHESISED:
                continue
            if name not in exposed:
                problems.append(f"{name} is not in the backend's /metrics")
                continue
            for key, value in labels.items():
                if key in SCRAPE_LABELS:
                    continue
                if key not in exposed[name]:
                    problems.append(f"{name} has no label {key!r}")
                elif key not in FREE_LABELS and value not in exposed[name][key]:
                    problems.append(f"{name}{{{key}={value!r}}}: the backend's values are {sorted(exposed[name][key])}")
    assert problems == []


def _promtool_value(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    return repr(float(value))


def test_a_healthy_backends_own_metrics_held_for_half_an_hour_fire_no_alert(
    promtool: Path, busy_backend: BackendProcess, tmp_path: Path
) -> None:
    assert busy_backend.url
    text, _ = scrape(busy_backend.url)
    series = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {**sample.labels, "job": "batchqa-api", "instance": "api-1:8000"}
            rendered = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            series.append({"series": f"{sample.name}{{{rendered}}}", "values": f"{_promtool_value(sample.value)}x30"})
    case = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "25m", "alertname": rule["alert"], "exp_alerts": []} for rule in rules()
                ],
            }
        ],
    }
    path = tmp_path / "healthy.test.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False), encoding="utf-8")
    result = promtool_run(promtool, "test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
