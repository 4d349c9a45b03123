"""SpokenTimbre benchmark: CMA-ES on the embedding distance for 20 espeak-ng words, and
the proxy-vs-embedding Spearman -> results/spoken_timbre.{json,md}.

python scripts/spoken_timbre_bench.py [--out results] [--budget 41] [--popsize 8]
"""

from __future__ import annotations

import argparse

from ddsp_gym.embedding.bench import run_bench
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (results)")
    parser.add_argument("--budget", type=int, default=41, help="renders per word (41)")
    parser.add_argument("--popsize", type=int, default=8, help="CMA-ES population (8)")
    args = parser.parse_args()
    tune_for_cpu()
    r = run_bench(args.out, args.budget, args.popsize)
    print(
        f"improved {r['improved']} of {r['total']} words; mean Spearman "
        f"{r['agreement']['mean_spearman']}; {r['wall_s']['total']:.0f} s"
    )


if __name__ == "__main__":
    main()
