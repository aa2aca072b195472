"""Process and machine metrics: a child shows in the tree and its memory in the tree's total, CPU time grows
with work, a gone process reads as None, and the Linux-only peak readings agree with the resident size."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from utilities.procs.process_metrics import (
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
    read_memory,
    reset_peak,
    rss_bytes,
    run_wait_ns,
    tree_rss_bytes,
)

pytestmark = pytest.mark.area("Performance tooling")

# A child that holds 64 MiB resident and waits for its stdin to close.
HOLDER = "import sys; block = bytearray(64 * 1024 * 1024); print('ready', flush=True); sys.stdin.read()"


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield child
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_a_child_is_in_the_tree_and_its_memory_in_the_total(holder: subprocess.Popen[str]) -> None:
    me = os.getpid()
    assert process_tree(me)[0] == me and holder.pid in process_tree(me)
    child_rss = rss_bytes(holder.pid)
    assert child_rss is not None and child_rss > 60 * 1024 * 1024
    total = tree_rss_bytes(me)
    assert total is not None and total >= child_rss + (rss_bytes(me) or 0)


def test_cpu_time_grows_with_work() -> None:
    before = cpu_seconds(os.getpid())
    busy_before = machine_busy_seconds()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after - before >= 0.25
    assert machine_busy_seconds() - busy_before >= 0.25
    assert run_wait_ns(os.getpid()) >= 0


def test_a_gone_process_reads_as_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    assert rss_bytes(child.pid) is None and cpu_seconds(child.pid) is None
    assert tree_rss_bytes(child.pid) is None and process_tree(child.pid) == []


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM and clear_refs are Linux's")
def test_the_peak_is_at_least_the_resident_size_and_can_be_reset(holder: subprocess.Popen[str]) -> None:
    sample = read_memory(holder.pid)
    assert sample.peak_kib >= sample.rss_kib > 60 * 1024
    if reset_peak(holder.pid):
        assert read_memory(holder.pid).peak_kib <= sample.peak_kib
