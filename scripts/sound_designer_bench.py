"""Sound designer benchmark: fixed prompts x start patches x plants -> results/sound_designer.*

python scripts/sound_designer_bench.py [--out results] [--plant designer_voice --plant fm2]
    [--steps 150] [--restarts 4]
"""

from __future__ import annotations

import argparse

from ddsp_gym.design.bench import BENCH_PLANTS, run_bench
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (results)")
    parser.add_argument(
        "--plant",
        action="append",
        dest="plants",
        help=f"plant with start patches; repeat for several ({', '.join(BENCH_PLANTS)})",
    )
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per start (150)")
    parser.add_argument("--restarts", type=int, default=4, help="starts per case (4)")
    args = parser.parse_args()
    tune_for_cpu()
    report = run_bench(args.out, tuple(args.plants or BENCH_PLANTS), args.steps, args.restarts)
    for name, plant in report["plants"].items():
        print(f"{name}: passed {plant['passed']} of {plant['total']} in {plant['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
