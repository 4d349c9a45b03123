"""``ddsp-gym explore (ENV_ID | --plant NAME)``: map a synth's knob space by timbre.

Thin: parse, check names and numbers, build the evaluator, run the search, write the
outputs (:mod:`ddsp_gym.explore.report`). Building the parser imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ddsp_gym.catalog import PLANT_NAMES, check_env_ids, check_plant

BACKENDS = ("sim", "hardware", "plugin")
DEFAULT_SIM_BUDGET = 1000
DEFAULT_TAKES = 100
DESCRIPTOR_CHOICES = ("centroid", "flatness", "rolloff", "loudness", "attack")


def _note(message: str) -> None:
    print(f"ddsp-gym: note: {message}", file=sys.stderr)


def parse_hardware(text: str | None) -> dict[str, Any]:
    """``--hardware`` JSON object -> options; ValueError names the problem."""
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--hardware is not valid JSON: {err}") from None
    if not isinstance(options, dict):
        raise ValueError('--hardware takes a JSON object, e.g. \'{"audio_in": "amsynth"}\'')
    return options


def check_args(args: argparse.Namespace) -> int:
    """Validate names and numbers before anything heavy runs; return the sound budget."""
    import importlib.util

    if importlib.util.find_spec("ribs") is None:
        raise ValueError("explore needs pyribs: pip install 'ddsp_gym[explore]'")
    if (args.env_id is None) == (args.plant is None):
        raise ValueError("give an env id or --plant NAME (one of them)")
    if args.env_id is not None:
        check_env_ids([args.env_id])
    else:
        check_plant(args.plant)
        if args.backend != "sim":
            raise ValueError(
                f"--backend {args.backend} plays an env: give an env id "
                "(e.g. ddsp_gym/RealSynthPatch-v1) instead of --plant"
            )
    if args.backend == "sim":
        if args.takes is not None:
            raise ValueError(
                "--takes is the budget of a device (--backend hardware or "
                "plugin); on the sim use --budget"
            )
        budget = DEFAULT_SIM_BUDGET if args.budget is None else args.budget
    else:
        if args.budget is not None and args.takes is not None and args.budget != args.takes:
            raise ValueError("give --takes or --budget for a device, not both")
        budget = args.takes if args.takes is not None else args.budget
        budget = DEFAULT_TAKES if budget is None else budget
    from ddsp_gym.explore.descriptors import check_axes
    from ddsp_gym.explore.search import MIN_BUDGET

    if budget < MIN_BUDGET:
        raise ValueError(f"the budget must be at least {MIN_BUDGET} sounds, got {budget}")
    check_axes(args.axes)
    if args.color not in (*DESCRIPTOR_CHOICES, "objective"):
        raise ValueError(
            f"unknown --color {args.color!r}; choose one of "
            f"{', '.join(DESCRIPTOR_CHOICES)}, objective"
        )
    if any(c < 1 or c > 200 for c in args.cells):
        raise ValueError(f"--cells takes two counts from 1 to 200, got {args.cells}")
    return budget


def build(
    source: dict[str, Any],
    backend: str,
    seed: int,
    hardware: dict[str, Any] | None = None,
    note=_note,
):
    """(evaluator, plant name, ranges) for a source ``{"env": id}`` or ``{"plant": name}``."""
    from ddsp_gym.explore.evaluators import EnvEvaluator, SimEvaluator
    from ddsp_gym.explore.ranges import measure_ranges, plant_ranges
    from ddsp_gym.plants import make_plant

    if "plant" in source:
        plant = make_plant(source["plant"])
        evaluator = SimEvaluator(plant, seed)
        return evaluator, plant_ranges(source["plant"], plant, note=note)
    if backend == "sim":
        import gymnasium as gym

        env = gym.make(source["env"], disable_env_checker=True).unwrapped
        plant, config, audio_in = env.plant, env.config, env.input_audio
        env.close()
        evaluator = SimEvaluator(plant, seed, audio_in)
    else:
        kwargs = {backend: hardware} if hardware else {}
        evaluator = EnvEvaluator(source["env"], backend, seed, **kwargs)
        plant, config = evaluator.plant, evaluator.core.config
        audio_in = evaluator.core.input_audio
    if config.plant_config:  # not the plant the stored ranges were measured on
        note(f"{source['env']} configures its plant: measuring descriptor ranges now")
        return evaluator, measure_ranges(plant, audio_in)
    return evaluator, plant_ranges(config.plant, plant, audio_in, note=note)


def explore(
    source: dict[str, Any],
    backend: str,
    budget: int,
    axes: tuple[str, str],
    cells: tuple[int, int],
    seed: int,
    out: Path,
    method: str = "map_elites",
    color: str = "loudness",
    hardware: dict[str, Any] | None = None,
    progress: bool = True,
):
    """Run one exploration and write its outputs; returns (result, paths)."""
    from ddsp_gym.explore.report import write_outputs
    from ddsp_gym.explore.search import MapSpace, run

    evaluator, ranges = build(source, backend, seed, hardware)
    try:
        space = MapSpace(axes, cells, (tuple(ranges[axes[0]]), tuple(ranges[axes[1]])))
        n_eval = budget
        if backend != "sim":  # the reset plays the task's target and start first
            n_eval = budget - evaluator.takes
            if n_eval < 1:
                raise ValueError(
                    f"--takes {budget} leaves nothing after the reset's {evaluator.takes} takes"
                )
        bar = _progress_bar(n_eval, f"{method} {backend}") if progress else None
        try:
            result = run(
                method, evaluator, space, n_eval, seed, bar.update if bar is not None else None
            )
        finally:
            if bar is not None:
                bar.close()
        source = {
            **source,
            **({"silent_takes": evaluator.silent} if hasattr(evaluator, "silent") else {}),
        }
        paths = write_outputs(result, evaluator, source, seed, out, color)
    finally:
        evaluator.close()
    return result, paths


def _progress_bar(total: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="sound", file=sys.stderr, leave=False)


def _cmd_explore(args: argparse.Namespace) -> int:
    budget = check_args(args)
    source = {"env": args.env_id} if args.env_id else {"plant": args.plant}
    result, paths = explore(
        source,
        args.backend,
        budget,
        tuple(args.axes),
        tuple(args.cells),
        args.seed,
        args.output,
        args.method,
        args.color,
        parse_hardware(args.hardware),
        progress=not args.quiet,
    )
    print(
        f"{result.method}: {result.filled} of {result.archive.cells} cells filled "
        f"(coverage {result.coverage:.1%}), QD-score {result.qd_score:.2f}, from "
        f"{result.evaluations} sounds ({result.takes} played)"
    )
    print("wrote " + ", ".join(str(p) for p in paths.values()) + f" and {args.output}/wav/")
    if result.stopped:  # the map of what was heard is written; the run still failed
        print(
            f"ddsp-gym: error: the device failed after {result.evaluations} sounds, "
            f"the map holds those: {result.stopped}",
            file=sys.stderr,
        )
        return 2
    return 0


def add_explore_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``explore`` on the top-level subparsers."""
    p = sub.add_parser(
        "explore",
        help="map a synth's knob space by timbre (MAP-Elites), with a clickable overview",
        description="Quality-diversity search (MAP-Elites, pyribs) over a plant's knobs: "
        "a grid over two timbre descriptors, each cell keeping its cleanest audible "
        "sound. Writes archive.json, wav/, map.png and index.html to the output folder.",
        epilog="descriptors: centroid (Hz), flatness, rolloff (Hz), loudness (dBFS), "
        "attack (s); see docs/explore.md",
    )
    p.add_argument(
        "env_id",
        nargs="?",
        default=None,
        help="an env id whose plant to explore (a device needs one)",
    )
    p.add_argument("--plant", default=None, metavar="NAME", help=", ".join(PLANT_NAMES))
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sim",
        help="sim (batched JAX renders), hardware (a synth over MIDI), plugin",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help=f"sounds to hear (sim default {DEFAULT_SIM_BUDGET})",
    )
    p.add_argument(
        "--takes",
        type=int,
        default=None,
        help=f"takes a device may play, the reset's included (default {DEFAULT_TAKES})",
    )
    p.add_argument(
        "--axes",
        nargs=2,
        default=["centroid", "flatness"],
        metavar="DESC",
        help=f"the map's x and y descriptors (default centroid flatness): "
        f"{' '.join(DESCRIPTOR_CHOICES)}",
    )
    p.add_argument(
        "--cells",
        nargs=2,
        type=int,
        default=[20, 20],
        metavar="N",
        help="cells along x and y (default 20 20)",
    )
    p.add_argument(
        "--color",
        default="loudness",
        help="what colours a cell: a descriptor or objective (default loudness)",
    )
    p.add_argument(
        "--method",
        choices=("map_elites", "random"),
        default="map_elites",
        help="map_elites (default) or the random-sampling baseline",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the search and the renders")
    p.add_argument(
        "--hardware",
        default=None,
        metavar="JSON",
        help="device options as a JSON object (see ddsp_gym/backends/README.md)",
    )
    p.add_argument(
        "-o",
        "--output",
        "--out",
        type=Path,
        default=Path("explore_out"),
        help="output folder (default explore_out)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_explore)
