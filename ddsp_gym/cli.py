"""The ``ddsp-gym`` command. Thin: parse arguments, call the library, print results.

Building the parser imports no JAX, no agents and no plants (``ddsp-gym --help`` answers
at once); each command imports what it runs. Exit status: 0 done, 1 the command ran but
its goal was not met (``match``: no match; ``demo``: a bar missed), 2 an error (one
``ddsp-gym: error: ...`` line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ddsp_gym.backends.commands import add_hw_parser, add_plugin_parser
from ddsp_gym.bench.commands import add_bench_parser, add_sweep_parser
from ddsp_gym.catalog import PLANT_NAMES, check_env_ids, check_plant
from ddsp_gym.coding.commands import add_codec_parser
from ddsp_gym.design.commands import add_design_parser
from ddsp_gym.explore.commands import add_explore_parser
from ddsp_gym.live.commands import add_live_parser
from ddsp_gym.physiology.commands import add_physiology_parser
from ddsp_gym.preference.commands import add_prefer_parser

EXIT_OK = 0
EXIT_NOT_MET = 1  # ran fine, but the goal was not met (no match, a demo bar missed)
EXIT_ERROR = 2  # bad arguments, unknown names, unreadable files, device errors
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = (
    "exit status: 0 done; 1 ran, but the goal was not met (match: no setting reached "
    "the success threshold; demo: a bar missed); 2 error (one 'ddsp-gym: error:' line); "
    "130 interrupted"
)


def _cmd_list(args: argparse.Namespace) -> int:
    from ddsp_gym.registry import load_registry

    entries = load_registry()
    width = max(len(e.id) for e in entries)
    for entry in entries:
        print(f"{entry.id:<{width}}  [{entry.seed_demo}] {entry.description}")
    return EXIT_OK


def parse_knob_values(pairs: Sequence[str]) -> dict[str, float]:
    """``["cutoff=800", ...]`` -> ``{"cutoff": 800.0}``; ValueError names a malformed pair."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--knobs takes NAME=VALUE pairs, got {pair!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"knob {name!r}: {value!r} is not a number") from None
    return values


def knob_range_errors(specs: Sequence[Any], values: Mapping[str, float]) -> list[str]:
    """One message per value outside its knob's range, naming the range and unit.

    A plant clamps knobs to their travel, so an out-of-range value would render a
    different sound than asked for; the command refuses it instead. ``specs`` are
    ``KnobSpec``-like (``name``, ``low``, ``high``, ``unit``).
    """
    errors = []
    for spec in specs:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if not spec.low <= value <= spec.high:  # NaN fails too
            unit = f" {spec.unit}" if spec.unit else ""
            errors.append(
                f"knob {spec.name!r}: {value:g}{unit} is outside its range "
                f"{spec.low:g} to {spec.high:g}{unit}"
            )
    return errors


def _cmd_render(args: argparse.Namespace) -> int:
    check_env_ids([args.env_id])
    values = parse_knob_values(args.knobs)
    import gymnasium as gym
    import jax
    import numpy as np

    from ddsp_gym.audio_io import save_audio

    env = gym.make(args.env_id).unwrapped
    plant = env.plant
    unknown = sorted(set(values) - set(plant.knob_names))
    if unknown:
        raise ValueError(f"{args.env_id} has no knob {unknown}; its knobs are {plant.knob_names}")
    errors = knob_range_errors(plant.knob_specs, values)
    if errors:
        raise ValueError("; ".join(errors))
    # Knobs not given sit at mid travel.
    full = {spec.name: float(spec.to_physical(0.5)) for spec in plant.knob_specs}
    full.update(values)
    knobs = plant.knobs_from_physical(full)
    audio = np.asarray(plant.render(knobs, jax.random.PRNGKey(args.seed), env.params.input_audio))
    path = save_audio(args.output, audio, plant.sample_rate)
    settings = ", ".join(f"{k}={v:g}" for k, v in full.items())
    seconds = len(audio) / plant.sample_rate
    print(f"wrote {path} ({seconds:.2f} s at {plant.sample_rate} Hz): {settings}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ddsp_gym.agents.demo import format_table, run_demo

    rows, passed = run_demo(args.output, args.seeds)
    print(format_table(rows))
    bar = "at least 90% of seeds solved on every env"
    print(f"\n{'PASS' if passed else 'FAIL'}: {bar}. Audio and pictures in {args.output}/")
    return EXIT_OK if passed else EXIT_NOT_MET


def _cmd_match(args: argparse.Namespace) -> int:
    if args.plant is not None:
        check_plant(args.plant)
    from ddsp_gym.agents.match import format_candidates, match_file

    result = match_file(
        args.target, args.plant, args.output, args.input, args.agent, args.steps, args.seed,
        posterior=args.posterior, coarse=not args.no_coarse,
    )  # fmt: skip
    unit = result.distance_unit
    if result.success:
        print(f"matched: distance {result.distance:.4g} {unit} after {result.steps} steps")
    else:
        print(
            f"no match: no setting reached the success threshold "
            f"({result.success_threshold:.4g} {unit}); best distance {result.distance:.4g} "
            f"{unit} after {result.steps} steps"
        )
    if result.candidates:
        print(format_candidates(result.candidates, result.plant))
    print("knobs: " + ", ".join(f"{k}={v:.4g}" for k, v in result.knobs.items()))
    if result.analysis is not None:
        print("target analysis: " + "; ".join(result.analysis.lines()))
    if result.posterior is not None:
        from ddsp_gym.posterior import format_lines

        units = {s.name: s.unit for s in result.posterior.plant.knob_specs}
        print(f"posterior (noise {result.posterior.noise_db:.2g} dB, the fit's residual):")
        print("\n".join("  " + line for line in format_lines(result.posterior, units)))
    print("wrote " + ", ".join(result.outputs.values()))
    return EXIT_OK if result.success else EXIT_NOT_MET


def _cmd_recovery(args: argparse.Namespace) -> int:
    check_env_ids(args.envs or [])
    from ddsp_gym.agents.recovery import format_table, run_recovery
    from ddsp_gym.registry import task_reward_ids

    rows = run_recovery(args.envs or task_reward_ids(), args.seeds, args.output)
    print(format_table(rows))
    print(f"\nwrote {args.output / 'recovery.json'} and {args.output / 'recovery.md'}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The whole command line. Imports nothing heavy: see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="ddsp-gym",
        description="Gymnasium envs in which agents play differentiable synths.",
        epilog=EXIT_STATUS_HELP,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered env ids and the demos they realize")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("render", help="render an env's plant at given knob values to a WAV")
    p.add_argument("env_id", help="e.g. ddsp_gym/SineTuner-v1 (`ddsp-gym list` shows all)")
    p.add_argument(
        "--knobs",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="physical knob values within each knob's range (unset knobs sit at mid travel)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output WAV path")
    p.add_argument("--seed", type=int, default=0, help="seed for noise sources")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser(
        "match",
        help="fit a plant's knobs to a WAV file",
        description="Fit a plant's knobs to a sound file with the gradient agent. The file "
        "is mixed down to mono, resampled and cut or padded to the plant's length as "
        "needed (each said once on stderr).",
        epilog="exit status: 0 matched (the best setting reached the success threshold); "
        "1 ran fine but no match (the outputs are written all the same); 2 error",
    )
    p.add_argument("target", type=Path, help="the sound to match (WAV, FLAC, ...)")
    p.add_argument(
        "--plant",
        default=None,
        metavar="NAME",
        help="force one plant: " + ", ".join(PLANT_NAMES) + ". Without it match chooses: "
        "a pitched target tries harmonic and fm2; an unpitched one harmonic; with "
        "--input, delay, reverb, compressor, distortion (gain when the wet file is the dry "
        "one at another level). --steps is split equally across the candidates; the one "
        "with the lowest heard distance (log-mel, both at equal RMS) is kept",
    )
    p.add_argument("--input", type=Path, default=None, help="dry signal for effect plants")
    p.add_argument("--agent", default="gradient", help="search agent (default gradient)")
    p.add_argument(
        "--steps",
        type=int,
        default=300,
        help="plant queries (default 300); a source plant spends 30%% of its share on a "
        "coarse CMA-ES search and the rest on gradient refinement",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for starts and restarts")
    p.add_argument("--posterior", action="store_true",
                   help="also sample p(knobs | target) by NUTS: medians and 90 %% intervals "
                   "in knobs.json, corner.png (docs/matching.md)")  # fmt: skip
    p.add_argument("--no-coarse", action="store_true",
                   help="skip the coarse CMA-ES stage: every query goes to the gradient "
                   "(an ablation; docs/matching.md)")  # fmt: skip
    p.add_argument("-o", "--output", type=Path, default=Path("match_out"), help="output folder")
    p.set_defaults(func=_cmd_match)

    p = sub.add_parser(
        "recovery", help="how often the gradient agent recovers hidden knob settings"
    )
    p.add_argument("--envs", nargs="*", metavar="ID", help="env ids (default: all)")
    p.add_argument("--seeds", type=int, default=20, help="hidden settings per env (default 20)")
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="results folder")
    p.set_defaults(func=_cmd_recovery)

    add_bench_parser(sub)
    add_sweep_parser(sub)

    p = sub.add_parser("demo", help="solve the Level-1 envs with the gradient agent")
    p.add_argument("--seeds", type=int, default=10, help="seeds per env (default 10)")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    p.set_defaults(func=_cmd_demo)

    add_hw_parser(sub)
    add_plugin_parser(sub)
    add_physiology_parser(sub)
    add_prefer_parser(sub)
    add_explore_parser(sub)
    add_codec_parser(sub)
    add_design_parser(sub)
    add_live_parser(sub)
    return parser


def print_notes_once(category: type[Warning]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each distinct ``category`` warning once, as
    one ``ddsp-gym: note: ...`` line on stderr, and shows other warnings as before.

    Use inside ``warnings.catch_warnings()``, which restores the original on exit.
    """
    original = warnings.showwarning
    seen: set[str] = set()

    def show(message, warning_category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(warning_category, category):
            original(message, warning_category, filename, lineno, file, line)
            return
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"ddsp-gym: note: {text}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is None:  # a command group given no command (`ddsp-gym bench`)
        group = args.help_parser
        group.print_help(sys.stderr)
        print(f"\n{group.prog}: error: choose one of the commands above", file=sys.stderr)
        return EXIT_ERROR
    from ddsp_gym.audio_io import AudioConversionWarning
    from ddsp_gym.backends.errors import HardwareError
    from ddsp_gym.runtime import tune_for_cpu

    tune_for_cpu()  # before the command's first JAX computation
    with warnings.catch_warnings():
        warnings.simplefilter("always", AudioConversionWarning)  # show() prints each once
        warnings.showwarning = print_notes_once(AudioConversionWarning)
        try:
            return args.func(args)
        except (ValueError, NotImplementedError, OSError, HardwareError) as err:
            print(f"ddsp-gym: error: {err}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("ddsp-gym: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
