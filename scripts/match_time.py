"""How long ``ddsp-gym match`` takes on a 2 s target, as a user runs it.

    python scripts/match_time.py [--target FILE] [--steps 300] [--repeats 2] [-o results]

Runs ``ddsp-gym match TARGET`` (no ``--plant``: plant choice, coarse-to-fine, every
candidate compiled in a fresh process) ``--repeats`` times and writes
``match_time.{json,md}``: wall and CPU seconds of each run, the plant kept, the
candidates' table, and the load average before each run (the machine is shared: CPU
seconds say what the work costs, wall seconds what a user waited). Without
``--target`` the target is a 2 s decaying 220 Hz sawtooth, written next to the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000


def sawtooth(seconds: float = 2.0, f0: float = 220.0) -> np.ndarray:
    """A decaying sawtooth (no band limit: its aliases are part of the target)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.3 * 2.0 * (t * f0 - np.floor(0.5 + t * f0)) * np.exp(-t / 0.8)


def time_match(target: Path, steps: int, out: Path) -> dict:
    """One ``ddsp-gym match`` in a subprocess: wall and CPU seconds, and its choice."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    argv = [sys.executable, "-m", "ddsp_gym.cli", "match", str(target), "--steps", str(steps),
            "-o", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: ran, no match (the threshold is strict)
        raise SystemExit(f"match failed: {done.stderr.strip()[-400:]}")
    report = json.loads((out / "knobs.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load_average_before": load,
        "plant": report["plant"],
        "candidates": report["plant_choice"]["candidates"],
    }


def to_markdown(runs: list[dict], command: str, target: str, steps: int) -> str:
    lines = [
        "# ddsp-gym match on a 2 s target: time",
        "",
        f"Made by `{command}`: `ddsp-gym match {target} --steps {steps}` (no `--plant`) in a "
        "fresh process per run; 2-core machine shared with other work (load average "
        "before each run given).",
        "",
        "| run | wall s | CPU s | load before | plant kept | candidates (heard dB, s) |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(runs, 1):
        table = ", ".join(
            f"{c['plant']} {c['heard_db']:.2f} dB {c['wall_s']:.1f} s" for c in run["candidates"]
        )
        lines.append(
            f"| {i} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
            f"{run['load_average_before']:.1f} | {run['plant']} | {table} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, default=None, help="a 2 s sound (default: saw)")
    parser.add_argument("--steps", type=int, default=300, help="match --steps (300)")
    parser.add_argument("--repeats", type=int, default=2, help="runs (2)")
    parser.add_argument("-o", "--output", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 2:
        parser.error("--repeats must be >= 1 and --steps >= 2")
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        target = args.target
        if target is None:
            target = Path(tmp) / "saw_2s.wav"
            sf.write(target, sawtooth(), SAMPLE_RATE)
        runs = [time_match(target, args.steps, Path(tmp) / f"run{i}") for i in range(args.repeats)]
    name = "saw_2s.wav (generated)" if args.target is None else str(args.target)
    words = ["python", "scripts/match_time.py", "--steps", str(args.steps),
             "--repeats", str(args.repeats)]  # fmt: skip
    if args.target is not None:
        words += ["--target", str(args.target)]
    command = shlex.join(words)
    payload = {"command": command, "target": name, "steps": args.steps, "runs": runs}
    (args.output / "match_time.json").write_text(json.dumps(payload, indent=2))
    (args.output / "match_time.md").write_text(to_markdown(runs, command, name, args.steps))
    for i, run in enumerate(runs, 1):
        print(f"run {i}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU, kept {run['plant']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
