"""The setup's Debian installs wait for another apt's lock and refresh missing package lists once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utilities.procs import apt

pytestmark = pytest.mark.area("Kit conventions")

# A stand-in apt-get: logs its arguments; `install` fails until `update` has run (a fresh machine's empty lists).
FAKE_APT = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *" update"*) touch "{updated}"; exit 0 ;;
  *) [ -e "{updated}" ] && exit 0 || exit 100 ;;
esac
"""


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    script = tmp_path / "bin" / "apt-get"
    script.parent.mkdir()
    script.write_text(FAKE_APT.format(log=log, updated=tmp_path / "updated"))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def test_install_waits_for_the_lock_and_updates_the_lists_when_the_first_try_fails(fake_apt: Path) -> None:
    assert apt.apt_install("chromium", quiet=True)
    calls = fake_apt.read_text().splitlines()
    lock = f"-o DPkg::Lock::Timeout={apt.LOCK_TIMEOUT_SECONDS}"
    assert [c.split(lock)[1].split()[0] for c in calls] == ["install", "update", "install"]
    assert all(c.startswith(lock) for c in calls), calls
    assert calls[-1].endswith("--no-install-recommends chromium")


def test_install_reports_failure_when_the_package_cannot_be_installed(fake_apt: Path, tmp_path: Path) -> None:
    # An update that does not help: the install fails twice and says so.
    (tmp_path / "bin" / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> "{fake_apt}"\nexit 100\n')
    assert not apt.apt_install("no-such-package", quiet=True)
    assert len(fake_apt.read_text().splitlines()) == 3
