"""``ddsp-gym physiology``: look at an LSL stream; random knobs vs a hill climb on BioFeedback.

``physiology listen`` resolves a stream (a device's LSL app) and prints what it sends, to
check it is reachable before pointing ``reward: {source: physiology, stream: ...}`` at it.
``physiology bench`` compares random knobs with a (1+1) hill climb on the simulated
listener of ``ddsp_gym/BioFeedback-v1`` and writes ``results/physiology.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BIO = "ddsp_gym/BioFeedback-v1"
QUERY_KWARGS = {"control": "absolute", "observation": "summaries", "reward_shape": "linear"}


def add_physiology_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``physiology listen | bench`` on the top-level subparsers."""
    group = sub.add_parser(
        "physiology",
        help="physiology rewards over Lab Streaming Layer (docs/physiology.md)",
        description="Physiology rewards over LSL. Choose one: listen, bench.",
    )
    group.set_defaults(func=None, help_parser=group)
    what = group.add_subparsers(dest="physiology_command", metavar="WHAT")

    p = what.add_parser("listen", help="resolve an LSL stream and print what it sends")
    p.add_argument("stream", help="a stream name, or PROP=VALUE (type=EEG, source_id=...)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to listen (5)")
    p.add_argument("--timeout", type=float, default=5.0, help="how long to look for it (5)")
    p.add_argument(
        "--lsl-config",
        default="local",
        help="'local' (this machine only, default), 'system' (liblsl's own config) or a path",
    )
    p.set_defaults(func=_cmd_listen)

    p = what.add_parser(
        "bench",
        help="random knobs vs a hill climb on BioFeedback-v1's simulated listener",
    )
    p.add_argument("--seeds", type=int, default=5, help="episodes per method (5)")
    p.add_argument("--budget", type=int, default=40, help="sounds per episode (40)")
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="results folder")
    p.set_defaults(func=_cmd_bench)


def listen(
    stream: str, seconds: float, lsl_config: str = "local", timeout_s: float = 5.0
) -> dict[str, Any]:
    """Resolve ``stream``, read it for ``seconds``: its channels, rate and last values."""
    from ddsp_gym.physiology.stream import StreamQuery, StreamReader

    reader = StreamReader(StreamQuery.parse(stream), timeout_s, config=lsl_config)
    reader.connect()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        reader.pull(wait_s=min(0.1, max(end - time.monotonic(), 0.0)))
    samples = reader.samples
    reader.close()
    span = float(samples[-1, 0] - samples[0, 0]) if len(samples) > 1 else 0.0
    return {
        "channels": reader.channel_labels,
        "nominal_rate_hz": reader.nominal_srate,
        "samples": len(samples),
        "measured_rate_hz": (len(samples) - 1) / span if span > 0 else None,
        "last": dict(zip(reader.channel_labels, samples[-1, 1:].tolist(), strict=True))
        if len(samples)
        else {},
    }


def compare_random_and_hill_climb(seeds: int, budget: int) -> dict[str, Any]:
    """Random knobs and a (1+1) hill climb (Gaussian steps of 0.3 in action space, keep a
    candidate whose reward beats the best so far), ``budget`` sounds per episode, on
    BioFeedback-v1's simulated listener. Each is judged by the reward it read and by the
    listener's hidden calm (:class:`~ddsp_gym.physiology.simulated.Taste`) of the sound
    it ends on (random: the mean over its sounds; its best is luck, not a setting)."""
    import gymnasium as gym

    from ddsp_gym.physiology.simulated import Taste, audio_features

    env = gym.make(BIO, **QUERY_KWARGS)
    base = env.unwrapped
    source = base.reward_source
    taste, rate = Taste.draw(source.seed), base.plant.sample_rate
    d = env.action_space.shape[0]

    def calm() -> float:
        return taste.calm(audio_features(base.current_audio(), rate))

    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        rewards, calms = [], []
        for _ in range(budget):
            rewards.append(env.step(rng.uniform(-1, 1, d).astype(np.float32))[1])
            calms.append(calm())
        env.reset(seed=seed)
        best = rng.uniform(-1, 1, d).astype(np.float32)
        best_reward = env.step(best)[1]
        climb = [best_reward]
        for _ in range(budget - 1):
            candidate = np.clip(best + rng.normal(0.0, 0.3, d), -1, 1).astype(np.float32)
            reward = env.step(candidate)[1]
            climb.append(reward)
            if reward > best_reward:
                best, best_reward = candidate, reward
        final_reward = env.step(best)[1]
        rows.append(
            {
                "seed": seed,
                "random_mean_reward": float(np.mean(rewards)),
                "random_mean_calm": float(np.mean(calms)),
                "climb_last10_reward": float(np.mean(climb[-10:])),
                "climb_final_reward": float(final_reward),
                "climb_final_calm": calm(),
            }
        )
    env.close()
    keys = [k for k in rows[0] if k != "seed"]
    return {
        "env": BIO,
        "seeds": seeds,
        "budget": budget,
        "listener_seed": source.seed,
        "rows": rows,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
    }


def write_results(result: dict[str, Any], output: Path) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    path_json = output / "physiology.json"
    path_json.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Physiology reward: random knobs vs a hill climb (simulated listener)",
        "",
        f"`ddsp-gym physiology bench --seeds {result['seeds']} --budget {result['budget']}` "
        f"on `{result['env']}` (control absolute), listener seed {result['listener_seed']}. "
        "Reward: the listener's heart-rate coherence read over LSL 2-4 s after each sound "
        "(lagged, noisy). Calm: the listener's hidden response to the sound (0-1).",
        "",
        "| seed | random: mean reward | random: mean calm | climb: last 10 rewards "
        "| climb: final reward | climb: final calm |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*result["rows"], {"seed": "mean", **result["mean"]}]:
        lines.append(
            f"| {r['seed']} | {r['random_mean_reward']:.3f} | {r['random_mean_calm']:.3f} | "
            f"{r['climb_last10_reward']:.3f} | {r['climb_final_reward']:.3f} | "
            f"{r['climb_final_calm']:.3f} |"
        )
    path_md = output / "physiology.md"
    path_md.write_text("\n".join(lines) + "\n")
    return path_json, path_md


def _cmd_listen(args: argparse.Namespace) -> int:
    from ddsp_gym.physiology.stream import StreamNotFound

    try:
        report = listen(args.stream, args.seconds, args.lsl_config, args.timeout)
    except StreamNotFound as err:
        print(f"ddsp-gym: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.budget < 2:
        raise ValueError("physiology bench needs --seeds >= 1 and --budget >= 2")
    result = compare_random_and_hill_climb(args.seeds, args.budget)
    for path in write_results(result, args.output):
        print(f"wrote {path}")
    print(json.dumps(result["mean"], indent=2))
    return 0
