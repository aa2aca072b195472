"""Bytes on the wire and time for a finished 1000-prompt batch's downloads, per format and content coding.

``batchqa download-bench`` uploads two 1000-prompt files (sentence-like prompts as ``batchqa bench`` uses,
and the long multi-line ones of ``utilities.gen.long_prompts``), waits for each to finish and downloads
every format with each coding ``repeat`` times, side by side in one run. Times are the client's, request to
last byte, over loopback: they show what compressing costs the server. What it saves depends on the link, so
the table adds the transfer time the wire bytes would take at ``--link-mbit``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import httpx

from utilities.client.api import BatchApi
from utilities.gen import GenSpec, generate, long_prompts_csv
from utilities.perf.batch_timing import BATCH_TIMEOUT_S
from utilities.procs.target import target

FORMATS = ("csv", "json", "zip")
CODINGS = ("identity", "gzip", "br")


@dataclass(frozen=True)
class DownloadPoint:
    file: str
    fmt: str
    coding: str
    wire_bytes: int
    body_bytes: int
    median_s: float
    min_s: float

    def link_s(self, mbit: float) -> float:
        """The median plus what the wire bytes take at ``mbit`` Mbit/s (a derived figure, not measured)."""
        return self.median_s + self.wire_bytes * 8 / (mbit * 1e6)


def measure(http: httpx.Client, batch_id: str, file: str, *, repeat: int = 5) -> list[DownloadPoint]:
    """Every format × coding of one finished batch, interleaved so load changes hit each alike."""
    timings: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], tuple[int, int]] = {}
    for _ in range(repeat):
        for fmt in FORMATS:
            for coding in CODINGS if fmt != "zip" else ("identity",):
                started = time.perf_counter()
                response = http.get(
                    f"/api/v1/batch/download/{batch_id}", params={"format": fmt}, headers={"Accept-Encoding": coding}
                )
                body = response.content
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                sent = response.headers.get("content-encoding", "identity")
                if sent != coding:
                    raise click.ClickException(f"asked for {coding} {fmt}, the target sent {sent}")
                timings.setdefault((fmt, coding), []).append(elapsed)
                sizes[(fmt, coding)] = (response.num_bytes_downloaded, len(body))
    return [
        DownloadPoint(file, fmt, coding, *sizes[(fmt, coding)], statistics.median(times), min(times))
        for (fmt, coding), times in timings.items()
    ]


def render_markdown(points: list[DownloadPoint], *, link_mbit: float, load: str) -> str:
    lines = [
        f"Downloads of a finished 1000-prompt batch (loopback, medians; load average {load}; the last column adds "
        f"the wire bytes' transfer time at {link_mbit:g} Mbit/s):",
        "",
        "| file | format | coding | bytes on the wire | body | ratio | time (median) | at link speed |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for point in points:
        ratio = point.body_bytes / point.wire_bytes if point.wire_bytes else 0.0
        lines.append(
            f"| {point.file} | {point.fmt} | {point.coding} | {point.wire_bytes:,} | {point.body_bytes:,} | "
            f"{ratio:.1f}× | {point.median_s * 1000:.0f} ms | {point.link_s(link_mbit) * 1000:.0f} ms |"
        )
    return "\n".join(lines) + "\n"


def _run(base_url: str, repeat: int) -> tuple[list[DownloadPoint], dict[str, float]]:
    """The points, and how long each file's upload took to be accepted (request to 202)."""
    points: list[DownloadPoint] = []
    uploads: dict[str, float] = {}
    with BatchApi.new_user(base_url, "download-bench") as api:
        for file, content in (("plain", generate(GenSpec(rows=1000, seed=0))), ("long", long_prompts_csv())):
            started = time.perf_counter()
            accepted = api.upload(content=content, filename=f"{file}.csv")
            uploads[file] = time.perf_counter() - started
            final = api.wait_until(accepted["batch_id"], timeout=BATCH_TIMEOUT_S)
            if final["status"] != "completed":
                raise click.ClickException(f"the {file} batch ended {final['status']}")
            points += measure(api.http, accepted["batch_id"], file, repeat=repeat)
    return points, uploads


@click.command("download-bench")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True, help="Downloads per point.")
@click.option("--link-mbit", type=click.FloatRange(min=0.1), default=50.0, show_default=True)
@click.option("--base-url", envvar="BATCHQA_BASE_URL", default=None, help="Default: start a bundled backend.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/download-bench"), show_default=True
)
def download_bench_command(repeat: int, link_mbit: float, base_url: str | None, out: Path) -> None:
    """Bytes on the wire and time per download format and content coding, for 1000-prompt batches."""
    out.mkdir(parents=True, exist_ok=True)
    with target(base_url, log_path=out / "server.log", prefix="batchqa-download-bench-") as (url, _server):
        points, uploads = _run(url, repeat)
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    markdown = render_markdown(points, link_mbit=link_mbit, load=load)
    markdown += "\nUpload accepted (request to 202): " + ", ".join(f"{k} {v:.2f} s" for k, v in uploads.items()) + "\n"
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    results = {"load_average": load, "link_mbit": link_mbit, "upload_s": uploads, "points": [asdict(p) for p in points]}
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    click.echo(markdown)
    click.echo(f"written to {out}/summary.md and results.json")
