"""Installing a Debian package as root, for setup steps that find a tool missing (chromium, promtool, ffmpeg).

apt holds one lock for the whole machine: two setups started at once on a fresh machine (two clones, two CI
jobs) both install, and the second must wait for the first instead of failing on "Could not get lock".
"""

from __future__ import annotations

import os
import shutil
import subprocess

# How long apt waits for another apt or dpkg to let go of its lock before it gives up.
LOCK_TIMEOUT_SECONDS = 600


def can_install() -> bool:
    """True where this process may install Debian packages: root, with apt-get on the PATH."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(*packages: str, quiet: bool = False) -> bool:
    """Install ``packages`` without recommends; on failure refresh the package lists and try once more.

    Returns whether the last attempt succeeded. A fresh machine may have no package lists yet, hence the
    update. ``quiet`` keeps apt's progress off the terminal (its errors still show).
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={LOCK_TIMEOUT_SECONDS}"]
    out = subprocess.DEVNULL if quiet else None
    install = ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, stdout=out, check=False).returncode == 0:
        return True
    subprocess.run(["apt-get", *lock, "update", "-q"], env=env, stdout=out, check=False)
    return subprocess.run(install, env=env, stdout=out, check=False).returncode == 0
