"""Evidence a test leaves for its Allure report: files and data recorded while it runs, attached if it fails.

Page objects and tests call ``attach_file`` / ``attach_json``; the root ``conftest.py`` opens a collector
per test when pytest writes Allure results (``--alluredir``) and attaches what was recorded when the test
fails (or at once with ``always=True``). Without ``--alluredir``, or outside pytest, both calls do
nothing, so library code can call them unconditionally::

    from utilities.reporting import evidence
    evidence.attach_file(path, "uploaded file")
    evidence.attach_json(report.as_dict(), "cadence report", always=True)

The helpers below turn what a failed browser test leaves behind into attachments: the prompt files the
page sent (from the multipart bodies), the progress view's update cadence with a plot, and the lines the
bundled backend logged while the test ran.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import itertools
import json
import logging
import math
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from utilities.client.cadence import PageCadence, page_cadence, sample_field

log = logging.getLogger(__name__)

# The report is one HTML file with every attachment inlined (base64), and Allure gives up on a file of some
# hundreds of MB: a bigger attachment, or one past the session's budget, is named in a note instead.
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
SESSION_BUDGET_BYTES = 150 * 1024 * 1024
SERVER_LOG_LINES = 200

MIME = {
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".json": "application/json",
    ".jsonl": "text/plain",
    ".png": "image/png",
    ".webm": "video/webm",
    ".zip": "application/zip",
    ".html": "text/html",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def mime_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MIME.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class Item:
    """One thing to attach: a file on disk or bytes, with the name the report shows."""

    name: str
    path: Path | None = None
    body: bytes | None = None
    mime: str = "application/octet-stream"
    extension: str = "attach"
    always: bool = False


@dataclass
class Collector:
    """What one test recorded; ``conftest.py`` drains it into Allure when the test ends."""

    test: str
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        self.items.append(item)


_current: Collector | None = None


def begin(test: str) -> Collector:
    global _current
    _current = Collector(test)
    return _current


def end() -> Collector | None:
    global _current
    collector, _current = _current, None
    return collector


def current() -> Collector | None:
    return _current


def attach_file(path: str | Path, name: str | None = None, *, always: bool = False) -> None:
    """Record ``path`` for the report (read when it is attached, so record a download after saving it)."""
    if _current is None:
        return
    path = Path(path)
    _current.add(
        Item(
            name or path.name,
            path=path,
            mime=mime_type(path.name),
            extension=path.suffix[1:] or "attach",
            always=always,
        )
    )


def attach_json(obj: Any, name: str, *, always: bool = False) -> None:
    """Record ``obj`` as JSON now (dataclasses are converted; anything else JSON cannot hold becomes str)."""
    if _current is None:
        return
    data = asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    _current.add(Item(name, body=body, mime="application/json", extension="json", always=always))


def attach_text(text: str, name: str, *, always: bool = False) -> None:
    if _current is None:
        return
    _current.add(Item(name, body=text.encode("utf-8"), mime="text/plain", extension="txt", always=always))


_spent = 0


def write(item: Item) -> None:
    """Hand one item to allure-pytest (a no-op when it is not writing results)."""
    global _spent
    try:
        import allure
    except ImportError:
        return
    if item.path is not None and not item.path.is_file():
        allure.attach(
            f"{item.path} is gone", name=f"{item.name} (missing)", attachment_type="text/plain", extension="txt"
        )
        return
    size = len(item.body) if item.body is not None else item.path.stat().st_size  # type: ignore[union-attr]
    if size > MAX_ATTACHMENT_BYTES or _spent + size > SESSION_BUDGET_BYTES:
        where = item.path or "(recorded in memory)"
        limit = "the limit per attachment" if size > MAX_ATTACHMENT_BYTES else "what is left of this run's budget"
        note = f"{where}: {size:,} bytes, more than {limit} for the single-file report"
        allure.attach(note, name=f"{item.name} (not attached)", attachment_type="text/plain", extension="txt")
        return
    _spent += size
    if item.body is not None:
        allure.attach(item.body, name=item.name, attachment_type=item.mime, extension=item.extension)
    else:
        allure.attach.file(str(item.path), name=item.name, attachment_type=item.mime, extension=item.extension)


# What the page sent


def uploaded_files(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The parts of a multipart upload: ``(file name, content)`` for a file, ``("pasted prompts.txt", text)``
    for the ``text`` field of a pasted upload."""
    if "multipart/form-data" not in content_type.lower():
        return [("upload body", body)]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts = []
    for part in message.iter_parts():
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        field_name = part.get_param("name", header="content-disposition")
        if filename:
            parts.append((filename, content))
        elif field_name == "text":
            parts.append(("pasted prompts.txt", content))
    return parts


# What the progress view showed


def progress_plot(timeline: Sequence[Any], cadence: PageCadence) -> bytes:
    """A PNG: percent shown over time (coloured by connection mode) above the gaps between updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = sample_field(timeline[0], "at")
    times = [sample_field(s, "at") - start for s in timeline]
    percents = [sample_field(s, "percent") for s in timeline]
    modes = [sample_field(s, "connection") or "?" for s in timeline]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 2))
    top.step(times, [p if p is not None else math.nan for p in percents], where="post", color="#888", lw=1)
    for mode, colour in zip(sorted(set(modes)), itertools.cycle(("#4878a8", "#c44e52", "#55a868", "#8172b2"))):
        xs = [t for t, m in zip(times, modes, strict=True) if m == mode]
        ys = [p for p, m in zip(percents, modes, strict=True) if m == mode]
        top.plot(xs, ys, "o", ms=3, color=colour, label=f"connection: {mode}")
    top.set_ylabel("percent shown")
    top.set_title(
        f"progress view: {cadence.samples} updates, {len(cadence.late)} gaps over the limit "
        f"(page stalled {sum(cadence.stalled_s):.2f} s)"
    )
    top.legend(fontsize="small", loc="lower right")
    top.grid(True, alpha=0.3)
    gap_times = times[1 : len(cadence.gaps_s) + 1]
    colours = ["#c44e52" if g > cadence.limit_s + cadence.slack_s else "#4878a8" for g in cadence.judged_s]
    bottom.bar(gap_times, cadence.judged_s, width=0.15, color=colours, label="gap less page stall")
    bottom.bar(gap_times, cadence.stalled_s, bottom=cadence.judged_s, width=0.15, color="#bbb", label="page stalled")
    bottom.axhline(cadence.limit_s, color="#222", lw=1, ls="--", label=f"{cadence.limit_s:g} s (US-003)")
    bottom.axhline(cadence.limit_s + cadence.slack_s, color="#c44e52", lw=1, ls=":", label="limit + timer slack")
    bottom.set_ylabel("gap before update (s)")
    bottom.set_xlabel("seconds since recording started")
    # Head room above the bars and the limit lines, for a one-row legend that covers neither.
    bottom.set_ylim(0, max([*cadence.gaps_s, cadence.limit_s + cadence.slack_s]) * 1.5)
    bottom.legend(fontsize="small", loc="upper left", ncol=2)
    bottom.grid(True, alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def record_progress(
    timeline: Sequence[Any], name: str = "progress view", *, stalls: Sequence[Any] = (), always: bool = False
) -> None:
    """Record the cadence report (JSON, with every sample and page stall) and its plot for the report."""
    if _current is None or not timeline:
        return
    cadence = page_cadence(timeline, stalls)
    samples = [asdict(s) if is_dataclass(s) else dict(s) for s in timeline]
    attach_json(
        {**cadence.as_dict(), "timeline": samples, "page_stalls": list(stalls)},
        f"{name}: update cadence",
        always=always,
    )
    try:
        png = progress_plot(timeline, cadence)
    except Exception as exc:  # a plot must never hide the failure it illustrates
        log.warning("cadence plot failed: %s", exc)
        return
    _current.add(Item(f"{name}: update cadence plot", body=png, mime="image/png", extension="png", always=always))


# What the server logged


_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def server_log_excerpt(path: Path, since: float, *, max_lines: int = SERVER_LOG_LINES) -> str | None:
    """The lines of a backend's log (``asctime`` stamped, local time) from ``since`` (epoch seconds) on.

    Unstamped lines (uvicorn's, tracebacks) go with the stamped line before them. None when the log has
    nothing from that time; at most the last ``max_lines`` lines.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, io.SEEK_END)
            handle.seek(max(0, handle.tell() - 512 * 1024))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    kept: list[str] = []
    keeping = False
    for line in lines:
        if match := _STAMP.match(line):
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(match.group(2)) / 1000
            keeping = stamp >= since - 1.0
        if keeping:
            kept.append(line)
    if not kept:
        return None
    return "\n".join(kept[-max_lines:]) + "\n"


def server_logs(basetemp: Path, modified_since: float) -> list[Path]:
    """The logs of the backends a test may have talked to: every ``server.log`` under pytest's ``basetemp``
    that was written to since ``modified_since``, plus those of session backends (started in a
    ``tmp_path_factory.mktemp`` folder, directly under ``basetemp``) even when they logged nothing since.
    """
    found = []
    for path in sorted(basetemp.rglob("server.log")):
        try:
            recent = path.stat().st_mtime >= modified_since - 1.0
        except OSError:
            continue
        if recent or path.parent.parent == basetemp:
            found.append(path)
    return found
