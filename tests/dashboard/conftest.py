"""A real uvicorn server over the demo corpus in PostgreSQL, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def say(request: pytest.FixtureRequest, line: str) -> None:
    """Write a line to the terminal even while output is captured."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A uvicorn server in a thread, stopped by ``close()``."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def demo(postgresql_url: str) -> Iterator[dict[str, Any]]:
    """The demo corpus in a fresh PostgreSQL schema, served by the real app on a loopback port."""
    from sqlmodel import Session

    from api.app import create_app
    from core import settings as settings_mod
    from core.db import get_engine
    from tests.conftest import _truncate
    from tests.dashboard.seed import load_demo

    _truncate(postgresql_url)
    mp = pytest.MonkeyPatch()
    mp.setenv("UNDERTOW_DATABASE_URL", postgresql_url)
    settings_mod.get_settings.cache_clear()
    settings = settings_mod.get_settings()
    with Session(get_engine(settings), expire_on_commit=False) as session:
        info = load_demo(session)
    served = Served(create_app(settings))
    try:
        yield {**info, "url": served.url, "settings": settings}
    finally:
        served.close()
        mp.undo()
        settings_mod.get_settings.cache_clear()


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Debian's chromium (never a Playwright download), its version written to the test output."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        say(request, f"browser: chromium {b.version} ({CHROMIUM})")
        try:
            yield b
        finally:
            b.close()


def sign_in(browser: Any, demo: dict[str, Any], scope: str, **context: Any) -> Any:
    """A new browser context signed in with a key of ``scope``; returns its page."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = ctx.new_page()
    page.goto(demo["url"] + "/ui/")
    assert "/ui/login" in page.url
    page.fill("input[name=key]", demo["keys"][scope])
    page.click("form[action='/ui/login'] button[type=submit]")
    page.wait_for_url(demo["url"] + "/ui/")
    return page
