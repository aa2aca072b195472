"""The fault switch: named, documented defects the reference backend can be told to have (``BATCHQA_FAULTS``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV_VAR = "BATCHQA_FAULTS"


@dataclass(frozen=True)
class Fault:
    """One entry of the catalogue: ``doc`` says what breaks and which promise of the contract it breaks.

    ``unit`` is set for faults that take a value (``name=VALUE``, a non-negative integer in that unit) and
    empty for plain on/off faults.
    """

    name: str
    promise: str
    doc: str
    unit: str = ""

    @property
    def takes_value(self) -> bool:
        return bool(self.unit)


CATALOGUE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "slow_requests",
            "latency",
            "Every HTTP request under /api/ waits VALUE ms (a real asyncio sleep, so the event loop stays free) "
            "before it is handled (/healthz, pages and static files are not delayed). For proving that a latency gate "
            "detects a slower API.",
            unit="ms",
        ),
        Fault(
            "slow_rows",
            "latency",
            "Each row costs VALUE ms more in the provider call (a chunk of n rows waits n x VALUE ms). For proving "
            "that a gate detects slower batch processing.",
            unit="ms",
        ),
        Fault(
            "drop_first_row",
            "results",
            "The first prompt of every upload is lost when the batch is created: the batch holds n-1 rows, "
            "its total says n-1, and the download starts with the second prompt.",
        ),
        Fault(
            "swap_rows",
            "order",
            "Downloads (CSV, JSON and the ZIP's files) give input rows 1 and 2 in each other's place.",
        ),
        Fault(
            "drop_field",
            "fields",
            "Downloads give the last original column of every row as an empty value, in every format.",
        ),
        Fault(
            "hide_errors",
            "error marking",
            "Downloads report failed rows as succeeded and drop their error text.",
        ),
        Fault(
            "wrong_percent",
            "counts",
            "The status body's percent uses integer division (1 of 3 processed says 33.0, not 33.3).",
        ),
        Fault(
            "miscount",
            "counts",
            "The status body's processed counts succeeded rows only, so processed != succeeded + failed once a "
            "row fails.",
        ),
        Fault(
            "complete_early",
            "completion",
            "A batch is marked completed while its last row is still pending or running.",
        ),
        Fault(
            "limit_off_by_one",
            "limits",
            "The prompt limit is checked one too high: an upload of max_prompts + 1 prompts (1001) is accepted.",
        ),
        Fault(
            "skip_type_sniffing",
            "hostile input",
            "Uploads are not checked for binary content under a text extension: a PNG, PDF or HTML page named "
            ".csv/.txt is parsed as text instead of being refused with 415.",
        ),
        Fault(
            "leak_batches",
            "isolation",
            "Any signed-in user reaches any batch by its id: status, actions, downloads and the progress socket "
            "stop checking the owner.",
        ),
        Fault(
            "no_csv_neutralise",
            "neutralisation",
            "CSV downloads keep cells starting with =, +, -, @, tab or CR as they are (formula injection).",
        ),
        Fault(
            "mangle_unicode",
            "encoding",
            "Downloads encode non-ASCII text twice (UTF-8 read back as Latin-1): 'café' comes back as 'cafÃ©'.",
        ),
        Fault(
            "bad_manifest_checksum",
            "manifest",
            "The ZIP manifest's SHA-256 of each file leaves out the file's first chunk, so it never matches.",
        ),
        Fault(
            "ignore_pause",
            "pause",
            "Pause answers 200 but changes nothing: the batch keeps running and the body says so.",
        ),
        Fault(
            "ignore_cancel",
            "cancel",
            "Cancel answers 200 but changes nothing: the pending rows still run and the batch completes.",
        ),
        Fault(
            "retry_all_rows",
            "retry",
            "Retry re-runs the succeeded rows too, not only the failed ones (their attempts go up).",
        ),
        Fault(
            "replay_skips_event",
            "replay",
            "A progress socket opened with last_seq=N replays from N+2: the first event after N is never sent.",
        ),
        Fault(
            "no_heartbeat_when_paused",
            "heartbeat",
            "Progress sockets send no heartbeat while the batch is paused: the socket falls silent.",
        ),
        Fault(
            "origin_check_off",
            "origin",
            "Progress sockets accept any Origin header (cross-site WebSocket hijacking).",
        ),
        Fault(
            "ui_frozen_progress",
            "UI",
            "The batch page draws the progress bar once and never moves it (the numbers below it still update).",
        ),
        Fault(
            "ui_wrong_download",
            "UI",
            "The batch page's Download CSV button downloads the JSON export.",
        ),
        Fault(
            "no_security_headers",
            "security headers",
            "Responses go out without Content-Security-Policy, X-Content-Type-Options, X-Frame-Options, "
            "Referrer-Policy and the other security headers.",
        ),
        Fault(
            "no_login_throttle",
            "login throttling",
            "Failed logins are never throttled: any number of wrong passwords in a row are answered 401, none 429.",
        ),
        Fault(
            "logout_keeps_token",
            "logout",
            "Logout only clears the cookie in the browser: a copied bearer token or cookie keeps working.",
        ),
        Fault(
            "log_tokens",
            "token logging",
            "Tokens in logged URLs (the progress socket's ?token=) are written to the server log as they are.",
        ),
    )
}


class FaultError(ValueError):
    """The fault list names an unknown fault or gives a fault a value it cannot take."""


@dataclass(frozen=True)
class ActiveFaults:
    """The parsed switch: fault name to its value (``None`` for on/off faults). Empty means a correct backend."""

    values: Mapping[str, int | None]

    def on(self, name: str) -> bool:
        _known(name)
        return name in self.values

    def value(self, name: str, default: int = 0) -> int:
        """The value of a valued fault, or ``default`` when it is off."""
        _known(name)
        value = self.values.get(name)
        return default if value is None else value

    def describe(self) -> list[str]:
        """``["slow_requests=50", "drop_first_row"]``: the form ``/healthz`` lists and the start-up log names."""
        return [name if value is None else f"{name}={value}" for name, value in sorted(self.values.items())]


NONE = ActiveFaults({})


def _known(name: str) -> Fault:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(CATALOGUE))}") from None


def parse_faults(text: str | Iterable[str] | None) -> ActiveFaults:
    """``"slow_requests=50, drop_first_row"`` (or a list of such items) to :class:`ActiveFaults`.

    Raises :class:`FaultError` naming the offending item; an empty or blank text means no fault.
    """
    if text is None:
        return NONE
    items = text.split(",") if isinstance(text, str) else list(text)
    values: dict[str, int | None] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name, sep, raw_value = (part.strip() for part in item.partition("="))
        fault = _known(name)
        if name in values:
            raise FaultError(f"fault {name!r} is given twice in {ENV_VAR}")
        if not fault.takes_value:
            if sep:
                raise FaultError(f"fault {name!r} takes no value; write it as {name!r}, not {item!r}")
            values[name] = None
            continue
        if not sep or not raw_value:
            raise FaultError(f"fault {name!r} needs a value in {fault.unit}, e.g. '{name}=50'")
        if not raw_value.isdigit():
            raise FaultError(f"fault {name!r} needs a non-negative whole number of {fault.unit}, not {raw_value!r}")
        values[name] = int(raw_value)
    return ActiveFaults(values)


_active: ActiveFaults = NONE


def install(faults: ActiveFaults) -> None:
    """Make ``faults`` the ones this process has; the code paths read them through :func:`on` and :func:`value`.

    One process runs one backend, so the switch is process-wide: hooks deep in ingest or export code read it
    without every call site passing settings along.
    """
    global _active
    _active = faults
    if faults.values:
        log.warning("FAULTS ON: this backend breaks its contract on purpose: %s", ", ".join(faults.describe()))


def active() -> ActiveFaults:
    return _active


def on(name: str) -> bool:
    """Whether the named fault is switched on in this process."""
    return _active.on(name)


def value(name: str, default: int = 0) -> int:
    """The value of the named valued fault in this process, or ``default`` when it is off."""
    return _active.value(name, default)
