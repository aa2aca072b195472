"""Playwright page objects of the batch UI: locators by role, label or test id; methods say intent."""

from .batch_list_page import BatchListPage, BatchListRow
from .login_page import LoginPage
from .notification_bell import NotificationBell
from .notification_preferences_page import NotificationPreferencesPage
from .progress_tracker import ProgressSample, ProgressTracker
from .results_downloader import PreviewRow, ResultsDownloader
from .upload_page import BatchUploadPage

__all__ = [
    "BatchListPage",
    "BatchListRow",
    "BatchUploadPage",
    "LoginPage",
    "NotificationBell",
    "NotificationPreferencesPage",
    "PreviewRow",
    "ProgressSample",
    "ProgressTracker",
    "ResultsDownloader",
]
