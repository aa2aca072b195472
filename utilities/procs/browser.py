"""Find a Chromium for Playwright: Playwright's own where installed, else the system's (Debian's).

``python -m utilities.procs.browser ensure`` installs Debian's ``chromium`` with apt when running as root
and no browser is found, and otherwise says exactly what to install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .apt import apt_install, can_install

SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a sandbox-less machine with a closed network: no GPU, no first-run or sync traffic, no QUIC.
SYSTEM_ARGS = (
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
)


@dataclass(frozen=True)
class Chromium:
    kind: str  # "playwright" or "system"
    path: Path


def playwright_chromium() -> Path | None:
    """Playwright's own build, if ``playwright install chromium`` ever ran on this machine.

    Read from the installed driver's ``browsers.json`` (the revision it launches) and Playwright's browser
    folder, without starting the driver: this runs while pytest configures, even for ``--collect-only``.
    """
    spec = importlib.util.find_spec("playwright")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    manifest = package / "driver" / "package" / "browsers.json"
    try:
        browsers = json.loads(manifest.read_text(encoding="utf-8"))["browsers"]
    except (OSError, ValueError, KeyError):
        return None
    revision = next((b.get("revision") for b in browsers if b.get("name") == "chromium"), None)
    if revision is None:
        return None
    folder = os.environ.get("PLAYWRIGHT_BROWSERS_PATH", "")
    if folder == "0":  # browsers installed inside the package
        root = package / "driver" / "package" / ".local-browsers"
    else:
        root = Path(folder) if folder else Path.home() / ".cache" / "ms-playwright"
    install = root / f"chromium-{revision}"
    for executable in ("chrome-linux64/chrome", "chrome-linux/chrome"):
        if (install / executable).exists():
            return install / executable
    return install if (install / "INSTALLATION_COMPLETE").exists() else None


def system_chromium() -> Path | None:
    for name in SYSTEM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_chromium() -> Chromium | None:
    if override := os.environ.get("BATCHQA_CHROMIUM"):
        return Chromium("system", Path(override))
    if path := playwright_chromium():
        return Chromium("playwright", path)
    if path := system_chromium():
        return Chromium("system", path)
    return None


def ensure() -> int:
    found = find_chromium()
    if found:
        print(f"chromium: {found.path} ({found.kind})")
        return 0
    if can_install():
        print("chromium: none found; installing Debian's chromium with apt-get (about 40 s)...", flush=True)
        apt_install("chromium")
        if found := find_chromium():
            print(f"chromium: {found.path} ({found.kind})")
            return 0
    print(
        "chromium: no browser found. Install one of: Debian/Ubuntu `sudo apt-get install chromium`, "
        "or `python -m playwright install chromium` where downloads work; or set BATCHQA_CHROMIUM=/path/to/chrome.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        print("usage: python -m utilities.procs.browser ensure", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure())
