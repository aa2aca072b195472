"""The results part of a batch page: downloads (CSV, JSON, ZIP), the preview table, retry of failed rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from .steps import step

FORMATS = ("csv", "json", "zip")


@dataclass(frozen=True)
class PreviewRow:
    """One row of the preview table as shown; ``marked`` is the highlight a failed row gets."""

    row_number: int
    prompt: str
    enhanced_prompt: str
    techniques: list[str]
    status: str
    error: str
    marked: bool


class ResultsDownloader:
    """Downloads land in ``save_dir`` under the name the server suggested."""

    def __init__(self, page: Page, save_dir: Path) -> None:
        self.page = page
        self.save_dir = Path(save_dir)
        self.links = {fmt: page.get_by_role("link", name=f"Download {fmt.upper()}") for fmt in FORMATS}
        self.retry_failed_button = page.get_by_role("button", name="Retry failed rows")
        self.preview = page.get_by_role("table", name=re.compile(r"^Preview"))

    @step("Download the results as {fmt}")
    def download(self, fmt: str) -> Path:
        """Click the download link of ``fmt`` and return where the file was saved."""
        with self.page.expect_download() as info:
            self.links[fmt].click()
        download = info.value
        self.save_dir.mkdir(parents=True, exist_ok=True)
        target = self.save_dir / f"{fmt}-{download.suggested_filename}"
        download.save_as(target)
        return target

    @step("Read the preview rows")
    def preview_rows(self, timeout: float = 30_000) -> list[PreviewRow]:
        """The rows of the preview table, once it is shown."""
        self.preview.wait_for(timeout=timeout)
        headers = [text.strip() for text in self.preview.locator("thead th").all_inner_texts()]
        records = self.preview.locator("tbody tr").evaluate_all(
            """(rows) => rows.map((row) => ({
                 cells: [...row.cells].map((cell) => cell.textContent),
                 marked: row.classList.contains("row-failed"),
               }))"""
        )
        rows = []
        for record in records:
            cells = dict(zip(headers, record["cells"], strict=True))
            techniques = cells["Techniques"].strip()
            rows.append(
                PreviewRow(
                    row_number=int(cells["Row"]),
                    prompt=cells["Prompt"],
                    enhanced_prompt=cells["Enhanced prompt"],
                    techniques=[t.strip() for t in techniques.split(",")] if techniques else [],
                    status=cells["Status"].strip(),
                    error=cells["Error"],
                    marked=record["marked"],
                )
            )
        return rows

    @step("Retry the failed rows")
    def retry_failed_rows(self) -> None:
        with self.page.expect_response(
            lambda response: response.request.method == "POST" and response.url.endswith("/retry")
        ):
            self.retry_failed_button.click()
