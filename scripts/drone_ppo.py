"""PPO vs a random-walk knob agent on ddsp_gym/Drone-v0, over seeds.

    python scripts/drone_ppo.py --seeds 0 1 2 3 4 --steps 40000

Writes results/drone_ppo.{json,md}; the comparison: ddsp_gym/agents/stream_bench.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents.stream_bench import run_comparison
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ddsp_gym/Drone-v0")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=40_000, help="training blocks per seed")
    parser.add_argument("--streams", type=int, default=16, help="evaluation streams")
    parser.add_argument("--out", type=Path, default=Path("results/drone_ppo.json"))
    args = parser.parse_args()
    tune_for_cpu()
    command = shlex.join(["python", "scripts/drone_ppo.py", *sys.argv[1:]])
    result = run_comparison(args.env, args.seeds, args.steps, args.streams, args.out, command)
    print(args.out.with_suffix(".md").read_text())
    del result


if __name__ == "__main__":
    main()
