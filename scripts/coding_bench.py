"""Quality against bitrate of the knob-trajectory codec (docs/coding.md).

Usage: python scripts/coding_bench.py [--out results] [--steps 150]
Writes results/coding.json, coding.md and coding.png.
"""

from __future__ import annotations

import argparse

from ddsp_gym.coding.bench import FIT_STEPS, run_coding_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="output folder (default results)")
    parser.add_argument("--steps", type=int, default=FIT_STEPS, help="Adam steps per fit")
    args = parser.parse_args()
    result = run_coding_bench(args.out, args.steps)
    print(open(f"{args.out}/coding.md").read())
    print(f"{len(result['rows'])} rows in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
