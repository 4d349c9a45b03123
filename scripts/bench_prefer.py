"""How fast ``ddsp-gym prefer`` answers: renders, votes (fsync'd), state, concurrent tabs.

Serves the app on 127.0.0.1 (a free port) over a scratch sessions folder and drives it
with HTTP like the page does; writes ``results/prefer_api.json`` and ``.md``.

    python scripts/bench_prefer.py                         # SineTuner-v1 and RealSynthPatch-v1, sim
    python scripts/bench_prefer.py --envs ddsp_gym/RealSynthPatch-v1 --backend hardware
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ddsp_gym.preference.app import create_app
from ddsp_gym.preference.candidates import Player, SoundSpec
from ddsp_gym.preference.session import SessionStore, parse_log

ROOT = Path(__file__).resolve().parents[1]


def _ms(seconds: list[float]) -> dict[str, float]:
    """Median and 95th percentile, in milliseconds."""
    values = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.median(values)), "p95_ms": float(np.percentile(values, 95))}


def _timed(call) -> tuple[Any, float]:
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def bench_env(env_id: str, backend: str, votes: int, tabs: int, rounds: int) -> dict[str, Any]:
    """One env's figures (see the module docstring)."""
    from tests.prefer_server import running

    player, make_s = _timed(lambda: Player(SoundSpec(env_id, backend=backend)))
    row: dict[str, Any] = {"env": env_id, "backend": backend, "player_make_s": make_s}
    with (
        tempfile.TemporaryDirectory() as folder,
        running(create_app(SessionStore(folder), player)) as url,
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        state = http.post("/api/sessions", json={}).json()
        sid = state["session"]
        first, row["first_render_s"] = _timed(lambda: http.get(state["pair"]["a"]["audio"]))
        first.raise_for_status()
        _, row["new_render_s"] = _timed(lambda: http.get(state["pair"]["b"]["audio"]))
        cached = [_timed(lambda: http.get(state["pair"]["a"]["audio"]))[1] for _ in range(20)]
        row["cached_audio"] = _ms(cached)
        vote_s, get_s = [], []
        for _ in range(votes):
            state, seconds = _timed(lambda: http.get(f"/api/sessions/{sid}").json())
            get_s.append(seconds)
            body = {"pair": state["pair"]["id"], "choice": "a"}
            response, seconds = _timed(
                lambda body=body: http.post(f"/api/sessions/{sid}/vote", json=body)
            )
            response.raise_for_status()
            vote_s.append(seconds)
        row["votes"] = votes
        row["vote"] = _ms(vote_s)
        row["state"] = _ms(get_s)
        # Resume: a fresh store (a restarted server) loads the log and asks the search.
        _, row["resume_s"] = _timed(lambda: SessionStore(folder).open(sid).state())
        row["concurrent"] = _concurrent(url, sid, tabs, rounds)
        records, _, dropped = parse_log((Path(folder) / sid / "votes.jsonl").read_bytes())
        row["log_consistent"] = dropped is None and all(
            r["seq"] == i and r["pair"] == i for i, r in enumerate(records)
        )
    player.close()
    return row


def _concurrent(url: str, sid: str, tabs: int, rounds: int) -> dict[str, Any]:
    """``tabs`` threads each read the pair and vote ``rounds`` times, all at once."""
    accepted, refused, other = [], [], []
    barrier = threading.Barrier(tabs)

    def tab() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            barrier.wait()
            for _ in range(rounds):
                pair = http.get(f"/api/sessions/{sid}").json()["pair"]["id"]
                r = http.post(f"/api/sessions/{sid}/vote", json={"pair": pair, "choice": "b"})
                {200: accepted, 409: refused}.get(r.status_code, other).append(r.status_code)

    threads = [threading.Thread(target=tab) for _ in range(tabs)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {
        "tabs": tabs,
        "attempts": tabs * rounds,
        "accepted": len(accepted),
        "refused_409": len(refused),
        "other": len(other),
        "accepted_per_s": len(accepted) / seconds,
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# ddsp-gym prefer: API timings",
        "",
        f"`{meta['command']}` on {meta['machine']}, {meta['date']}. One HTTP client on",
        "127.0.0.1; votes are appended and fsync'd before the answer. *Player made*: the env",
        "(the first row also imports JAX). Renders: the first candidate (sim: JIT compiles;",
        "hardware: the episode's start, two takes and the latency measurement, then the",
        "take), a second candidate (hardware: one take), a cached WAV. *Resume*: a fresh",
        "store loads the log and asks the search. *Tabs*: concurrent readers-and-voters.",
        "",
        "| env | backend | player made | 1st render | 2nd render | cached WAV p50 | "
        "vote p50 / p95 | state p50 | resume | tabs: accepted / 409 | log ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["concurrent"]
        lines.append(
            f"| {r['env']} | {r['backend']} | {r['player_make_s']:.1f} s | "
            f"{r['first_render_s']:.2f} s | {r['new_render_s'] * 1000:.0f} ms | "
            f"{r['cached_audio']['p50_ms']:.1f} ms | "
            f"{r['vote']['p50_ms']:.1f} / {r['vote']['p95_ms']:.1f} ms | "
            f"{r['state']['p50_ms']:.1f} ms | {r['resume_s'] * 1000:.1f} ms "
            f"({r['votes']} votes) | {c['tabs']} tabs: {c['accepted']} / {c['refused_409']} | "
            f"{'yes' if r['log_consistent'] and not c['other'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs", nargs="+", default=["ddsp_gym/SineTuner-v1", "ddsp_gym/RealSynthPatch-v1"]
    )
    parser.add_argument("--backend", default="sim", choices=("sim", "hardware", "plugin"))
    parser.add_argument("--votes", type=int, default=100, help="sequential votes per env")
    parser.add_argument("--tabs", type=int, default=8, help="concurrent tabs")
    parser.add_argument("--rounds", type=int, default=10, help="votes tried per tab")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "results" / "prefer_api")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # tests/prefer_server.py: the tests' server helper
    rows = [bench_env(e, args.backend, args.votes, args.tabs, args.rounds) for e in args.envs]
    words = ["python", "scripts/bench_prefer.py", "--envs", *args.envs]
    if args.backend != "sim":
        words += ["--backend", args.backend]
    words += ["--votes", str(args.votes), "--tabs", str(args.tabs), "--rounds", str(args.rounds)]
    meta = {
        "command": " ".join(words),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = markdown(rows, meta)
    args.output.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
