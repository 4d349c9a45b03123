"""The prefer page in a real headless browser: Playwright drives Debian's chromium.

Load, play audio, vote with the mouse and the keyboard, undo, reload and resume, a second
tab voting first; the page must fetch nothing but this server. ``make test`` installs
chromium (Debian package, never ``playwright install``); without it this module skips,
except under CI, where it fails. ``DDSP_GYM_UPDATE_DOCS=1`` writes the screenshot to
docs/prefer.png (otherwise to the test's scratch folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import require
from tests.prefer_server import require_browser

require_browser()
require("fastapi", "the prefer app needs FastAPI: pip install 'ddsp_gym[web]'")

from playwright.sync_api import expect  # noqa: E402

from ddsp_gym.preference.app import create_app  # noqa: E402
from ddsp_gym.preference.candidates import Player, SoundSpec  # noqa: E402
from ddsp_gym.preference.session import SessionStore  # noqa: E402
from tests.prefer_server import chromium, running  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    player = Player(SoundSpec("ddsp_gym/RealSynthPatch-v1"))
    root = tmp_path_factory.mktemp("prefer") / "sessions"
    with running(create_app(SessionStore(root), player)) as url:
        yield url, root
    player.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def ready(page) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)


def votes(page) -> int:
    return int(page.locator("body").get_attribute("data-votes"))


def wait_votes(page, n: int) -> None:
    expect(page.locator("body")).to_have_attribute("data-votes", str(n), timeout=30_000)


def wait_played(page, side: str) -> None:
    """The audio element really played: its clock moved (or it ran to the end)."""
    page.wait_for_function(
        f"() => {{ const a = document.getElementById('audio-{side}');"
        " return a.played.length > 0 && (a.currentTime > 0 || a.ended); }",
        timeout=30_000,
    )


def test_page_in_chromium(server, browser, tmp_path):
    url, root = server
    page = browser.new_page(viewport={"width": 820, "height": 1000})
    requested, problems = [], []
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: problems.append(str(e)))
    # The refused vote below logs "Failed to load resource" (a 409): expected, not a bug.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )

    page.goto(url + "/")
    ready(page)
    assert "?session=" in page.url  # a new session, its id in the address for reloads
    sid = page.url.rsplit("=", 1)[1]
    assert (root / sid / "session.json").exists()
    expect(page.locator("#knobs tbody tr")).to_have_count(6)
    expect(page.locator(".keys")).to_contain_text("both bad")

    # Play: mouse on A, keyboard on B.
    page.click("#play-a")
    wait_played(page, "a")
    page.keyboard.press("2")
    wait_played(page, "b")

    # Vote with the mouse, then with the keyboard (arrows, j/k, x).
    page.click("#vote-a")
    wait_votes(page, 1)
    for n, key in enumerate(["ArrowRight", "x", "j", "k", "ArrowLeft"], start=2):
        page.keyboard.press(key)
        wait_votes(page, n)
    outcomes = [r["outcome"] for r in _log(root, sid) if r["type"] == "vote"]
    assert outcomes == ["a", "b", "both_bad", "a", "b", "a"]

    # Undo by key u, by Ctrl+Z and by the button.
    page.keyboard.press("u")
    wait_votes(page, 5)
    page.keyboard.press("Control+z")
    wait_votes(page, 4)
    page.click("#undo")
    wait_votes(page, 3)
    page.keyboard.press("k")
    wait_votes(page, 4)
    expect(page.locator("#votes")).to_have_text("4")
    expect(page.locator("#plot polyline")).to_have_count(6)

    # Reload: the same session, votes and pair.
    pair = page.locator("body").get_attribute("data-pair")
    best = page.locator("#knobs tbody").inner_text()
    page.reload()
    ready(page)
    assert page.url.endswith(f"?session={sid}")
    assert votes(page) == 4 and page.locator("body").get_attribute("data-pair") == pair
    assert page.locator("#knobs tbody").inner_text() == best

    page.wait_for_function(
        "() => ['a', 'b'].every(s => document.getElementById('audio-' + s).readyState >= 1)"
    )
    shot = tmp_path / "prefer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size < 400_000
    if os.environ.get("DDSP_GYM_UPDATE_DOCS"):
        shutil.copy(shot, ROOT / "docs" / "prefer.png")

    # A second tab votes first: the first tab's vote is refused (409), it says so and
    # catches up; nothing was counted twice.
    other = browser.new_page()
    other.goto(page.url)
    ready(other)
    other.click("#vote-b")
    wait_votes(other, 5)
    page.click("#vote-a")
    expect(page.locator("#status")).to_contain_text("another tab voted first")
    wait_votes(page, 5)
    assert page.locator("body").get_attribute("data-pair") == other.locator("body").get_attribute(
        "data-pair"
    )
    other.close()
    assert len([r for r in _log(root, sid) if r["type"] == "vote"]) == 8  # 6 + 2 after undos

    page.close()

    # Offline and private: every request went to this server.
    assert requested and all(u.startswith(url + "/") for u in requested), requested
    assert problems == []


def test_unknown_session_says_so(server, browser):
    url, _ = server
    page = browser.new_page()
    page.goto(url + "/?session=0123456789abcdef")
    expect(page.locator("#status")).to_contain_text("no session")
    page.close()


def _log(root: Path, sid: str) -> list[dict]:
    import json

    path = root / sid / "votes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
