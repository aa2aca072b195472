"""Schema fuzzing: schemathesis against the target's own OpenAPI document, every check on, no failure allowed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from utilities.client.api import BatchApi
from utilities.paths import REPO_ROOT
from utilities.procs.backend import BackendProcess
from utilities.pytest_plugin import Target, http

EXAMPLES_PER_OPERATION = 30
SEED = 7  # reproducible runs; a failure prints the case to replay


def test_schemathesis_finds_no_failure_in_the_openapi_document(
    target: Target, start_backend: Callable[..., BackendProcess], tmp_path: Path
) -> None:
    # Fuzzed logins and sign-ups trip login throttling per client address: on the bundled target the fuzzer
    # gets a backend of its own, so its lockouts cannot refuse the logins of the tests beside it.
    url = str(start_backend().url) if target.bundled else target.base_url
    if not target.bundled:
        target.require("openapi")
    document = http("GET", f"{url}/openapi.json", timeout=30)
    assert document.status_code == 200, f"/openapi.json answered {document.status_code}"
    with BatchApi.new_user(url, "fuzz") as api:
        token = api.token
    command = [
        _schemathesis(),
        # The contract's checks: which answers a schema cannot rule out (an upload refused for its content)
        # and how logout is fuzzed without ending the run's own session.
        "--config-file",
        str(REPO_ROOT / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
        "--output-sanitize",
        "true",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "schemathesis"),
    ]
    if not target.bundled:
        # Fuzzed logins on a shared target would trip its per-address login throttle for every other test
        # from this machine; they are fuzzed where the kit owns the backend.
        command += ["--exclude-path-regex", "^/api/v1/auth/(login|register)$"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, (
        f"schema promise broken: schemathesis found failures against {url} (the operation, then what it broke):\n"
        + "\n".join(failures(output) or [output[-4000:]])
    )


def failures(output: str) -> list[str]:
    """``METHOD path: STxxx what`` for every failure schemathesis printed, once each."""
    found: list[str] = []
    operation = ""
    for line in output.splitlines():
        if heading := re.fullmatch(r"_+ (\S+ \S+) _+", line.strip()):
            operation = heading.group(1)
        elif check := re.fullmatch(r"- (ST\d+ .+)", line.strip()):
            entry = f"{operation}: {check.group(1)}"
            if entry not in found:
                found.append(entry)
    return found


def _schemathesis() -> str:
    beside = Path(sys.executable).with_name("schemathesis")
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    assert found, "schemathesis is not installed: it is in the kit's test extra (pip install -e '.[test]')"
    return found
