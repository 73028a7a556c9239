"""Browser tests: the real app served by uvicorn on a loopback port, driven by Debian's Chromium.

Each test gets a fresh, migrated SQLite file and a server with its worker running in-process.
Screenshots go to ``test-artifacts/screenshots`` (ignored by git).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from pintuan.app import create_app
from pintuan.bootstrap import build_services
from pintuan.kit.migrations import upgrade
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    upgrade(database_url)
    settings = make_settings(database_url, base_url=url, worker_idle_seconds=0.2)
    services = build_services(settings)
    app = create_app(settings, services, run_worker=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="e2e-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(url, services)
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
