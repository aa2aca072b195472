"""The login page: email and password, log in or create an account."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from .steps import step


class LoginPage:
    """Where an anonymous user is sent; after logging in it returns to the page asked for."""

    PATH = "/login"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="Log in")
        self.email = page.get_by_label("Email")
        self.password = page.get_by_label("Password")
        self.submit = page.get_by_role("button", name="Log in")
        self.create_account_button = page.get_by_role("button", name="Create account")
        self.error = page.get_by_role("alert")

    @step("Open the login page")
    def open(self) -> None:
        self.page.goto(self.PATH)

    @step("Log in as {email}")
    def log_in(self, email: str, password: str) -> None:
        self.email.fill(email)
        self.password.fill(password)
        self.submit.click()

    @step("Create an account for {email}")
    def create_account(self, email: str, password: str) -> None:
        self.email.fill(email)
        self.password.fill(password)
        self.create_account_button.click()

    def wait_until_left(self, timeout: float = 10_000) -> None:
        """Wait until the browser is on any page but the login page."""
        self.page.wait_for_url(re.compile(r"^(?!.*/login(\?|$))"), timeout=timeout)
