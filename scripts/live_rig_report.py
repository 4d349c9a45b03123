"""Measure live mode on the software rig: xruns of the idle rig, of a hardware session
(amsynth over MIDI, captured back) and of a sim session (the block plant out through
JACK), one after another under the same machine load -> results/live_rig.md.

    python -m ddsp_gym.backends.rig start
    python scripts/live_rig_report.py [--seconds 60] [--agent random-walk]

Each session runs through the command (`ddsp-gym live ... --out DIR`) in a subprocess,
as a user runs it; this script reads their summary.json. The idle row is jackd's logged
xruns over the same time with no live runner: the rig's own share under the load.
About 3.5 minutes at --seconds 60 (the dummy driver runs in real time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ddsp_gym.backends import rig

ENV_ID = "ddsp_gym/Drone-v0"


def idle_xruns(seconds: float) -> dict:
    config = rig.RigConfig.default()
    before, load0 = rig.xrun_count(config), os.getloadavg()[0]
    time.sleep(seconds)
    return {
        "seconds_played": seconds,
        "server_xruns": rig.xrun_count(config) - before,
        "load_avg_1min_at_start": round(load0, 2),
        "load_avg_1min_at_stop": round(os.getloadavg()[0], 2),
    }


def session(backend: str, seconds: float, agent: str, folder: Path) -> dict:
    out = folder / backend
    command = [
        sys.executable, "-m", "ddsp_gym.cli", "live", ENV_ID, "--backend", backend,
        "--seconds", str(seconds), "--agent", agent, "--seed", "0", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def markdown(rows: dict[str, dict], seconds: float, agent: str) -> str:
    def cell(summary: dict, key: str, fmt: str = "{}") -> str:
        value = summary.get(key)
        return "-" if value is None else fmt.format(value)

    names = list(rows)
    lines = [
        f"# Live mode on the software rig: {ENV_ID}",
        "",
        f"Written by `python scripts/live_rig_report.py --seconds {seconds:g} --agent {agent}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), one after another on "
        f"{os.cpu_count()} cores shared with other work. JACK dummy driver, 48 kHz, "
        "1024-frame periods (the rig's default); the plant's blocks are 1024 samples at "
        "16 kHz (64 ms); 2 blocks rendered ahead (sim).",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    spec = [
        ("seconds played", "seconds_played", "{:.2f}"),
        ("blocks", "blocks", "{}"),
        ("xruns (`info['xruns']`)", "xruns", "{}"),
        ("  late blocks", "late_blocks", "{}"),
        ("  device over/underruns", "device_xruns", "{}"),
        ("jackd's logged xruns", "server_xruns", "{}"),
        ("load (1-min avg) at start", "load_avg_1min_at_start", "{}"),
        ("load (1-min avg) at stop", "load_avg_1min_at_stop", "{}"),
        ("block thread, ms per 64-ms block (mean)", "block_thread_ms_mean", "{:.2f}"),
        ("block thread, ms per block (max)", "block_thread_ms_max", "{:.1f}"),
        ("mean reward per block", "mean_reward", "{:.3f}"),
        ("synth peak 0.25-0.5 s after the stop, dBFS", "after_stop_peak_dbfs", "{:.1f}"),
        ("stop", "stop_reason", "{}"),
    ]
    for label, key, fmt in spec:
        lines.append(f"| {label} | " + " | ".join(cell(rows[n], key, fmt) for n in names) + " |")
    lines += [
        "",
        "Late blocks: the block thread had not delivered in time (the callback played "
        "zeros). Device over/underruns: PortAudio's flags (at most one per callback). "
        "jackd's logged xruns: the server's own count over the session (the idle column: "
        "no live runner at all, the rig's own share under this load). Seconds played "
        "below the wall-clock time: the dummy driver skips periods at its xruns.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--agent", default="random-walk")
    parser.add_argument("-o", "--output", type=Path, default=Path("results/live_rig.md"))
    args = parser.parse_args()
    if not rig.status()["ready"].get("amsynth"):
        raise SystemExit("the rig is not running: python -m ddsp_gym.backends.rig start")
    with tempfile.TemporaryDirectory() as folder:
        rows = {"idle rig (no runner)": idle_xruns(args.seconds)}
        for backend in ("hardware", "sim"):
            rows[f"live, {backend}"] = session(backend, args.seconds, args.agent, Path(folder))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(rows, args.seconds, args.agent))
    (args.output.with_suffix(".json")).write_text(json.dumps(rows, indent=1))
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
