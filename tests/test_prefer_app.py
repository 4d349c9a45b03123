"""``ddsp-gym prefer``'s API and session store: votes, undo, replays, bad requests, crashes.

One sim player (SineTuner-v1: one knob, quick to compile) serves every test; each test
gets its own sessions root in a scratch folder.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import require

require("fastapi", "the prefer app needs the web extra: pip install 'ddsp_gym[web]'")

from fastapi.testclient import TestClient  # noqa: E402

from ddsp_gym.cli import main  # noqa: E402
from ddsp_gym.preference.app import create_app  # noqa: E402
from ddsp_gym.preference.candidates import Player, SoundSpec  # noqa: E402
from ddsp_gym.preference.commands import parse_options  # noqa: E402
from ddsp_gym.preference.search import PreferenceSearch, Vote  # noqa: E402
from ddsp_gym.preference.session import (  # noqa: E402
    SessionStore,
    StaleVoteError,
    parse_log,
)
from tests.prefer_server import free_port, running  # noqa: E402

ENV_ID = "ddsp_gym/SineTuner-v1"


@pytest.fixture(scope="module")
def player():
    p = Player(SoundSpec(ENV_ID))
    yield p
    p.close()


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def client(player, root):
    with TestClient(create_app(SessionStore(root), player), base_url="http://127.0.0.1") as c:
        yield c


def new_session(client) -> dict:
    response = client.post("/api/sessions", json={})
    assert response.status_code == 201, response.text
    return response.json()


def log_lines(root: Path, sid: str) -> list[dict]:
    return [json.loads(line) for line in (root / sid / "votes.jsonl").read_text().splitlines()]


def vote(client, sid: str, pair: int, choice: str = "a") -> httpx.Response:
    return client.post(f"/api/sessions/{sid}/vote", json={"pair": pair, "choice": choice})


def test_create_vote_and_state(client, root, player):
    state = new_session(client)
    sid = state["session"]
    saved = json.loads((root / sid / "session.json").read_text())
    assert saved["env_id"] == ENV_ID and saved["backend"] == "sim"
    assert [k["name"] for k in saved["knobs"]] == ["frequency"]
    assert state["votes"] == 0 and state["pair"]["id"] == 0 and state["history"] == []
    # The pair is the search's, a pure function of (seed, votes).
    a, b = PreferenceSearch(1, seed=0).next_pair([])
    assert state["pair"]["a"]["unit"] == pytest.approx(list(a))
    assert state["pair"]["b"]["unit"] == pytest.approx(list(b))
    # Physical values follow the knob's log law (110-1760 Hz).
    u = state["pair"]["a"]["unit"][0]
    assert state["pair"]["a"]["knobs"]["frequency"] == pytest.approx(110 * 16**u)

    after = vote(client, sid, 0, "b").json()
    assert after["votes"] == 1 and after["pair"]["id"] == 1
    assert after["counts"] == {"a": 0, "b": 1, "both_bad": 0}
    expected_best = PreferenceSearch(1).best([Vote(tuple(a), tuple(b), "b")])
    assert after["best"]["unit"] == pytest.approx(list(expected_best))
    assert after["history"][0]["outcome"] == "b"
    (record,) = log_lines(root, sid)
    assert record["seq"] == 0 and record["pair"] == 0 and record["outcome"] == "b"
    assert client.get(f"/api/sessions/{sid}").json()["pair"] == after["pair"]


def test_replayed_vote_is_409_and_changes_nothing(client, root):
    sid = new_session(client)["session"]
    assert vote(client, sid, 0).status_code == 200
    before = (root / sid / "votes.jsonl").read_bytes()
    for pair in (0, 5, 10**6):
        response = vote(client, sid, pair)
        assert response.status_code == 409
        assert "current pair is 1" in response.json()["detail"]
    assert (root / sid / "votes.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "body",
    [
        {"pair": 0},
        {"choice": "a"},
        {"pair": 0, "choice": "c"},
        {"pair": "0", "choice": "a"},  # no coercion of strings to ints
        {"pair": -1, "choice": "a"},
        {"pair": 0.5, "choice": "a"},
        {"pair": 0, "choice": "a", "extra": 1},
        [0, "a"],
    ],
)
def test_malformed_votes_are_422(client, root, body):
    sid = new_session(client)["session"]
    response = client.post(f"/api/sessions/{sid}/vote", json=body)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()
    assert not (root / sid / "votes.jsonl").exists()


def test_non_json_and_cross_site_posts_are_refused(client, root):
    sid = new_session(client)["session"]
    url = f"/api/sessions/{sid}/vote"
    text = client.post(
        url, content='{"pair": 0, "choice": "a"}', headers={"content-type": "text/plain"}
    )
    assert text.status_code == 415
    bad_json = client.post(url, content="{pair: 0", headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    cross = client.post(
        url, json={"pair": 0, "choice": "a"}, headers={"origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    # A DNS-rebinding page reaches us under its own host name.
    rebound = client.get(f"/api/sessions/{sid}", headers={"host": "evil.example"})
    assert rebound.status_code == 400
    assert not (root / sid / "votes.jsonl").exists()
    huge = client.post(
        url, content=b"{" + b" " * 10_000 + b"}", headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413

    def chunks():
        yield b'{"pair": 0, "choice": "a"}'

    chunked = client.post(url, content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    same = client.post(url, json={"pair": 0, "choice": "a"}, headers={"origin": "http://127.0.0.1"})
    assert same.status_code == 200


def test_unknown_sessions_and_paths_are_404(client, root, tmp_path):
    new_session(client)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the web")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for sid in (
        "0123456789abcdef",
        "nope",
        "..",
        "%2e%2e",
        "..%2F..%2Fsecret.txt",
        "0123456789ABCDEF",
        "0123456789abcdef0",
    ):
        assert client.get(f"/api/sessions/{sid}").status_code == 404, sid
        assert vote(client, sid, 0).status_code == 404, sid
        undo = client.post(f"/api/sessions/{sid}/undo", json={"pair": 0})
        assert undo.status_code == 404, sid
    sid = new_session(client)["session"]
    for candidate in (
        "..%2F..%2Fsecret",
        "..%2Fsession",
        "0-c",
        "a-0",
        "best.json",
        "1-a",
        "%2e%2e",
    ):
        response = client.get(f"/api/sessions/{sid}/audio/{candidate}.wav")
        assert response.status_code == 404, candidate
        assert b"not for the web" not in response.content
    for path in (
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2Fsession.py",
        "/../secret.txt",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # Only the second session's folder appeared; nothing outside the root.
    assert {p for p in after if p not in before} <= {
        Path("sessions") / sid,
        Path("sessions") / sid / "audio",
        Path("sessions") / sid / "session.json",
        Path("sessions") / sid / ".lock",
    }


def test_audio_of_candidates(client, root, player):
    state = new_session(client)
    sid = state["session"]
    response = client.get(state["pair"]["a"]["audio"])
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(response.content))
    assert rate == player.sample_rate and len(audio) > 1000
    assert 0.01 < np.abs(audio).max() <= 1.0
    # The tone is the candidate's frequency: the spectrum peaks there.
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * rate / len(audio)
    assert peak_hz == pytest.approx(state["pair"]["a"]["knobs"]["frequency"], rel=0.02)
    assert len(list((root / sid / "audio").glob("*.wav"))) == 1
    assert client.get(state["pair"]["a"]["audio"]).content == response.content  # cached
    after = vote(client, sid, 0, "a").json()
    # A past pair stays playable; a pair never shown is not.
    assert client.get(f"/api/sessions/{sid}/audio/0-b.wav").status_code == 200
    assert client.get(f"/api/sessions/{sid}/audio/{after['pair']['id']}-b.wav").status_code == 200
    assert client.get(f"/api/sessions/{sid}/audio/7-a.wav").status_code == 404
    best = client.get(after["best"]["audio"])
    assert best.status_code == 200
    # Sim: the page plays the WAV; nothing plays on the server.
    played = client.post(f"/api/sessions/{sid}/play", json={"candidate": "0-a"})
    assert played.json() == {"played": False, "candidate": "0-a"}


def test_undo_and_replayed_undo(client, root):
    sid = new_session(client)["session"]
    first = vote(client, sid, 0, "a").json()
    second = vote(client, sid, 1, "both_bad").json()
    assert second["votes"] == 2
    undone = client.post(f"/api/sessions/{sid}/undo", json={"pair": 2}).json()
    assert undone["votes"] == 1 and undone["pair"]["id"] == 3
    # Back to the pair that followed the first vote, under a new id.
    for side in ("a", "b"):
        assert undone["pair"][side]["unit"] == first["pair"][side]["unit"]
    assert undone["history"] == first["history"]
    replay = client.post(f"/api/sessions/{sid}/undo", json={"pair": 2})
    assert replay.status_code == 409
    assert client.post(f"/api/sessions/{sid}/undo", json={"pair": 3}).json()["votes"] == 0
    nothing = client.post(f"/api/sessions/{sid}/undo", json={"pair": 4})
    assert nothing.status_code == 409 and "no vote" in nothing.json()["detail"]
    kinds = [r["type"] for r in log_lines(root, sid)]
    assert kinds == ["vote", "vote", "undo", "undo"]


def test_resume_after_restart(player, root):
    with TestClient(create_app(SessionStore(root), player), base_url="http://127.0.0.1") as c:
        sid = new_session(c)["session"]
        for pair, choice in enumerate(["a", "b", "both_bad", "a"]):
            assert vote(c, sid, pair, choice).status_code == 200
        before = c.get(f"/api/sessions/{sid}").json()
    # A new store and app over the same folder: what a restarted server sees.
    with TestClient(create_app(SessionStore(root), player), base_url="http://127.0.0.1") as c:
        after = c.get(f"/api/sessions/{sid}").json()
    assert after == before and after["votes"] == 4


def test_crash_mid_append_loads_what_is_complete(client, root):
    sid = new_session(client)["session"]
    for pair in range(3):
        vote(client, sid, pair, "a")
    path = root / sid / "votes.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole[:-25])  # the last record half-written, as a crash leaves it
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["votes"] == 2 and state["pair"]["id"] == 2
    assert "dropped an incomplete last record" in state["recovered"]
    assert "2 complete records kept" in state["recovered"]
    # The next vote cuts the torn line off first: the log is whole again.
    assert vote(client, sid, 2, "b").status_code == 200
    records, size, dropped = parse_log(path.read_bytes())
    assert dropped is None and size == path.stat().st_size
    assert [r["seq"] for r in records] == [0, 1, 2] and records[2]["outcome"] == "b"


def test_damage_before_the_last_line_is_refused(client, root):
    sid = new_session(client)["session"]
    for pair in range(3):
        vote(client, sid, pair, "a")
    path = root / sid / "votes.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0][:10]
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    response = client.get(f"/api/sessions/{sid}")
    assert response.status_code == 500 and "line 1 is damaged" in response.json()["detail"]
    assert vote(client, sid, 3).status_code == 500
    assert path.read_bytes() == damaged  # nothing written over the evidence


def test_session_for_another_sound_is_409(client, root, player):
    sid = new_session(client)["session"]
    data = json.loads((root / sid / "session.json").read_text())
    data["env_id"] = "ddsp_gym/CutoffSweeper-v1"
    (root / sid / "session.json").write_text(json.dumps(data))
    with TestClient(create_app(SessionStore(root), player), base_url="http://127.0.0.1") as c:
        response = c.get(f"/api/sessions/{sid}")
    assert response.status_code == 409 and f"--session {sid}" in response.json()["detail"]


def test_concurrent_tabs_keep_one_consistent_log(player, root):
    """Eight tabs vote as fast as they can over HTTP, two servers' stores share the folder:
    every accepted vote is in the log once, in sequence, and each answers the pair shown."""
    stores = [SessionStore(root), SessionStore(root)]  # separate in-process locks: fcntl decides
    apps = [create_app(s, player) for s in stores]
    with running(apps[0]) as url0, running(apps[1]) as url1:
        sid = httpx.post(f"{url0}/api/sessions", json={}).json()["session"]
        accepted, refused, errors = [], [], []

        def tab(i: int) -> None:
            url = (url0, url1)[i % 2]
            with httpx.Client(base_url=url, timeout=30) as http:
                for _ in range(6):
                    pair = http.get(f"/api/sessions/{sid}").json()["pair"]["id"]
                    choice = ("a", "b", "both_bad")[i % 3]
                    r = http.post(
                        f"/api/sessions/{sid}/vote", json={"pair": pair, "choice": choice}
                    )
                    if r.status_code == 200:
                        accepted.append((pair, choice))
                    elif r.status_code == 409:
                        refused.append(pair)
                    else:
                        errors.append(r.text)

        threads = [threading.Thread(target=tab, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = httpx.get(f"{url1}/api/sessions/{sid}").json()
    assert errors == []
    assert len(accepted) + len(refused) == 48 and refused  # the tabs did collide
    records = log_lines(root, sid)
    assert [r["seq"] for r in records] == list(range(len(accepted)))
    assert all(r["pair"] == r["seq"] for r in records)
    assert sorted(accepted) == sorted((r["pair"], r["outcome"]) for r in records)
    assert final["votes"] == len(accepted)
    # Each vote compared the pair the search proposes after the votes before it.
    search, votes = PreferenceSearch(1), []
    for r in records:
        a, b = search.next_pair(votes)
        assert r["a"] == list(a) and r["b"] == list(b)
        votes.append(Vote(tuple(r["a"]), tuple(r["b"]), r["outcome"]))


def test_store_refuses_stale_votes_directly(player, root):
    store = SessionStore(root)
    session = store.create(player.spec.config(player.knobs, seed=3))
    state = session.vote(0, "a")
    with pytest.raises(StaleVoteError):
        session.vote(0, "a")
    assert session.state() == state and session.config.seed == 3


def test_parse_options():
    assert parse_options(["latency=12", "midi_out=amsynth:midi_in", "takes_per_query=2"]) == {
        "latency": 12,
        "midi_out": "amsynth:midi_in",
        "takes_per_query": 2,
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["latency"])


def test_cli_errors(capsys, tmp_path):
    assert main(["prefer", "--root", str(tmp_path)]) == 2
    assert "--env ID or --plant NAME" in capsys.readouterr().err
    assert main(["prefer", "--env", "ddsp_gym/Nope-v1", "--root", str(tmp_path)]) == 2
    assert "unknown env id" in capsys.readouterr().err
    assert main(["prefer", "--env", ENV_ID, "--session", "../x", "--root", str(tmp_path)]) == 2
    assert "no session" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serves_and_stops_on_ctrl_c(tmp_path):
    """The command prints the URL, serves the page and the session, and exits 0 on
    SIGINT; started again with --session it resumes the same votes."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "ddsp_gym.cli",
        "prefer",
        "--env",
        ENV_ID,
        "--port",
        str(port),
        "--root",
        str(tmp_path),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def serve(extra: list[str]) -> tuple[str, str]:
        proc = subprocess.Popen(
            command + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            url = None
            for line in proc.stdout:
                if line.startswith("prefer: open "):
                    url = line.split()[2]
                    break
            assert url and url.startswith(f"http://127.0.0.1:{port}/?session=")
            sid = url.rsplit("=", 1)[1]
            page = httpx.get(url)
            assert page.status_code == 200 and "Which sounds better" in page.text
            state = httpx.get(f"http://127.0.0.1:{port}/api/sessions/{sid}").json()
            httpx.post(
                f"http://127.0.0.1:{port}/api/sessions/{sid}/vote",
                json={"pair": state["pair"]["id"], "choice": "a"},
            ).raise_for_status()
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "the session is saved" in out
        return sid, state

    sid, first = serve([])
    assert first["votes"] == 0
    again, second = serve(["--session", sid])
    assert again == sid and second["votes"] == 1


def test_a_plant_without_an_env(tmp_path):
    """--plant NAME: the plant with the task its own demo uses, knobs from the plant."""
    player = Player(SoundSpec(plant="sine"))
    try:
        app = create_app(SessionStore(tmp_path), player)
        with TestClient(app, base_url="http://127.0.0.1") as c:
            state = new_session(c)
            assert state["sound"] == "plant sine" and state["knobs"][0]["name"] == "frequency"
            assert c.get(state["pair"]["b"]["audio"]).status_code == 200
    finally:
        player.close()


@pytest.mark.slow
def test_plugin_backend_renders_the_candidates(dawdreamer, tmp_path):
    """backend="plugin": amsynth's VST rendered offline; the two candidates differ."""
    player = Player(SoundSpec("ddsp_gym/RealSynthPatch-v1", backend="plugin"))
    try:
        with TestClient(
            create_app(SessionStore(tmp_path), player), base_url="http://127.0.0.1"
        ) as c:
            state = new_session(c)
            a, rate = sf.read(io.BytesIO(c.get(state["pair"]["a"]["audio"]).content))
            b, _ = sf.read(io.BytesIO(c.get(state["pair"]["b"]["audio"]).content))
            assert rate == player.sample_rate and 0.01 < np.abs(a).max() <= 1.0
            assert np.abs(a - b).max() > 0.01
            assert vote(c, state["session"], 0, "b").json()["votes"] == 1
    finally:
        player.close()


@pytest.mark.slow
def test_bench_script_writes_consistent_results(tmp_path):
    """scripts/bench_prefer.py with tiny arguments: its files, and a log that held."""
    out = tmp_path / "prefer_api"
    done = subprocess.run(
        [sys.executable, "scripts/bench_prefer.py", "--envs", ENV_ID, "--votes", "4",
         "--tabs", "3", "--rounds", "2", "-o", str(out)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert row["votes"] == 4 and row["log_consistent"] is True
    c = row["concurrent"]
    assert c["accepted"] + c["refused_409"] == 6 and c["other"] == 0 and c["accepted"] >= 2
    assert row["vote"]["p50_ms"] > 0 and "| yes |" in out.with_suffix(".md").read_text()
