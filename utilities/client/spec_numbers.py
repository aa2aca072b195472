"""The numbers the US-003 specification and the contract promise, in one place for every check that holds a target
to them: the browser suite, the socket suites, the recorders, the qa summary."""

from __future__ import annotations

# "Progress every 2s": the page shows an update, and the progress socket sends a message, at least this often.
UPDATE_EVERY_S = 2.0
# "100 prompts process in <60s" (a success metric), measured from Start to completed through the UI.
HUNDRED_PROMPTS_BUDGET_S = 60.0
