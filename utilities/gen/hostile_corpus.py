"""The whole hostile corpus, every builder module registered: ``corpus()``, ``accepted_corpus()`` and
``write_corpus(dest)`` (for ``batchqa gen --corpus DIR``: the files and a MANIFEST.json with each one's upload
name and expected refusal).

Every entry is one way a file can hurt an upload endpoint: encodings that lie, sizes that amplify in
memory, archives that unpack into gigabytes, XML that expands or reads local files, names that disguise
their type. ``CORPUS[name](seed)`` returns ``(upload filename, bytes)``, the same bytes for the same seed.
``ACCEPTED`` holds files as costly as the hostile ones that a valid upload must nevertheless take: a
prompt is bounded only by the file size, and a row breaking a rule of its own (an empty prompt next to
other values) is marked failed while the batch runs. Their status is 202 and their code says what the
rows get: ``accepted`` or ``rows_failed``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from utilities.gen import hostile_names, hostile_text, hostile_xlsx  # noqa: F401  (each registers its entries)
from utilities.gen.hostile_file import REGISTERED, HostileFile

CORPUS: dict[str, HostileFile] = {f.name: f for f in REGISTERED if f.status != 202}
ACCEPTED: dict[str, HostileFile] = {f.name: f for f in REGISTERED if f.status == 202}
if len(CORPUS) + len(ACCEPTED) != len(REGISTERED):
    raise RuntimeError("two hostile files share a name")


def corpus(names: Iterable[str] | None = None) -> list[HostileFile]:
    """The entries named, or all of them, in a stable order."""
    return [CORPUS[name] for name in names] if names is not None else list(CORPUS.values())


def accepted_corpus() -> list[HostileFile]:
    """The costly files a valid upload must take whole, in a stable order."""
    return list(ACCEPTED.values())


def write_corpus(dest: Path, *, seed: int = 0, names: Iterable[str] | None = None) -> list[Path]:
    """Write the entries (all by default) as ``dest/<name>`` and a ``MANIFEST.json`` with each one's upload
    name and expected refusal; the upload names stay in the manifest, as several are not valid file names.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    entries = []
    for entry in corpus(names):
        filename, data = entry(seed)
        path = dest / entry.name
        path.write_bytes(data)
        written.append(path)
        entries.append(
            {
                "name": entry.name,
                "upload_filename": filename,
                "category": entry.category,
                "status": entry.status,
                "code": entry.code,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "description": entry.description,
            }
        )
    manifest = {"generator": "utilities.gen.hostile_corpus", "seed": seed, "files": entries}
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [*written, dest / "MANIFEST.json"]
