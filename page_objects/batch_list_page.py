"""The list of a user's batches, several at once, refreshed while any is still going."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Page

from .steps import step


@dataclass(frozen=True)
class BatchListRow:
    name: str
    batch_id: str
    status: str
    percent: str
    processed: str
    failed: str


class BatchListPage:
    PATH = "/batches"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.table = page.get_by_role("table", name=re.compile(r"^Your batches"))
        self.summary = page.get_by_text(re.compile(r"still going\.$|^No batches yet"))
        self.error = page.get_by_role("alert")

    @step("Open the batch list")
    def open(self) -> None:
        self.page.goto(self.PATH)
        self.summary.wait_for()

    def rows(self) -> list[BatchListRow]:
        records = self.table.locator("tbody tr").evaluate_all(
            """(rows) => rows.map((row) => ({
                 cells: [...row.cells].map((cell) => cell.textContent.trim()),
                 href: row.querySelector("a") ? row.querySelector("a").getAttribute("href") : "",
               }))"""
        )
        return [
            BatchListRow(
                name=r["cells"][0],
                batch_id=r["href"].rsplit("/", 1)[-1],
                status=r["cells"][1].replace(" ", "_"),
                percent=r["cells"][2],
                processed=r["cells"][3],
                failed=r["cells"][4],
            )
            for r in records
        ]

    def wait_until_all_finished(self, timeout: float = 60_000) -> None:
        """Wait until the list says no batch is still going."""
        self.page.get_by_text(re.compile(r", 0 still going\.$")).wait_for(timeout=timeout)

    @step("Open batch {name} from the list")
    def open_batch(self, name: str) -> None:
        self.table.get_by_role("link", name=name).click()
