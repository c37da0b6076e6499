"""Browser fixtures: the real app under uvicorn (with its own strict CSP), Debian's Chromium via Playwright.

Every page gets a guard that fails the test on a console error, an uncaught exception or
any request that would leave 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.main import create_app
from app.settings import Settings
from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


@dataclass
class Server:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def start_server(settings: Settings) -> Server:
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return Server(f"http://127.0.0.1:{port}", server, thread)


def stop_server(server: Server) -> None:
    server.server.should_exit = True
    server.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(alexnet_weights: Path) -> Iterator[str]:
    """tiny and alexnet (random weights written by the test)."""
    s = start_server(Settings(models="tiny,alexnet", alexnet_weights=str(alexnet_weights), queue_size=8, rate_limit=0))
    yield s.url
    stop_server(s)


@pytest.fixture(scope="session")
def server_no_alexnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = tmp_path_factory.mktemp("none") / "missing.pth"
    s = start_server(Settings(models="tiny,alexnet", alexnet_weights=str(missing)))
    yield s.url
    stop_server(s)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Guard:
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.outside, f"requests left localhost: {self.outside}"
        assert not self.errors, f"console errors: {self.errors}"


def open_page(browser: Any, width: int = 1366, height: int = 768, **kwargs: Any) -> tuple[Any, Any, Guard]:
    context = browser.new_context(viewport={"width": width, "height": height}, reduced_motion="reduce", **kwargs)
    guard = Guard()

    def route(r: Any) -> None:
        if r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            guard.outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()

    def console(message: Any) -> None:
        if message.type == "error":
            guard.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: guard.errors.append(str(e)))
    return context, page, guard


@pytest.fixture
def page_factory(browser: Any) -> Iterator[Any]:
    opened: list[tuple[Any, Guard]] = []

    def make(width: int = 1366, height: int = 768, **kwargs: Any) -> tuple[Any, Guard]:
        context, page, guard = open_page(browser, width, height, **kwargs)
        opened.append((context, guard))
        return page, guard

    yield make
    for context, guard in opened:
        context.close()
        guard.check()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
