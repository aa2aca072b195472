"""Watch one batch through the status endpoint and judge every state it was seen in."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from utilities.check.contract_checks import progression_problems, status_problems
from utilities.client.api import BatchApi
from utilities.client.recorders import PollingRecorder

POLL_S = 0.1


class StatusWatch:
    """Polls a batch every ``POLL_S`` on a background thread; ``problems()`` judges every observed state.

    A retry restarts the failed count, so ``failed`` may fall; nothing else may go back (contract_checks).
    """

    def __init__(self, api: BatchApi, batch_id: str) -> None:
        self.recorder = PollingRecorder(
            api.base_url, batch_id, token=api.token, interval_s=POLL_S, stop_on_terminal=False
        )

    def __enter__(self) -> StatusWatch:
        self.recorder.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.recorder.stop()

    def wait_for_status(self, *statuses: str, timeout: float = 10.0) -> None:
        """Until the watch itself has seen one of ``statuses`` (the caller may have seen it first)."""
        self.recorder.wait_for(lambda m: m.status in statuses, timeout)

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m.message for m in self.recorder.messages]

    def seen(self) -> list[str]:
        """The statuses in the order seen, repeats collapsed."""
        return [status for status, _ in itertools.groupby(s["status"] for s in self.states)]

    def problems(self) -> list[str]:
        found = list(self.recorder.errors)
        states = self.states
        for index, state in enumerate(states):
            found += status_problems(state, where=f"observation {index} ({state.get('status')})")
        for index, (earlier, later) in enumerate(itertools.pairwise(states), start=1):
            found += progression_problems(earlier, later, where=f"observation {index} ({later.get('status')})")
        return found


def wait_until_still(api: BatchApi, batch_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The JSON download's rows once none is running: rows in flight at a pause or cancel may still land."""
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(api.download(batch_id, "json"))["rows"]
        if not any(row["status"] == "running" for row in rows):
            return rows
        assert time.monotonic() < deadline, f"rows still running {timeout:.0f} s after the batch was stopped"
        time.sleep(0.05)  # the poll interval of this wait


def hold_still(api: BatchApi, batch_id: str, seconds: float = 1.0) -> list[dict[str, Any]]:
    """Every status seen over ``seconds`` (an observation window: the promise is that nothing moves in it)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(api.status(batch_id))
        time.sleep(POLL_S)  # the sampling interval of the observation window
    return seen
