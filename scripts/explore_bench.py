"""MAP-Elites vs random sampling at equal budget -> results/explore_bench.{json,md}.

    python scripts/explore_bench.py                       # sim plants (the default set)
    python scripts/explore_bench.py --plants fm2 --budgets 200 --seeds 2 --name try
    python scripts/explore_bench.py --env ddsp_gym/RealSynthPatch-v1 --backend hardware \\
        --budgets 80 --seeds 2 --cells 10 10 --name explore_hw   # the rig's amsynth

See ddsp_gym/explore/bench.py and docs/explore.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddsp_gym.explore.bench import bench_meta, bench_runs, write_bench
from ddsp_gym.explore.commands import parse_hardware
from ddsp_gym.explore.descriptors import DEFAULT_AXES, check_axes

DEFAULT_PLANTS = ("subtractive", "fm2", "amsynth_twin")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plants", nargs="+", default=None, help=f"default {DEFAULT_PLANTS}")
    p.add_argument("--env", default=None, help="an env id instead of plants (a device)")
    p.add_argument("--backend", default="sim", choices=("sim", "hardware", "plugin"))
    p.add_argument("--budgets", nargs="+", type=int, default=[200, 1000, 3000])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--cells", nargs=2, type=int, default=[20, 20])
    p.add_argument("--axes", nargs=2, default=list(DEFAULT_AXES))
    p.add_argument("--hardware", default=None, help="device options, a JSON object")
    p.add_argument("--name", default="explore_bench")
    p.add_argument("-o", "--output", type=Path, default=Path("results"))
    args = p.parse_args(argv)
    axes = check_axes(args.axes)
    if args.env:
        sources = [{"env": args.env}]
    else:
        sources = [{"plant": name} for name in args.plants or DEFAULT_PLANTS]
    title = "Knob-space explorer: MAP-Elites vs random sampling" + (
        f" on {args.env} ({args.backend})" if args.env else " on sim plants"
    )
    rows = bench_runs(
        sources,
        args.budgets,
        range(args.seeds),
        tuple(args.cells),
        args.backend,
        axes,
        parse_hardware(args.hardware),
        log=lambda m: print(m, flush=True),
    )
    meta = bench_meta(
        title, ["python", "scripts/explore_bench.py", *argv], args.backend, axes, args.cells
    )
    for path in write_bench(rows, meta, args.output, args.name):
        print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1:])
