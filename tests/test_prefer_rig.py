"""``ddsp-gym prefer`` on the hardware backend, for real: the software rig's amsynth.

A simulated listener (a hidden favourite patch; it prefers the candidate nearer to it)
votes through the HTTP API for a few rounds; every candidate is a take recorded from
the rig's synth, a "play" is a new take, and the best patch comes back with the knob
values the synth was sent. Marked ``hardware``: ``make test`` starts the rig; run alone,
conftest's fixture starts it (and stops what it started).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import require

require("fastapi", "the prefer app needs the web extra: pip install 'ddsp_gym[web]'")

from fastapi.testclient import TestClient  # noqa: E402

from ddsp_gym.preference.app import create_app  # noqa: E402
from ddsp_gym.preference.candidates import Player, SoundSpec  # noqa: E402
from ddsp_gym.preference.session import SessionStore  # noqa: E402
from tests.prefer_server import chromium, require_browser, running  # noqa: E402

pytestmark = pytest.mark.hardware

ROUNDS = 5


class HiddenUtilityRater:
    """A listener with a favourite patch (unit positions): the nearer a candidate, the
    better; both are "bad" when both are farther than ``bad_distance``.

    A stand-in for ``ddsp_gym.preference.rater.SimulatedRater`` until that lands.
    """

    def __init__(self, n_knobs: int, seed: int = 0, bad_distance: float = 1.4) -> None:
        self.favourite = np.random.default_rng(seed).uniform(size=n_knobs)
        self.bad_distance = bad_distance

    def utility(self, unit) -> float:
        return -float(np.linalg.norm(np.asarray(unit) - self.favourite))

    def choose(self, a, b) -> str:
        ua, ub = self.utility(a), self.utility(b)
        if max(ua, ub) < -self.bad_distance:
            return "both_bad"
        return "a" if ua >= ub else "b"


@pytest.fixture(scope="module")
def hardware_player(rig_config, tmp_path_factory):
    from ddsp_gym.backends import rig

    rig.start_synth(rig_config, log=lambda *_: None)  # a test before may have killed it
    latency = tmp_path_factory.mktemp("hw") / "latency.json"
    options = {"latency_store": str(latency), "max_retries": 5}
    player = Player(SoundSpec("ddsp_gym/RealSynthPatch-v1", backend="hardware", options=options))
    yield player
    player.close()


def take_of(response) -> tuple[np.ndarray, int]:
    assert response.status_code == 200, response.text
    audio, rate = sf.read(io.BytesIO(response.content))
    return audio, rate


def test_votes_and_takes_on_the_rig(hardware_player, tmp_path):
    player = hardware_player
    root = tmp_path / "sessions"
    rater = HiddenUtilityRater(len(player.knobs), seed=1)
    shown = []
    with TestClient(create_app(SessionStore(root), player), base_url="http://127.0.0.1") as c:
        state = c.post("/api/sessions", json={}).json()
        sid = state["session"]
        assert state["backend"] == "hardware" and state["device"] is True
        for n in range(ROUNDS):
            pair = state["pair"]
            for side in ("a", "b"):
                audio, rate = take_of(c.get(pair[side]["audio"]))
                assert rate == player.sample_rate and np.isfinite(audio).all()
                assert np.abs(audio).max() > 1e-3, "a silent take"
                shown.append(pair[side]["unit"])
            # "Play" on a device is a new take heard in the room; its recording replaces
            # the cached one, and the report says what the synth was sent.
            played = c.post(f"/api/sessions/{sid}/play", json={"candidate": f"{pair['id']}-a"})
            report = played.json()
            assert report["played"] is True and report["take"]["attempts"] >= 1
            assert set(report["take"]["sent"]) == {k.name for k in player.knobs}
            choice = rater.choose(pair["a"]["unit"], pair["b"]["unit"])
            response = c.post(
                f"/api/sessions/{sid}/vote", json={"pair": pair["id"], "choice": choice}
            )
            assert response.status_code == 200, response.text
            state = response.json()
            assert state["votes"] == n + 1
        best = state["best"]
        audio, _ = take_of(c.get(best["audio"]))
        assert np.abs(audio).max() > 1e-3
        stale = c.post(f"/api/sessions/{sid}/vote", json={"pair": 0, "choice": "a"})
        assert stale.status_code == 409
    # Takes were recorded into the session folder, one per distinct candidate (the
    # incumbent comes back in later pairs; a replay replaces its file).
    wavs = list((root / sid / "audio").glob("*.wav"))
    assert len(wavs) == len({tuple(u) for u in shown} | {tuple(best["unit"])})
    # The best patch is within its knobs' ranges and the listener likes it at least as
    # well as the typical candidate it heard.
    for knob in state["knobs"]:
        assert knob["low"] <= best["knobs"][knob["name"]] <= knob["high"]
    utilities = [rater.utility(u) for u in shown]
    assert rater.utility(best["unit"]) >= np.median(utilities)


def test_the_page_plays_the_synth(hardware_player, tmp_path):
    """In chromium on the hardware backend: loading the page plays nothing (fetching a
    candidate would sound the synth); Play A makes a take and hands the page its
    recording; keys vote and undo."""
    require_browser()
    from playwright.sync_api import expect

    root = tmp_path / "sessions"
    app = create_app(SessionStore(root), hardware_player)
    with running(app) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        sid = page.url.rsplit("=", 1)[1]
        audio = root / sid / "audio"
        assert page.get_attribute("#audio-a", "src") is None
        assert not list(audio.glob("*.wav"))
        page.click("#play-a")
        page.wait_for_function(
            "() => (document.getElementById('audio-a').src || '').includes('-a.wav')",
            timeout=30_000,
        )
        assert len(list(audio.glob("*.wav"))) == 1  # the take, kept in the session
        body = page.locator("body")
        page.keyboard.press("k")
        expect(body).to_have_attribute("data-votes", "1", timeout=30_000)
        page.keyboard.press("u")
        expect(body).to_have_attribute("data-votes", "0", timeout=30_000)
        page.close()
