"""The example CI and the compose file: valid against their published schemas (offline), every command they run
exists, and deploy/compose.yaml runs the topology the process launcher runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from reference_backend.config import Settings
from utilities.cli import main as batchqa_cli
from utilities.paths import REPO_ROOT
from utilities.perf.profiles import PROFILES, locust_options
from utilities.procs.topology import API, BACKING_SERVICES, ROLES, WORKER, Role

pytestmark = pytest.mark.area("Kit conventions")

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
GITLAB = REPO_ROOT / "ci" / "gitlab-ci.yml"
COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"
MAKEFILE = REPO_ROOT / "Makefile"
SCHEMA_FILES = [(path, "vendor.github-workflows") for path in WORKFLOWS] + [
    (GITLAB, "vendor.gitlab-ci"),
    (COMPOSE, "vendor.compose-spec"),
]
GITLAB_SCRIPTS = ("before_script", "script", "after_script")
BATCHQA = {"batchqa", ".venv/bin/batchqa"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_there_is_a_pull_request_gate_and_a_nightly_workflow() -> None:
    triggers = [load(path).get(True) or load(path).get("on") for path in WORKFLOWS]  # YAML 1.1 reads `on` as True
    assert any("pull_request" in on for on in triggers), "no workflow runs on pull requests"
    assert any("schedule" in on for on in triggers), "no workflow runs on a schedule"


@pytest.mark.parametrize(
    ("path", "schema"), SCHEMA_FILES, ids=[p.relative_to(REPO_ROOT).as_posix() for p, _ in SCHEMA_FILES]
)
def test_file_is_valid_against_its_published_schema(path: Path, schema: str) -> None:
    result = check_jsonschema(schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  gate:\n    runs-on: ubuntu-latest\n    step:\n      - run: make test\n")
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


# What a workflow runs: each line of a GitHub `run:` block and each GitLab script entry.


def workflow_commands() -> Iterator[tuple[str, str]]:
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                if "run" in step:
                    yield from ((path.name, line) for line in step["run"].splitlines())
    for name, job in load(GITLAB).items():
        if isinstance(job, dict):
            for key in GITLAB_SCRIPTS:
                yield from ((f"{GITLAB.name} {name}", line) for line in job.get(key, []))


def makefile_targets() -> set[str]:
    return set(_TARGET.findall(MAKEFILE.read_text(encoding="utf-8")))


def cli_commands() -> dict[str, click.Command]:
    """Read from the click group at test time (its lazily loaded commands included)."""
    ctx = click.Context(batchqa_cli)
    found = {name: batchqa_cli.get_command(ctx, name) for name in batchqa_cli.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}


def command_problems(line: str, *, seen: frozenset[str] = frozenset()) -> list[str]:
    """Why ``line`` runs something that is neither a make target, a ``batchqa`` command nor a repository script."""
    words = shlex.split(line, comments=True)
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    if not words:
        return []
    program, args = words[0], words[1:]
    if program == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a] or ["setup"]
        return [f"`{line}`: no make target {t!r}" for t in targets if t not in makefile_targets()]
    if program in BATCHQA:
        return batchqa_problems(line, args)
    script = REPO_ROOT / program
    if program.startswith(".") and script.is_file() and program not in seen:
        if not os.access(script, os.X_OK):
            return [f"`{line}`: {program} is not executable"]
        lines = script.read_text(encoding="utf-8").splitlines()
        return [p for inner in lines for p in _script_problems(inner, seen | {program})]
    return [f"`{line}`: {program!r} is neither a make target, a batchqa command nor a script in the repository"]


def _script_problems(line: str, seen: frozenset[str]) -> list[str]:
    """Inside a repository script only its make and batchqa calls are checked; shell plumbing is its own."""
    words = shlex.split(line, comments=True) if line.strip() else []
    words = [w for w in words if not _ASSIGNMENT.match(w)]
    return command_problems(line, seen=seen) if words and (words[0] == "make" or words[0] in BATCHQA) else []


def batchqa_problems(line: str, args: list[str]) -> list[str]:
    commands = cli_commands()
    if not args or args[0] not in commands:
        return [f"`{line}`: no batchqa command {args[0] if args else ''!r} (have {sorted(commands)})"]
    command = commands[args[0]]
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [a.split("=", 1)[0] for a in args[1:] if a.startswith("--") and a.split("=", 1)[0] not in options]
    return [f"`{line}`: batchqa {args[0]} has no option {u}" for u in unknown]


def test_workflows_run_commands_of_their_own() -> None:
    lines = list(workflow_commands())
    assert lines, "no commands found in the workflows"
    problems = [f"{where}: {p}" for where, line in lines for p in command_problems(line)]
    assert problems == []


def test_the_command_check_catches_what_does_not_exist() -> None:
    assert command_problems("make no-such-target")
    assert command_problems(".venv/bin/batchqa no-such-command")
    assert command_problems("batchqa load --no-such-option 1")
    assert command_problems("curl -sSf https://example.com | sh")
    assert command_problems("make test PYTEST_ARGS=-x") == []
    assert command_problems("batchqa gate --run reports/perf/smoke --no-record") == []


def test_ci_run_writes_junit_and_allure_results_through_make_test() -> None:
    text = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    calls = [line for line in text.splitlines() if line.strip().startswith("make ")]
    assert len(calls) == 1 and calls[0].strip().startswith("make test "), calls
    assert "--junitxml=reports/junit.xml" in calls[0]
    assert "--alluredir=reports/allure-results" in calls[0]


# deploy/compose.yaml against utilities/procs/topology.py.


def compose_services() -> dict[str, dict]:  # type: ignore[type-arg]
    return load(COMPOSE)["services"]


def role_service(role: Role) -> tuple[str, dict]:  # type: ignore[type-arg]
    matches = [
        (name, service)
        for name, service in compose_services().items()
        if tuple(service.get("command", ())[: len(role.command)]) == role.command
    ]
    assert len(matches) == 1, f"expected one compose service running {' '.join(role.command)}, found {matches}"
    return matches[0]


def batchqa_settings(service: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {k: str(v) for k, v in (service.get("environment") or {}).items() if k.startswith("BATCHQA_")}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_compose_runs_each_role_with_the_topologys_settings(role: Role) -> None:
    name, service = role_service(role)
    settings = batchqa_settings(service)
    fields = {f"BATCHQA_{field.upper()}" for field in Settings.model_fields}
    problems = [f"{name}: {key} is not a setting of the backend" for key in settings if key not in fields]
    problems += [f"{name}: {key} is missing" for key in role.required if not settings.get(key)]
    problems += [
        f"{name}: {key}={settings.get(key)!r}, not {v!r}" for key, v in role.fixed.items() if settings.get(key) != v
    ]
    given = [key for key in role.optional if key in settings]
    if given and len(given) != len(role.optional):
        problems.append(f"{name}: optional settings come as a set, but only {given} are given")
    replicas = service.get("deploy", {}).get("replicas", 1)
    if replicas != role.replicas:
        problems.append(f"{name}: {replicas} replicas, the topology (and batchqa chaos) runs {role.replicas}")
    assert problems == []


def test_compose_processes_share_the_queue_database_and_signing_key() -> None:
    environments = [batchqa_settings(role_service(role)[1]) for role in ROLES]
    for key in {*API.required} & {*WORKER.required} | {"BATCHQA_SECRET_KEY"}:
        values = {env.get(key) for env in environments}
        assert len(values) == 1, f"{key} differs between processes: {values}"


def test_the_launcher_gives_each_role_the_topologys_settings() -> None:
    shared = {"BATCHQA_QUEUE_URL": "redis://r", "BATCHQA_DATABASE_URL": "sqlite://", "BATCHQA_SECRET_KEY": "k"}
    assert API.environment(shared)["BATCHQA_EMBEDDED_WORKERS"] == "false"
    assert "BATCHQA_EMBEDDED_WORKERS" not in WORKER.environment(shared)
    with pytest.raises(ValueError, match="BATCHQA_SECRET_KEY"):
        API.environment({k: v for k, v in shared.items() if k != "BATCHQA_SECRET_KEY"})


def test_compose_has_the_backing_services_with_redis_appending_to_its_log() -> None:
    services = compose_services()
    assert set(BACKING_SERVICES) <= set(services), sorted(services)
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes", redis


def test_every_long_running_compose_service_has_a_health_check() -> None:
    missing = [
        name
        for name, service in compose_services().items()
        if "healthcheck" not in service and service.get("restart") != "no"
    ]
    assert missing == []


def test_compose_locust_master_runs_the_nightly_profile() -> None:
    command = [str(word) for word in compose_services()["locust-master"]["command"]]
    expected = locust_options(PROFILES["nightly"], batch_file=Path("/app/fixtures/files/valid-1000.csv"))
    starts = [i for i in range(len(command)) if command[i : i + len(expected)] == expected]
    assert starts, f"the Locust master's options differ from the nightly profile's:\n{command}\n{expected}"


def test_compose_prometheus_scrapes_the_jobs_the_alerts_name() -> None:
    config = yaml.safe_load(load(COMPOSE)["configs"]["prometheus-conf"]["content"])
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    alerts = (REPO_ROOT / "deploy" / "alerts.yaml").read_text(encoding="utf-8")
    named = set(re.findall(r'job="([^"]+)"', alerts))
    assert named and named <= jobs, (named, jobs)
