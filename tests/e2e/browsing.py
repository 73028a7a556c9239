"""What the browser tests do again and again: open a context, pay, wait, take screenshots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.factories import PASSWORD


class Shopper:
    """One person's browser: its own context (cookies, language) and page."""

    def __init__(
        self, browser: Browser, base_url: str, *, locale: str = "en-US", **options: Any
    ) -> None:
        self.base_url = base_url
        self.context: BrowserContext = browser.new_context(
            base_url=base_url,
            viewport=PHONE,
            locale=locale,
            timezone_id=options.pop("timezone_id", "Asia/Shanghai"),
            **options,
        )
        self.page: Page = self.context.new_page()
        self.policy_errors: list[str] = []
        self.page.on("console", self._watch_console)

    def _watch_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.policy_errors.append(message.text)

    def open(self, path: str) -> Page:
        self.page.goto(path)
        return self.page

    def sign_up(self, name: str, email: str, *, on_this_page: bool = False) -> None:
        """Fill in the sign-up form: on ``/signup``, or on the page the browser is on."""
        page = self.page if on_this_page else self.open("/signup")
        page.locator("#display_name").fill(name)
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("form[action='/signup'] button[type=submit]").click()
        page.wait_for_load_state()

    def log_in(self, email: str) -> None:
        """Log in on the log-in page the browser is on."""
        page = self.page
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("form[action='/login'] button[type=submit]").click()
        page.wait_for_load_state()

    def pay_on_sandbox(self) -> None:
        """On the sandbox's hosted page: pay, then come back to the shop."""
        page = self.page
        expect(page).to_have_url(_contains("/sandbox/checkout/"))
        page.get_by_role("button", name="Pay").click()
        page.get_by_role("link", name="Return to the shop").click()
        expect(page).to_have_url(_contains("/teams/"))

    def close(self) -> None:
        assert self.policy_errors == [], self.policy_errors
        self.context.close()


def _contains(fragment: str) -> Any:
    import re

    return re.compile(".*" + re.escape(fragment) + ".*")


def reload_until(page: Page, text: str, *, seconds: float = 20) -> None:
    """Reload until ``text`` shows: the worker changes things in its own time."""
    deadline = time.monotonic() + seconds
    while text not in page.content():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {page.url}")
        time.sleep(0.3)
        page.reload()


def screenshot(page: Page, name: str) -> None:
    """Save the page at phone and desktop widths, then go back to the phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("375", PHONE), ("1280", DESKTOP)):
        page.set_viewport_size(viewport)
        _capture(page, SCREENSHOTS / f"{name}-{label}.png")
    page.set_viewport_size(PHONE)


CAPTURE_ATTEMPTS = 3


def _capture(page: Page, path: Path) -> None:
    """A full-page screenshot. On a busy machine Chromium now and then has no frame to give
    right after the viewport changed ("Unable to capture screenshot"); it is asked again after
    the next frames, and any other error, or that one a third time, is raised."""
    for attempt in range(1, CAPTURE_ATTEMPTS + 1):
        try:
            page.screenshot(path=str(path), full_page=True)
            return
        except PlaywrightError as error:
            if "Unable to capture screenshot" not in str(error) or attempt == CAPTURE_ATTEMPTS:
                raise
            page.wait_for_timeout(250 * attempt)
