"""The ``ddsp-gym`` command. Thin: parse arguments, call the library, print results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ddsp_gym.audio_io import AudioFileError
from ddsp_gym.backends.commands import add_hw_parser, add_plugin_parser
from ddsp_gym.backends.errors import HardwareError


def _cmd_list(args: argparse.Namespace) -> int:
    from ddsp_gym.registry import load_registry

    entries = load_registry()
    width = max(len(e.id) for e in entries)
    for entry in entries:
        print(f"{entry.id:<{width}}  [{entry.seed_demo}] {entry.description}")
    return 0


def _parse_knob_values(pairs: Sequence[str]) -> dict[str, float]:
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


def _cmd_render(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import jax
    import numpy as np

    import ddsp_gym  # noqa: F401  (registers the envs)
    from ddsp_gym.audio_io import save_audio

    env = gym.make(args.env_id).unwrapped
    plant = env.plant
    values = _parse_knob_values(args.knobs)
    unknown = sorted(set(values) - set(plant.knob_names))
    if unknown:
        raise ValueError(f"{args.env_id} has no knob {unknown}; its knobs are {plant.knob_names}")
    # Knobs not given sit at mid travel.
    full = {spec.name: float(spec.to_physical(0.5)) for spec in plant.knob_specs}
    full.update(values)
    knobs = plant.knobs_from_physical(full)
    audio = np.asarray(plant.render(knobs, jax.random.PRNGKey(args.seed), env.params.input_audio))
    path = save_audio(args.output, audio, plant.sample_rate)
    settings = ", ".join(f"{k}={v:g}" for k, v in full.items())
    seconds = len(audio) / plant.sample_rate
    print(f"wrote {path} ({seconds:.2f} s at {plant.sample_rate} Hz): {settings}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ddsp_gym.agents.demo import format_table, run_demo

    rows, passed = run_demo(args.output, args.seeds)
    print(format_table(rows))
    bar = "at least 90% of seeds solved on every env"
    print(f"\n{'PASS' if passed else 'FAIL'}: {bar}. Audio and pictures in {args.output}/")
    return 0 if passed else 1


def _agent_bench(args: argparse.Namespace) -> int:
    from ddsp_gym.agents.benchmark import format_table, run_benchmark

    command = "ddsp-gym bench" + (f" --envs {' '.join(args.envs)}" if args.envs else "")
    command += f" --agents {' '.join(args.agents)} --budget {args.budget} --seeds {args.seeds}"
    if args.train_queries:
        command += f" --train-queries {args.train_queries}"
    out = args.output / "bench.json"
    cells = run_benchmark(
        args.envs or None,
        args.agents,
        args.budget,
        args.seeds,
        out,
        args.train_queries,
        command=command,
    )
    print(format_table(cells))
    print(f"\nresults: {out} (+ .md, _curves.png); rerun the same command to resume")
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    from ddsp_gym.agents.match import match_file
    from ddsp_gym.plants import PLANTS

    if args.plant not in PLANTS:
        raise ValueError(f"unknown plant {args.plant!r}; known plants: {sorted(PLANTS)}")
    result = match_file(
        args.target, args.plant, args.output, args.input, args.agent, args.steps, args.seed
    )
    knobs = ", ".join(f"{k}={v:.4g}" for k, v in result.knobs.items())
    verdict = "matched" if result.success else "no setting reached the success threshold"
    print(
        f"{verdict}: distance {result.distance:.4g} {result.distance_unit} "
        f"after {result.steps} steps"
    )
    print(f"knobs: {knobs}")
    print("wrote " + ", ".join(result.outputs.values()))
    return 0


def _cmd_recovery(args: argparse.Namespace) -> int:
    import ddsp_gym
    from ddsp_gym.agents.recovery import format_table, run_recovery

    unknown = sorted(set(args.envs or []) - set(ddsp_gym.ENV_IDS))
    if unknown:
        raise ValueError(f"unknown env ids {unknown}; see `ddsp-gym list`")
    rows = run_recovery(args.envs or list(ddsp_gym.ENV_IDS), args.seeds, args.output)
    print(format_table(rows))
    print(f"\nwrote {args.output / 'recovery.json'} and {args.output / 'recovery.md'}")
    return 0


def _hw_bench(args: argparse.Namespace) -> int:
    import json

    from ddsp_gym.agents.benchmark import DEFAULT_AGENTS
    from ddsp_gym.agents.hw_bench import HW_AGENTS, format_table, run_hw_benchmark

    try:
        hardware = json.loads(args.hardware_json) if args.hardware_json else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--hardware-json is not JSON: {err}") from None
    # The sim bench's default agent list means "the default" here too: those that run on hardware.
    agents = args.agents if args.agents != list(DEFAULT_AGENTS) else list(HW_AGENTS)
    command = "ddsp-gym bench --backend hardware" + (
        f" --envs {' '.join(args.envs)}" if args.envs else ""
    )
    if args.hardware_json:
        command += f" --hardware-json '{args.hardware_json}'"
    if args.knobs:
        command += f" --knobs {' '.join(args.knobs)}"
    command += f" --agents {' '.join(agents)} --budget {args.budget} --seeds {args.seeds}"
    out = args.output / "hw_bench.json"
    cells = run_hw_benchmark(
        args.envs or None, agents, args.budget, args.seeds, out, hardware, args.knobs, True, command
    )
    print(format_table(cells))
    print(f"\nresults: {out} (+ .md); rerun the same command to resume at the next seed")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.backend == "hardware":
        return _hw_bench(args)
    if not args.perf:
        return _agent_bench(args)
    from ddsp_gym.bench.perf import run_perf
    from ddsp_gym.bench.report import format_markdown
    from ddsp_gym.bench.settings import settings_for

    settings = settings_for(
        args.quick,
        env_ids=tuple(args.envs) if args.envs else None,
        plants=tuple(args.plants) if args.plants else None,
    )
    results = run_perf(args.output, settings)
    print(format_markdown(results))
    print(f"wrote {args.output / 'perf.json'} and {args.output / 'perf.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddsp-gym", description="Gymnasium envs in which agents play differentiable synths."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered env ids and the demos they realize")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("render", help="render an env's plant at given knob values to a WAV")
    p.add_argument("env_id", help="e.g. ddsp_gym/SineTuner-v0")
    p.add_argument(
        "--knobs",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="physical knob values (unset knobs sit at mid travel)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output WAV path")
    p.add_argument("--seed", type=int, default=0, help="seed for noise sources")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("match", help="fit a plant's knobs to a WAV file")
    p.add_argument("target", type=Path, help="the sound to match (WAV, FLAC, ...)")
    p.add_argument("--plant", required=True, help="plant name (see ddsp_gym/plants)")
    p.add_argument("--input", type=Path, default=None, help="dry signal for effect plants")
    p.add_argument("--agent", default="gradient", help="search agent (default gradient)")
    p.add_argument("--steps", type=int, default=300, help="plant queries (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed for starts and restarts")
    p.add_argument("-o", "--output", type=Path, default=Path("match_out"), help="output folder")
    p.set_defaults(func=_cmd_match)

    p = sub.add_parser(
        "recovery", help="how often the gradient agent recovers hidden knob settings"
    )
    p.add_argument("--envs", nargs="*", help="env ids (default: all)")
    p.add_argument("--seeds", type=int, default=20, help="hidden settings per env (default 20)")
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="results folder")
    p.set_defaults(func=_cmd_recovery)

    from ddsp_gym.agents.benchmark import DEFAULT_AGENTS

    p = sub.add_parser(
        "bench",
        help="compare agents on envs with equal query budgets (--perf: speed of plants and envs)",
    )
    p.add_argument(
        "--perf", action="store_true", help="measure render, gradient and env-step speed"
    )
    p.add_argument("--quick", action="store_true", help="--perf: a smoke-test run (under 2 min)")
    p.add_argument("--envs", nargs="*", help="env ids (default: all)")
    p.add_argument("--plants", nargs="*", help="--perf: plant names (default: all)")
    p.add_argument(
        "--agents",
        nargs="+",
        default=list(DEFAULT_AGENTS),
        metavar="NAME",
        help="random cma gradient hybrid ppo sac td3 amortized (default: the first 4)",
    )
    p.add_argument("--budget", type=int, default=200, help="plant queries per target (200)")
    p.add_argument("--seeds", type=int, default=20, help="held-out targets per env (20)")
    p.add_argument(
        "--train-queries",
        type=int,
        default=None,
        help="training queries of ppo/sac/td3/amortized (default budget * seeds)",
    )
    p.add_argument(
        "--backend",
        choices=("sim", "hardware"),
        default="sim",
        help="hardware: random, cma and hybrid on a real synth (default env RealSynthPatch-v0, "
        "budget: use e.g. 60), results in hw_bench.json/.md",
    )
    p.add_argument(
        "--hardware-json", default=None, help="hardware options as JSON (see backends/README.md)"
    )
    p.add_argument(
        "--knobs",
        nargs="+",
        default=None,
        metavar="NAME",
        help="--backend hardware: search only these knobs; the others sit at the hidden patch's",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="results folder")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("demo", help="solve the Level-1 envs with the gradient agent")
    p.add_argument("--seeds", type=int, default=10, help="seeds per env (default 10)")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    p.set_defaults(func=_cmd_demo)

    add_hw_parser(sub)
    add_plugin_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ddsp_gym.runtime import tune_for_cpu

    tune_for_cpu()  # before the command's first JAX computation
    try:
        return args.func(args)
    except (AudioFileError, ValueError, NotImplementedError, OSError, HardwareError) as err:
        print(f"ddsp-gym: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ddsp-gym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
