"""The upload page: one prompt file through the picker or drag-and-drop, or pasted prompts."""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

from playwright.sync_api import Page

from .steps import step

BATCH_URL = re.compile(r"/batches/(?!new\b)([^/?#]+)$")

# Build the DataTransfer a real drop carries (Playwright has no file drag from the OS).
_DATA_TRANSFER = """(files) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, { type: file.type }));
  }
  return transfer;
}"""


class BatchUploadPage:
    """The page where a user hands over a file or pasted prompts."""

    PATH = "/batches/new"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="New batch")
        self.drop_zone = page.get_by_test_id("drop-zone")
        self.choose_file_button = page.get_by_role("button", name="Choose file")
        self.file_input = page.get_by_label("Prompt file", exact=True)
        self.selected_file = page.get_by_text(re.compile(r"^Selected: "))
        self.paste_box = page.get_by_label("Paste prompts", exact=True)
        self.start = page.get_by_role("button", name="Start batch")
        self.retry_upload = page.get_by_role("button", name="Retry upload")
        self.error = page.get_by_role("alert")

    @step("Open the upload page")
    def open(self) -> None:
        self.page.goto(self.PATH)
        self.heading.wait_for()

    @step("Choose {paths} with the file picker")
    def choose_files(self, *paths: Path) -> None:
        with self.page.expect_file_chooser() as chooser:
            self.choose_file_button.click()
        chooser.value.set_files(list(paths))

    @step("Drop {paths} on the drop zone")
    def drop_files(self, *paths: Path) -> None:
        files = [
            {
                "name": path.name,
                "type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                "data": base64.b64encode(path.read_bytes()).decode("ascii"),
            }
            for path in paths
        ]
        transfer = self.page.evaluate_handle(_DATA_TRANSFER, files)
        try:
            for event in ("dragenter", "dragover", "drop"):
                self.drop_zone.dispatch_event(event, {"dataTransfer": transfer})
        finally:
            transfer.dispose()

    @step("Paste prompts into the paste box by typing")
    def fill_paste_box(self, text: str) -> None:
        self.paste_box.fill(text)

    @step("Paste prompts from the clipboard")
    def paste_from_clipboard(self, text: str) -> None:
        """A real Ctrl+V: needs the context's clipboard permissions."""
        self.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        self.page.evaluate("(text) => navigator.clipboard.writeText(text)", text)
        self.paste_box.click()
        self.page.keyboard.press("ControlOrMeta+V")

    @step("Start the batch")
    def start_batch(self) -> None:
        self.start.click()

    @step("Upload {path} with the file picker")
    def upload_via_file_picker(self, path: Path) -> None:
        self.choose_files(path)
        self.start_batch()

    @step("Upload {path} by drag and drop")
    def upload_via_drag_drop(self, path: Path) -> None:
        self.drop_files(path)
        self.start_batch()

    @step("Upload pasted prompts")
    def upload_via_paste(self, text: str) -> None:
        self.fill_paste_box(text)
        self.start_batch()

    @step("Upload prompts pasted from the clipboard")
    def upload_via_clipboard(self, text: str) -> None:
        self.paste_from_clipboard(text)
        self.start_batch()

    @step("Retry the upload")
    def retry(self) -> None:
        self.retry_upload.click()

    @step("Wait until the batch has started")
    def wait_until_started(self, timeout: float = 30_000) -> str:
        """Wait for the batch page the upload leads to; returns the batch id."""
        self.page.wait_for_url(BATCH_URL, timeout=timeout)
        match = BATCH_URL.search(self.page.url)
        if match is None:  # cannot happen: wait_for_url matched the same pattern
            raise RuntimeError(f"not on a batch page: {self.page.url}")
        return match.group(1)
