"""Find Prometheus's ``promtool``, which checks and unit-tests the alert rules in deploy/alerts.yaml.

``python -m utilities.procs.promtool ensure`` (run by ``make setup`` and ``make promtool``) installs
Debian's ``prometheus`` package, which ships ``/usr/bin/promtool``, with apt when running as root and
no promtool is found (about 15 s, once; the package starts no server), and otherwise says what to install.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .apt import apt_install, can_install

MISSING = (
    "promtool: not found. Install Prometheus's promtool: Debian/Ubuntu `sudo apt-get install --no-install-recommends "
    "prometheus`, or unpack a release from prometheus.io and put promtool on PATH; or set BATCHQA_PROMTOOL=/path."
)


def find_promtool() -> Path | None:
    """``BATCHQA_PROMTOOL``, else ``promtool`` on PATH, else Debian's /usr/bin/promtool."""
    if override := os.environ.get("BATCHQA_PROMTOOL"):
        return Path(override)
    found = shutil.which("promtool") or ("/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)
    return Path(found) if found else None


def ensure() -> int:
    if found := find_promtool():
        print(f"promtool: {found}")
        return 0
    if can_install():
        print("promtool: none found; installing Debian's prometheus package with apt-get (about 15 s)...", flush=True)
        apt_install("prometheus", quiet=True)
        if found := find_promtool():
            print(f"promtool: {found}")
            return 0
    print(MISSING, file=sys.stderr)
    return 1


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        print("usage: python -m utilities.procs.promtool ensure", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure())
