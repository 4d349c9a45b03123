"""Measure which env settings SB3 PPO learns with: candidates x envs x seeds.

    python scripts/rl_defaults.py --envs ddsp_gym/SineTuner-v1 --candidates delta log_delta \
        --seeds 0 1 --steps 300000

Writes results/rl_defaults.{json,md} after every run; a rerun of the same command
resumes. Candidates and PPO settings: ddsp_gym/agents/rl_defaults.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents.rl_defaults import run_study
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", required=True, help="env ids")
    parser.add_argument("--candidates", nargs="+", required=True, help="CANDIDATE[@PPO_PRESET]")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=1_000_000, help="training env steps")
    parser.add_argument(
        "--eval-every", type=int, default=100_000, help="held-out evaluation every N steps"
    )
    parser.add_argument("--out", type=Path, default=Path("results/rl_defaults.json"))
    args = parser.parse_args()
    tune_for_cpu()
    command = shlex.join(["python", "scripts/rl_defaults.py", *sys.argv[1:]])
    run_study(
        args.envs,
        args.candidates,
        args.seeds,
        args.steps,
        args.eval_every,
        out=args.out,
        command=command,
    )


if __name__ == "__main__":
    main()
