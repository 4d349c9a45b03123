"""Measure the live JamPartner's MIDI clock following on the software rig: a 120 BPM clock
(Start, then 24 ticks a beat) from a JACK MIDI port to ``--clock``, a live session per run,
the tracker's tempo and beat phase against the sent ticks -> results/live_clock.md (and
.json).

    python -m ddsp_gym.backends.rig start
    python scripts/live_clock_report.py [--runs 3] [--seconds 6]

Per run: the ticks' arrival latency (arrival minus send time: what ``--clock-latency-ms``
compensates), the phase error of the predicted beats after compensation and the tempo
over the last 2 s (a probe every 0.25 s), the session's xruns, and the machine's load
beside them (the timing is only as real-time as the machine is idle). About 10 s a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ddsp_gym.backends import rig
from ddsp_gym.live.clock import MidiClockSender, measure_against
from ddsp_gym.live.runner import DEFAULT_CLOCK_LATENCY_MS, open_session, run_session

ENV_ID = "ddsp_gym/JamPartner-v0"
SENDER = "ddsp_gym-clock-report"
BPM = 120.0


def one_run(seconds: float, out_dir: Path) -> dict:
    """One live session following a fresh sender; the figures of its last 2 s."""
    sender = MidiClockSender(BPM, SENDER)
    load0 = os.getloadavg()[0]
    try:
        session = open_session(
            ENV_ID, backend="sim", agent="scripted", audio_out="system", hostapi="JACK",
            out_dir=out_dir, clock=SENDER,
        )  # fmt: skip
        sender.start_song()
        probes: list[tuple[float, float]] = []

        def probe(s) -> None:
            measured = measure_against(s.beat, sender.sent, time.monotonic())
            if measured is not None and len(sender.sent) >= 48:
                probes.append(measured[:2])

        summary = run_session(session, seconds, on_tick=probe, tick_s=0.25)
        latency = measure_against(session.beat, sender.sent, session.beat.last_tick_s)[2]
    finally:
        sender.close()
    last = probes[-8:]
    errors = [e for _, e in last]
    return {
        "load_avg_1min_at_start": round(load0, 2),
        "load_avg_1min_at_stop": round(os.getloadavg()[0], 2),
        "latency_ms_mean": round(1e3 * float(np.mean(latency)), 1),
        "latency_ms_min": round(1e3 * float(np.min(latency)), 1),
        "latency_ms_max": round(1e3 * float(np.max(latency)), 1),
        "phase_error_ms_mean": round(1e3 * float(np.mean(errors)), 1),
        "phase_error_ms_sd": round(1e3 * float(np.std(errors)), 1),
        "tempo_bpm_median": round(float(np.median([t for t, _ in last])), 2),
        "xruns": summary["xruns"],
        "server_xruns": summary["server_xruns"],
        "errors": summary["errors"],
    }


def markdown(runs: list[dict], seconds: float) -> str:
    lines = [
        "# Live JamPartner following a MIDI clock on the rig",
        "",
        f"Written by `python scripts/live_clock_report.py --runs {len(runs)} --seconds "
        f"{seconds:g}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). A {BPM:g} BPM "
        "clock with Start from a JACK MIDI port; a live sim session per run (out through "
        f"JACK); figures over each run's last 2 s; `--clock-latency-ms` "
        f"{DEFAULT_CLOCK_LATENCY_MS:g} compensated. Phase error: predicted beat minus sent "
        "beat (+: late).",
        "",
        "| run | load (1 min, start / stop) | tick latency mean (min-max) | phase error "
        "mean +- sd | tempo | xruns (jackd's) |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['load_avg_1min_at_start']} / {r['load_avg_1min_at_stop']} on "
            f"{os.cpu_count()} cores | {r['latency_ms_mean']} ms ({r['latency_ms_min']}-"
            f"{r['latency_ms_max']}) | {r['phase_error_ms_mean']:+} +- "
            f"{r['phase_error_ms_sd']} ms | {r['tempo_bpm_median']} BPM | {r['xruns']} "
            f"({r['server_xruns']}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("-o", "--output", type=Path, default=Path("results/live_clock.md"))
    args = parser.parse_args()
    if args.runs < 1 or not args.seconds >= 3.0:
        raise SystemExit("--runs must be >= 1 and --seconds >= 3 (the last 2 s are measured)")
    if not rig.status()["jack_running"]:
        raise SystemExit("the rig is not running: python -m ddsp_gym.backends.rig start")
    with tempfile.TemporaryDirectory() as folder:
        runs = [one_run(args.seconds, Path(folder) / str(i)) for i in range(args.runs)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(runs, args.seconds))
    args.output.with_suffix(".json").write_text(json.dumps(runs, indent=1))
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
