"""The fault switch: named, documented defects the reference backend can be told to have (``BATCHQA_FAULTS``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

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
            "before it is handled. For proving that a latency gate detects a slower API.",
            unit="ms",
        ),
        Fault(
            "slow_rows",
            "latency",
            "Each row costs VALUE ms more in the provider call (a chunk of n rows waits n x VALUE ms). For proving "
            "that a gate detects slower batch processing.",
            unit="ms",
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


class SlowRequests:
    """ASGI middleware for ``slow_requests``: each HTTP request under ``/api/`` waits before it is handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delay_ms = value("slow_requests")
        if delay_ms and scope["type"] == "http" and scope["path"].startswith("/api/"):
            await asyncio.sleep(delay_ms / 1000)
        await self.app(scope, receive, send)
