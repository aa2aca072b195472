"""One hostile upload (``HostileFile``) and how builder modules declare theirs: ``@entry(filename, category,
status, code)`` on a seeded builder, or ``register(HostileFile(...))``. ``hostile_corpus`` imports every builder
module and builds the corpus from what they registered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from utilities.gen.content import GenSpec
from utilities.gen.writers import generate


@dataclass(frozen=True)
class HostileFile:
    """One corpus entry; calling it returns ``(filename, bytes)``, the same bytes for the same seed."""

    name: str
    filename: str
    category: str
    description: str
    status: int
    code: str
    build: Callable[[int], bytes]

    def __call__(self, seed: int = 0) -> tuple[str, bytes]:
        return self.filename, self.build(seed)


REGISTERED: list[HostileFile] = []


def register(file: HostileFile) -> HostileFile:
    """Declare one corpus entry (``hostile_corpus`` collects them)."""
    REGISTERED.append(file)
    return file


def entry(
    filename: str, category: str, status: int, code: str
) -> Callable[[Callable[[int], bytes]], Callable[[int], bytes]]:
    """Declare the decorated seeded builder as an entry named after it, described by its docstring's first line;
    status 202 puts it among the files a valid upload must take."""

    def declare(build: Callable[[int], bytes]) -> Callable[[int], bytes]:
        description = (build.__doc__ or "").strip().splitlines()[0]
        register(HostileFile(build.__name__.lstrip("_"), filename, category, description, status, code, build))
        return build

    return declare


def valid_csv(seed: int, rows: int = 5) -> bytes:
    return generate(GenSpec(rows=rows, seed=seed))
