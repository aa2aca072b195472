"""perf/<profile>.conf agree with utilities/perf/profiles.py, and plain Locust runs them as the kit means.

Locust cannot be imported inside pytest, so the runs are subprocesses against a closed port: they show
which user classes were spawned and which exit code a failed check gives, in a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from utilities.paths import KIT_ROOT, PERF_DIR, SAMPLE_FILES_DIR, kit_file
from utilities.perf.profiles import DEFAULT_BATCH_FILE, PROFILES, locust_conf, locust_options, locust_settings
from utilities.procs.ports import free_port

pytestmark = pytest.mark.area("Performance tooling")


def _conf(path: Path) -> dict[str, str]:
    pairs = (line.split(" = ", 1) for line in path.read_text(encoding="utf-8").splitlines() if " = " in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_conf_file_is_the_profile(name: str) -> None:
    path = PERF_DIR / f"{name}.conf"
    assert path.read_text(encoding="utf-8") == locust_conf(PROFILES[name]), (
        f"{path} differs from its profile: python -m utilities.perf.profiles writes it again"
    )
    options = locust_settings(PROFILES[name])
    assert {k: v for k, v in _conf(path).items() if k in options} == options
    assert _conf(path)["locustfile"] == "perf/locustfile.py"


def test_every_conf_file_belongs_to_a_profile() -> None:
    assert {p.stem for p in PERF_DIR.glob("*.conf")} == set(PROFILES)


def test_profile_names_only_the_user_classes_it_runs() -> None:
    profile = PROFILES["smoke"].with_overrides(socket_users=0)
    options = locust_options(profile)
    assert options[-2:] == ["BatchUser", "MixedUser"]
    assert locust_settings(profile)["socket-users"] == "0"


def test_batch_file_names_resolve_against_the_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing of the kit's relative to the working directory
    assert kit_file(DEFAULT_BATCH_FILE) == KIT_ROOT / DEFAULT_BATCH_FILE
    assert kit_file("valid-100.csv") == SAMPLE_FILES_DIR / "valid-100.csv"
    own = tmp_path / "mine.csv"
    own.write_text("prompt\nhello\n", encoding="utf-8")
    assert kit_file("mine.csv") == Path("mine.csv")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv"):
        kit_file("nowhere.csv")


def _locust(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "locust", "--config", "perf/smoke.conf", "--only-summary", *args]
    return subprocess.run(command, cwd=KIT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_plain_locust_with_a_conf_drops_zero_count_users_and_honours_exit_code_on_error() -> None:
    host = f"http://127.0.0.1:{free_port()}"
    # One user more than the counts: Locust would give it to a class whose fixed_count is 0 (by weight).
    result = _locust(
        *("--host", host, "--run-time", "3s", "--users", "3", "--spawn-rate", "10"),
        *("--batch-users", "1", "--socket-users", "0", "--mixed-users", "1", "--exit-code-on-error", "3"),
    )
    output = result.stdout + result.stderr
    assert "user classes: BatchUser=1, MixedUser=1\n" in output, output[-3000:]
    spawned = [line for line in output.splitlines() if "All users spawned" in line]
    assert not [line for line in spawned if "SocketUser" in line], spawned
    assert "load check failed" in output
    assert result.returncode == 3, output[-3000:]
