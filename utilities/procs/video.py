"""Failure videos for the browser suite: Playwright records through its own ffmpeg build, which cannot be
downloaded here, so Debian's ffmpeg is linked where Playwright looks for it.

``python -m utilities.procs.video ensure`` (run by ``make qa``) installs Debian's ``ffmpeg`` with apt when
running as root and it is missing (about 20 s, once), then links it. It never fails: without ffmpeg
the suite runs without videos and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from .apt import apt_install, can_install

NO_VIDEO = (
    "failure videos are off: no ffmpeg (install Debian's `ffmpeg`, then run `python -m utilities.procs.video ensure`)"
)


def browsers_path() -> Path:
    """Where Playwright keeps its browsers and its ffmpeg (PLAYWRIGHT_BROWSERS_PATH, else its default)."""
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured and configured != "0":
        return Path(configured)
    return Path.home() / ".cache" / "ms-playwright"


def ffmpeg_revision() -> str | None:
    """The ffmpeg build this Playwright expects, from the browsers.json its driver ships."""
    try:
        import playwright
    except ImportError:
        return None
    manifest = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    try:
        browsers = json.loads(manifest.read_text(encoding="utf-8"))["browsers"]
    except (OSError, ValueError, KeyError):
        return None
    return next((b["revision"] for b in browsers if b.get("name") == "ffmpeg"), None)


def playwright_ffmpeg() -> Path | None:
    """The path Playwright runs ffmpeg from (Linux), or None when this Playwright has no ffmpeg entry."""
    revision = ffmpeg_revision()
    if revision is None or not sys.platform.startswith("linux"):
        return None
    return browsers_path() / f"ffmpeg-{revision}" / "ffmpeg-linux"


def video_available() -> bool:
    """Whether ``--video`` can record: Playwright's ffmpeg (its own or the link) is there and runs."""
    path = playwright_ffmpeg()
    return path is not None and path.exists() and os.access(path, os.X_OK)


def ensure() -> int:
    target = playwright_ffmpeg()
    if target is None:
        print("video: this Playwright has no ffmpeg entry; failure videos are off")
        return 0
    if video_available():
        print(f"video: {target}")
        return 0
    system = shutil.which("ffmpeg")
    if system is None and can_install():
        print("video: installing Debian's ffmpeg with apt-get for failure videos (about 20 s, once)...", flush=True)
        apt_install("ffmpeg", quiet=True)
        system = shutil.which("ffmpeg")
    if system is None:
        print(f"video: {NO_VIDEO}")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()  # a link to an ffmpeg that has gone
    target.symlink_to(system)
    print(f"video: {target} -> {system}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        print("usage: python -m utilities.procs.video ensure", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure())
