"""Sound designer benchmark: fixed prompts x start patches -> results/sound_designer.{json,md}.

python scripts/sound_designer_bench.py [--out results] [--steps 150] [--restarts 4]
"""

from __future__ import annotations

import argparse

from ddsp_gym.design.bench import run_bench
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (results)")
    parser.add_argument("--plant", default="fm2", help="plant with start patches (fm2)")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per start (150)")
    parser.add_argument("--restarts", type=int, default=4, help="starts per case (4)")
    args = parser.parse_args()
    tune_for_cpu()
    report = run_bench(args.out, args.plant, args.steps, args.restarts)
    print(f"passed {report['passed']} of {report['total']} in {report['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
