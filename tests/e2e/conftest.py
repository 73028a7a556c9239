"""Browser tests: the real app served by uvicorn on a loopback port, driven by Debian's Chromium.

Each test gets a fresh copy of a SQLite file migrated once per run, and a server with its worker
running in-process, in a thread of the test's own process, so that the test seeds its data
through the same services. ``pintuan.kit.serving`` starts and stops it, as it does the
concurrency tests' and the benchmarks' servers. Screenshots go to
``test-artifacts/screenshots`` (ignored by git).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.migrations import upgrade
from pintuan.kit.serving import free_port, start_in_thread
from pintuan.services import Services
from tests.conftest import make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SERVER_TIMEOUT_SECONDS = 20.0
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the browser tests: run scripts/browser-up.sh first")
    pytest.skip(
        "Debian's Chromium is not installed at /usr/bin/chromium (scripts/browser-up.sh "
        "installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Playwright, sync_playwright  # noqa: E402


@dataclass
class LiveServer:
    url: str
    services: Services


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database built by the migrations once per run; each test starts from a copy of it
    (migrating took seconds per test, copying takes milliseconds)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def copy_database(template: Path, to: Path) -> None:
    # SQLite's backup copies a consistent database, whatever its write-ahead log still holds.
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(to)) as target,
    ):
        source.backup(target)


@pytest.fixture
def live_server(tmp_path: Path, migrated_template: Path) -> Iterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    copy_database(migrated_template, tmp_path / "e2e.db")
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    settings = make_settings(database_url, base_url=url, worker_idle_seconds=0.2)
    services = build_services(settings)
    server = start_in_thread(create_app(settings, services, run_worker=True), port)
    try:
        server.wait_ready("/healthz", timeout=SERVER_TIMEOUT_SECONDS)
        yield LiveServer(url, services)
    finally:
        server.stop(timeout=SERVER_TIMEOUT_SECONDS)


# Package scope, not session: Playwright's synchronous API keeps its event loop marked as running
# on this thread while it lives, so the tests after the browser ones could not start their own.
@pytest.fixture(scope="package")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
