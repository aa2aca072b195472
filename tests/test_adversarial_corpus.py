"""The hostile-upload corpus: every file gets its exact refusal, quickly and cheaply, and creates no batch.

Time: each file may cost the server at most ``MAX_SERVER_CPU_S`` = 1 s of CPU (its process's CPU time around
the request, the 10 MiB bodies' reading included). The server's own work for the slowest entry is about 0.25 s
(``test_parser_refuses_each_file`` reads it in-process), so the limit leaves 4x headroom, and CPU time does not
grow when other processes keep the machine busy — wall time there has reached 3.6 s for a file the server spent
0.3 s on. Wall time still has a ceiling, ``MAX_SECONDS`` = 15 s, for a request that hangs without working.

Memory: the server's resident set (VmRSS) is read before and after the corpus, and its peak (VmHWM) after
it, from /proc/<pid>/status of a server started for this test alone. The peak is first reset to the
current RSS (``/proc/<pid>/clear_refs``), so it measures the corpus, not start-up or the password hash of
the registration (argon2 takes 64 MiB); where /proc refuses the reset, the peak is compared with the peak
before the corpus instead, which can only under-report (the summary says so). Both growths must stay under
100 MiB; Python keeps freed arenas, so the after-RSS is an upper bound of what the corpus leaked.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from reference_backend.errors import ApiError
from reference_backend.ingest import IngestLimits, parse_upload
from utilities.client.api import BatchApi
from utilities.gen.corpus_run import Answer, run_corpus
from utilities.gen.hostile_corpus import CORPUS, corpus, write_corpus
from utilities.gen.hostile_file import HostileFile
from utilities.procs.backend import BackendProcess

pytestmark = pytest.mark.area("Ingest")

MAX_SERVER_CPU_S = 1.0
MAX_SECONDS = 15.0
MEMORY_LIMIT_MIB = 100.0
# In-process, with no HTTP in the way: the parser's own bound, a quarter of the request budget.
PARSE_SECONDS = 0.5
UPLOAD_LIMIT = IngestLimits().max_bytes


def test_corpus_has_forty_named_files_across_every_category() -> None:
    entries = corpus()
    assert len(entries) >= 40
    assert len({entry.name for entry in entries}) == len(entries)
    assert set(Counter(entry.category for entry in entries)) == {
        "encoding",
        "volume",
        "json",
        "xlsx",
        "name",
        "type",
        "content",
    }
    for entry in entries:
        assert entry.status in (413, 415, 422), entry.name
        assert entry.description, entry.name


def test_corpus_is_reproducible_from_its_seed() -> None:
    def digest(entry: HostileFile, seed: int) -> str:
        return hashlib.sha256(entry(seed)[1]).hexdigest()

    for entry in corpus():
        assert digest(entry, 0) == digest(entry, 0), entry.name
    random_ones = [CORPUS[name] for name in ("utf16_bomless_garbage", "bom_then_invalid", "invalid_format")]
    assert all(digest(entry, 0) != digest(entry, 1) for entry in random_ones)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the server's memory from /proc")
def test_every_hostile_file_is_refused_fast_without_memory_growth_or_a_batch(
    start_backend: Callable[..., BackendProcess],
) -> None:
    server = start_backend()
    assert server.process is not None and server.url is not None
    with BatchApi.new_user(server.url, "hostile") as api:
        report = run_corpus(
            api,
            corpus(),
            pid=server.process.pid,
            max_seconds=MAX_SECONDS,
            max_server_cpu_s=MAX_SERVER_CPU_S,
            memory_limit_mib=MEMORY_LIMIT_MIB,
        )
        assert all(answer.server_cpu_s is not None for answer in report.answers)
        assert api.list_batches() == []
    print(report.summary())
    assert report.problems() == [], report.summary()


@pytest.mark.parametrize("entry", corpus(), ids=lambda entry: entry.name)
def test_parser_refuses_each_file(entry: HostileFile) -> None:
    filename, data = entry()
    if len(data) > UPLOAD_LIMIT:
        assert entry.status == 413  # the route refuses it before the parser sees it
        return
    # CPU time of this thread, not wall time: what a hostile file costs the parser, unchanged when other
    # processes keep the machine busy (wall time on a loaded 2-core box triples it).
    started = time.thread_time()
    with pytest.raises(ApiError) as caught:
        parse_upload(filename, data, IngestLimits())
    elapsed = time.thread_time() - started
    assert (caught.value.status, caught.value.code) == (entry.status, entry.code), caught.value.message
    assert caught.value.details["filename"]
    assert elapsed < PARSE_SECONDS, f"{entry.name} cost {elapsed:.2f} s of CPU"


def test_write_corpus_writes_files_and_a_manifest(tmp_path: Path) -> None:
    names = ["bom_only", "rtl_override_name", "xlsx_xxe"]
    written = write_corpus(tmp_path, names=names)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text(encoding="utf-8"))
    assert [path.name for path in written] == [*names, "MANIFEST.json"]
    assert [(item["name"], item["status"], item["code"]) for item in manifest["files"]] == [
        (name, CORPUS[name].status, CORPUS[name].code) for name in names
    ]
    assert manifest["files"][1]["upload_filename"] == "prompts\u202evsc.exe"
    for item in manifest["files"]:
        assert hashlib.sha256((tmp_path / item["name"]).read_bytes()).hexdigest() == item["sha256"]


def test_a_file_that_costs_the_server_too_much_cpu_is_named_however_fast_the_answer() -> None:
    entry = CORPUS["xlsx_10001_entries"]
    costly = Answer(entry, entry.status, entry.code, seconds=0.4, server_cpu_s=1.7)
    starved = Answer(entry, entry.status, entry.code, seconds=3.6, server_cpu_s=0.3)
    assert costly.problem(MAX_SECONDS, MAX_SERVER_CPU_S) == (
        "xlsx_10001_entries: cost the server 1.70 s of CPU, the limit is 1 s"
    )
    assert starved.problem(MAX_SECONDS, MAX_SERVER_CPU_S) is None
    assert Answer(entry, entry.status, entry.code, seconds=16.0).problem(MAX_SECONDS) is not None
