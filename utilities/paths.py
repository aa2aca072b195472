"""Where the kit finds its own files: the data packages it ships, and the project it runs for.

``fixtures`` (schemas, baselines, sample uploads) and ``perf`` (the Locust files and one ``.conf`` per
profile) are packages with their data, found through ``importlib.resources``: in an editable install that
is the checkout itself, in a wheel the installed copy.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package_dir(package: str) -> Path:
    root = resources.files(package)
    # Locust takes files by path, and the schemas are globbed: the kit is installed as files on disk.
    if not isinstance(root, Path):
        raise RuntimeError(f"the kit's {package!r} package is not on disk ({root!r}); install batchqa unzipped")
    return root


FIXTURES_DIR = _package_dir("fixtures")
SCHEMA_DIR = FIXTURES_DIR / "schemas"
BASELINES_DIR = FIXTURES_DIR / "baselines"
SAMPLE_FILES_DIR = FIXTURES_DIR / "files"
PERF_DIR = _package_dir("perf")
KIT_ROOT = FIXTURES_DIR.parent
# The checkout when the kit runs from one (its node_modules/ holds the Allure CLI); otherwise the working
# directory, the project the installed kit is used in.
REPO_ROOT = KIT_ROOT if (KIT_ROOT / "pyproject.toml").is_file() else Path.cwd()


def kit_file(name: str | Path) -> Path:
    """A file named on a command line or in a ``.conf``: as given, else under the kit (``fixtures/files/x.csv``),
    else among the sample uploads (``x.csv``), so remote Locust workers find the master's relative names."""
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    for base in (KIT_ROOT, SAMPLE_FILES_DIR):
        if (base / path).exists():
            return base / path
    raise FileNotFoundError(f"{name}: not in the working directory, under {KIT_ROOT} or in {SAMPLE_FILES_DIR}")


__all__ = [
    "BASELINES_DIR",
    "FIXTURES_DIR",
    "KIT_ROOT",
    "PERF_DIR",
    "REPO_ROOT",
    "SAMPLE_FILES_DIR",
    "SCHEMA_DIR",
    "kit_file",
]
