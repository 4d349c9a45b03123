"""The Level-1 demo: solve each env from several seeds with the gradient agent.

Run it with ``ddsp-gym demo`` (or ``make demo``). For each env and seed it writes
the target and result WAVs and a spectrogram/loss PNG, then prints a table and
says whether every env was solved on at least ``REQUIRED_SOLVE_RATE`` of its seeds.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents.base import QUERY_ENV_KWARGS
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.audio_io import save_audio
from ddsp_gym.plotting import save_comparison_png

LEVEL1_ENVS: tuple[str, ...] = (
    "ddsp_gym/SineTuner-v1",
    "ddsp_gym/CutoffSweeper-v1",
    "ddsp_gym/EnvelopeShaper-v1",
    "ddsp_gym/VolumeMatch-v1",
)
REQUIRED_SOLVE_RATE = 0.9


@dataclass
class DemoRow:
    env_id: str
    seeds: int
    solved: int
    median_steps: float
    median_final_distance: float
    distance_unit: str
    wall_s: float

    @property
    def solve_rate(self) -> float:
        return self.solved / self.seeds


def solve_env(env_id: str, seeds: int, out_dir: Path, agent: GradientAgent) -> DemoRow:
    """Run ``agent`` on ``env_id`` for seeds 0..seeds-1, writing audio and pictures."""
    env = gym.make(env_id, expose_grad=True, **QUERY_ENV_KWARGS)
    base = env.unwrapped
    sr = base.plant.sample_rate
    env_dir = out_dir / env_id.split("/")[-1]
    start = time.perf_counter()
    results = []
    for seed in tqdm(range(seeds), desc=env_id, unit="seed", leave=False):
        result = agent.solve(env, seed)
        results.append(result)
        save_audio(env_dir / f"seed{seed}_target.wav", base.target_audio(), sr)
        save_audio(env_dir / f"seed{seed}_result.wav", base.current_audio(), sr)
        save_comparison_png(
            env_dir / f"seed{seed}.png",
            base.current_audio(),
            base.target_audio(),
            sr,
            result.distances,
        )
    env.close()
    return DemoRow(
        env_id=env_id,
        seeds=seeds,
        solved=sum(r.success for r in results),
        median_steps=float(np.median([r.steps for r in results])),
        median_final_distance=float(np.median([r.final_distance for r in results])),
        distance_unit=base.task.distance_unit,
        wall_s=time.perf_counter() - start,
    )


def format_table(rows: list[DemoRow]) -> str:
    lines = [
        "| env | seeds solved | median steps | median final distance | wall time |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.env_id} | {r.solved}/{r.seeds} | {r.median_steps:.0f} | "
            f"{r.median_final_distance:.3g} {r.distance_unit} | {r.wall_s:.1f} s |"
        )
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "demo_out", seeds: int = 10, env_ids: tuple[str, ...] = LEVEL1_ENVS
) -> tuple[list[DemoRow], bool]:
    """Solve every env in ``env_ids``; returns the rows and whether all met the bar."""
    out_dir = Path(out_dir)
    agent = GradientAgent()
    rows = [solve_env(env_id, seeds, out_dir, agent) for env_id in env_ids]
    passed = all(r.solve_rate >= REQUIRED_SOLVE_RATE for r in rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(
        json.dumps({"passed": passed, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    (out_dir / "summary.md").write_text(format_table(rows) + "\n")
    return rows, passed
