"""Helpers of the prefer app's tests: a real uvicorn server on 127.0.0.1 and a free port,
and the headless chromium that Playwright drives (Debian's; never a downloaded one)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` in a thread; yields its base URL; stops it on exit."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


CHROMIUM = os.environ.get("DDSP_GYM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def require_browser() -> None:
    """Skip (under CI: fail) unless Playwright and the Debian chromium are here."""
    from tests.conftest import require

    require("playwright", "the browser test needs Playwright: pip install 'ddsp_gym[web]'")
    require(
        os.path.exists(CHROMIUM),
        f"the browser test needs chromium at {CHROMIUM}: apt-get install chromium (make test does)",
    )


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless chromium browser (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
