"""``ddsp-gym bench agents | perf | hw``: each benchmark a subcommand with its own flags.

Thin: parse, check names, call the benchmark, print its table. Building the parser
imports nothing heavy (no JAX, no agents): those load inside the command that runs.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path

from ddsp_gym.bench.meta_abs import add_meta_bench_parser
from ddsp_gym.bench.posterior_sbc import add_posterior_bench_parser
from ddsp_gym.catalog import (
    DEFAULT_AGENTS,
    DEFAULT_HW_ENV,
    DEFAULT_RL_ENVS,
    HW_AGENTS,
    JAX_RL_ALGOS,
    PLANT_NAMES,
    RL_ALGOS,
    SEARCH_AGENTS,
    TRAINED_AGENTS,
    check_env_ids,
    check_plant,
)


def agents_command(
    envs: Sequence[str] | None,
    agents: Sequence[str],
    budget: int,
    seeds: int,
    train_queries: int | None,
) -> str:
    """The ``bench agents`` command line that makes these cells, stored with each cell so
    its results file says how to remake (or resume) it."""
    words = ["ddsp-gym", "bench", "agents"]
    if envs:
        words += ["--envs", *envs]
    words += ["--agents", *agents, "--budget", str(budget), "--seeds", str(seeds)]
    if train_queries:
        words += ["--train-queries", str(train_queries)]
    return shlex.join(words)


def hw_command(
    envs: Sequence[str] | None,
    hardware_json: str | None,
    knobs: Sequence[str] | None,
    agents: Sequence[str],
    budget: int,
    seeds: int,
    blind: bool = False,
    name: str = "hw_bench",
) -> str:
    """The ``bench hw`` command line that makes these cells (see :func:`agents_command`)."""
    words = ["ddsp-gym", "bench", "hw"]
    if envs:
        words += ["--envs", *envs]
    if hardware_json:
        words += ["--hardware-json", hardware_json]
    if knobs:
        words += ["--knobs", *knobs]
    if blind:
        words += ["--blind-targets"]
    words += ["--agents", *agents, "--budget", str(budget), "--seeds", str(seeds)]
    if name != "hw_bench":
        words += ["--name", name]
    return shlex.join(words)


def rl_command(
    envs: Sequence[str] | None,
    algos: Sequence[str],
    seeds: int,
    steps: int,
    eval_points: int,
    targets: int,
    budget: int,
) -> str:
    """The ``bench rl`` command line that makes these runs (see :func:`agents_command`)."""
    words = ["ddsp-gym", "bench", "rl"]
    if envs:
        words += ["--envs", *envs]
    words += ["--algos", *algos, "--seeds", str(seeds), "--steps", str(steps)]
    words += ["--eval-points", str(eval_points), "--targets", str(targets)]
    words += ["--budget", str(budget)]
    return shlex.join(words)


def _cmd_rl(args: argparse.Namespace) -> int:
    check_env_ids(args.envs or [])
    from ddsp_gym.agents.rl_bench import run_rl_benchmark

    command = rl_command(
        args.envs, args.algos, args.seeds, args.steps, args.eval_points, args.targets,
        args.budget,
    )  # fmt: skip
    out = args.output / "rl_bench.json"
    extra = {}
    if args.ray is not None:  # the same runs and records, as Ray tasks (the ray extra)
        from ddsp_gym.agents.ray_runs import ray_runner, require_ray

        require_ray()  # a missing extra is said before any run
        extra["runner"] = ray_runner(args.ray or None, args.ray_cpus)
    run_rl_benchmark(
        args.envs or None, args.algos, args.seeds, args.steps, args.eval_points,
        args.targets, args.budget, out, command, **extra,
    )  # fmt: skip
    print(out.with_suffix(".md").read_text())
    print(f"results: {out} (+ .md, .png); rerun the same command to resume")
    return 0


THROUGHPUT_ENVS = ("ddsp_gym/SineTuner-v1", "ddsp_gym/CutoffSweeper-v1")


def _cmd_rl_throughput(args: argparse.Namespace) -> int:
    check_env_ids(args.envs)
    for name in ("num_envs", "updates", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    from ddsp_gym.agents.rl_throughput import run_throughput

    words = ["ddsp-gym", "bench", "rl-throughput", "--envs", *args.envs]
    words += ["--num-envs", str(args.num_envs), "--updates", str(args.updates)]
    words += ["--repeats", str(args.repeats)] + (["--no-sb3"] if args.no_sb3 else [])
    out = args.output / "rl_throughput.json"
    run_throughput(
        args.envs, args.num_envs, args.updates, args.repeats, out, shlex.join(words),
        sb3=not args.no_sb3,
    )  # fmt: skip
    print(out.with_suffix(".md").read_text())
    print(f"results: {out} (+ .md)")
    return 0


def _cmd_agents(args: argparse.Namespace) -> int:
    check_env_ids(args.envs or [])
    from ddsp_gym.agents.benchmark import format_table, run_benchmark

    agents = args.agents or list(DEFAULT_AGENTS)
    command = agents_command(args.envs, agents, args.budget, args.seeds, args.train_queries)
    out = args.output / "bench.json"
    cells = run_benchmark(
        args.envs or None,
        agents,
        args.budget,
        args.seeds,
        out,
        args.train_queries,
        command=command,
    )
    print(format_table(cells))
    print(f"\nresults: {out} (+ .md, _curves.png); rerun the same command to resume")
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    check_env_ids(args.envs or [])
    for plant in args.plants or []:
        check_plant(plant)
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


def _cmd_hw(args: argparse.Namespace) -> int:
    import json

    check_env_ids(args.envs or [])
    try:
        hardware = json.loads(args.hardware_json) if args.hardware_json else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--hardware-json is not JSON: {err}") from None
    if not isinstance(hardware, dict):
        raise ValueError("--hardware-json must be a JSON object of hardware options")
    from ddsp_gym.agents.hw_bench import format_table, run_hw_benchmark

    command = hw_command(
        args.envs, args.hardware_json, args.knobs, args.agents, args.budget, args.seeds,
        args.blind_targets, args.name,
    )  # fmt: skip
    out = args.output / f"{args.name}.json"
    cells = run_hw_benchmark(
        args.envs or None,
        args.agents,
        args.budget,
        args.seeds,
        out,
        hardware,
        args.knobs,
        True,
        command,
        blind=args.blind_targets,
    )
    print(format_table(cells))
    print(f"\nresults: {out} (+ .md); rerun the same command to resume at the next seed")
    return 0


MATCH_KINDS = ("instrument", "vowel", "delay", "distortion", "compressor", "reverb", "chain")


def _cmd_match(args: argparse.Namespace) -> int:
    from ddsp_gym.bench.match_eval import run_bench_match

    unknown = sorted(set(args.kinds or ()) - set(MATCH_KINDS))
    if unknown:
        raise ValueError(f"unknown case kinds {unknown}; choose from {list(MATCH_KINDS)}")
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    words = ["ddsp-gym", "bench", "match", "--steps", str(args.steps)]
    if args.kinds:
        words += ["--kinds", *args.kinds]
    if args.coarse_ablation:
        return _coarse_ablation(args, words + ["--coarse-ablation"])
    if not args.name or "/" in args.name:
        raise ValueError(f"--name must be a file stem, got {args.name!r}")
    if args.no_previous:
        words.append("--no-previous")
    if args.name != "match_eval":
        words += ["--name", args.name]
    summary = run_bench_match(
        args.set, args.output, args.steps, args.seed, not args.no_previous, args.kinds,
        shlex.join(words), args.name,
    )  # fmt: skip
    for kind, entry in summary.items():
        print(
            f"{kind:<11} {entry['pass_now']:>2}/{entry['cases']} pass (target "
            f"{100 * entry['target_rate']:.0f} %: {'met' if entry['met'] else 'not met'})"
        )
    print(f"wrote {args.output / (args.name + '.json')} and {args.output / (args.name + '.md')}")
    return 0


def _coarse_ablation(args: argparse.Namespace, words: list[str]) -> int:
    from ddsp_gym.bench.match_eval import run_coarse_ablation

    summary = run_coarse_ablation(
        args.set, args.output, args.steps, args.seed, args.kinds, shlex.join(words)
    )
    for kind, s in summary.items():
        heard = f"{s['median_heard_db_coarse']:.2f} vs {s['median_heard_db_no_coarse']:.2f} dB"
        print(f"{kind:<11} pass {s['pass_coarse']}/{s['cases']} with the coarse stage, "
              f"{s['pass_no_coarse']}/{s['cases']} without; median heard {heard}")  # fmt: skip
    print(f"wrote {args.output / 'match_coarse_ablation.json'} (+ .md)")
    return 0


def _add_match_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "match",
        help="ddsp-gym match on sounds other software made (instruments, vowels, effects)",
        description="Builds an evaluation set with FluidSynth (General MIDI notes), espeak-ng "
        "(vowels) and sox (echo, overdrive, compand, reverb at recorded settings), fits each "
        "case with match now and as it was (no analysis), and scores the knobs against the "
        "truth; writes match_eval.json and match_eval.md. Needs the Debian packages "
        "fluidsynth, timgm6mb-soundfont, espeak-ng and sox.",
    )
    p.add_argument("--set", type=Path, default=Path("match_evalset"),
                   help="the set's folder; built there when it has no cases.json")  # fmt: skip
    p.add_argument("--kinds", nargs="*", metavar="KIND", help=" ".join(MATCH_KINDS))
    p.add_argument("--steps", type=int, default=200, help="plant queries per fit (200)")
    p.add_argument("--seed", type=int, default=0, help="seed of every fit (0)")
    p.add_argument("--no-previous", action="store_true", help="skip the analysis-free fits")
    p.add_argument("--coarse-ablation", action="store_true",
                   help="fit the instrument and effect cases (or --kinds) with and "
                   "without the coarse stage; writes match_coarse_ablation.json, .md")  # fmt: skip
    p.add_argument("--name", default="match_eval",
                   help="results file stem: writes NAME.json and NAME.md (match_eval)")  # fmt: skip
    _output_arg(p)
    p.set_defaults(func=_cmd_match)


def _cmd_chain(args: argparse.Namespace) -> int:
    from ddsp_gym.bench.match_chain import run_bench_chain

    if args.steps < 4:
        raise ValueError(f"--steps must be at least 4 (three stages and the refinement), got "
                         f"{args.steps}")  # fmt: skip
    words = ["ddsp-gym", "bench", "chain", "--steps", str(args.steps), "--seeds",
             *map(str, args.seeds)]  # fmt: skip
    summary = run_bench_chain(args.set, args.output, args.steps, args.seeds, shlex.join(words))
    for mode, s in summary.items():
        print(f"{mode:<7} {s['pass']}/{s['fits']} pass; median heard {s['median_heard_db']:.2f} dB")
    print(f"wrote {args.output / 'match_chain.json'} and {args.output / 'match_chain.md'}")
    return 0


def _add_chain_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "chain",
        help="staged vs joint match of the saw -> low-pass -> echo chain on sox's chains",
        description="Builds the evaluation set's chain cases with sox (a sawtooth note, "
        "lowpass, echo at recorded settings), fits each with the saw_chain plant stage by "
        "stage and jointly (same steps and seeds), scores pitch, cutoff and echo time; "
        "writes match_chain.json and match_chain.md.",
    )
    p.add_argument("--set", type=Path, default=Path("match_chainset"),
                   help="the chain cases' folder; built there without cases.json")  # fmt: skip
    p.add_argument("--steps", type=int, default=200, help="plant queries per fit (200)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the fits (0)")
    _output_arg(p)
    p.set_defaults(func=_cmd_chain)


def _output_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", type=Path, default=Path("results"), help="results folder (results)"
    )


def _ray_args(p: argparse.ArgumentParser, flag: str, help: str) -> None:
    """``flag [ADDRESS]`` (``--ray``: optional, its value optional) and ``--ray-cpus``."""
    if flag == "--ray":
        p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help=help)
    else:
        p.add_argument(flag, metavar="ADDRESS", help=help)
    p.add_argument("--ray-cpus", type=int, metavar="N", help="CPUs of a local Ray (default: all)")


def sweep_command(args: argparse.Namespace) -> str:
    """The ``sweep`` command line that makes these trials (its address left out: where
    the trials ran does not change them)."""
    words = ["ddsp-gym", "sweep", args.env_id, "--algo", args.algo]
    for param in args.param:
        words += ["--param", param]
    words += ["--trials", str(args.trials), "--steps", str(args.steps)]
    words += ["--eval-points", str(args.eval_points), "--targets", str(args.targets)]
    words += ["--budget", str(args.budget), "--seed", str(args.seed)]
    return shlex.join(words)


def _cmd_sweep(args: argparse.Namespace) -> int:
    check_env_ids([args.env_id])
    from ddsp_gym.agents import provenance
    from ddsp_gym.agents.ray_runs import (
        check_params,
        parse_param,
        require_ray,
        run_sweep,
        write_sweep,
    )

    specs = [parse_param(p) for p in args.param]
    check_params(args.algo, specs, args.env_id)  # bad input is said with or without Ray
    require_ray()
    result = run_sweep(
        args.env_id, args.algo, specs, args.trials, args.steps, args.eval_points,
        args.targets, args.budget, args.seed, args.address, args.ray_cpus,
    )  # fmt: skip
    name = args.name or f"sweep_{args.env_id.split('/')[-1]}_{args.algo}"
    document = {
        "command": sweep_command(args),
        provenance.VERSION_KEY: provenance.code_version(),
        "env": args.env_id, "algo": args.algo, "space": args.param, "seed": args.seed,
        "steps": args.steps, "eval_points": args.eval_points, "targets": args.targets,
        "budget": args.budget, **result,
    }  # fmt: skip
    out = write_sweep(document, args.output / f"{name}.json")
    print(out.with_suffix(".md").read_text())
    print(f"results: {out} (+ .md)")
    return 0 if result["best"] is not None else 1


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``sweep`` (Ray Tune) on the top-level subparsers."""
    p = sub.add_parser(
        "sweep",
        help="hyperparameter sweep of an SB3 algorithm on an env, as Ray Tune trials",
        description="Draws --trials configurations of the given hyperparameters (the "
        "others from agents/hyperparams/ALGO.yaml), trains each for --steps env steps "
        "from the same seed as one Ray Tune trial of one CPU, scores its deterministic "
        "policy on held-out targets, and writes every trial and the best config to "
        "sweep_<env>_<algo>.json and .md. Needs the ray extra (docs/ray.md).",
        epilog="PARAM: NAME=uniform:LOW:HIGH, NAME=loguniform:LOW:HIGH, NAME=int:LOW:HIGH, "
        "NAME=logint:LOW:HIGH (ends included), NAME=choice:A,B,... (YAML values, e.g. "
        "policy_kwargs.net_arch=choice:[64,64],[256,256]), or NAME=VALUE (fixed). "
        "exit status: 0 done; 1 no trial finished; 2 error",
    )
    p.add_argument("env_id", help="e.g. ddsp_gym/VolumeMatch-v1 (`ddsp-gym list` shows all)")
    p.add_argument("--algo", default="ppo", choices=RL_ALGOS, help="SB3 algorithm (ppo)")
    p.add_argument(
        "--param", action="append", required=True, metavar="PARAM",
        help="a hyperparameter and its distribution (repeat the flag; see below)",
    )  # fmt: skip
    p.add_argument("--trials", type=int, default=8, help="configurations drawn (8)")
    p.add_argument("--steps", type=int, default=50_000, help="training env steps per trial")
    p.add_argument("--eval-points", type=int, default=2, help="evaluations per trial (2)")
    p.add_argument("--targets", type=int, default=20, help="held-out targets (20)")
    p.add_argument("--budget", type=int, default=200, help="env steps per held-out target (200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws and of training (0)")
    _ray_args(p, "--address", "the Ray cluster ('auto': the one `ray start` runs here; "
              "default: RAY_ADDRESS when set, else a local Ray)")  # fmt: skip
    p.add_argument("--name", help="results file name (default sweep_<env>_<algo>)")
    _output_arg(p)
    p.set_defaults(func=_cmd_sweep)


def _cmd_prefer(args: argparse.Namespace) -> int:
    from ddsp_gym.preference.bench import (
        ALL_STRATEGIES,
        STRATEGIES,
        format_markdown,
        run_prefer_bench,
        write_results,
    )

    unknown = sorted(set(args.strategies or ()) - set(ALL_STRATEGIES))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; known: {sorted(ALL_STRATEGIES)}")
    strategies = {name: ALL_STRATEGIES[name] for name in (args.strategies or STRATEGIES)}
    # A noiseless rater: how good each search is when no vote is wrong (its ceiling).
    rater = {"temperature": 0.0, "flip_rate": 0.0} if args.noiseless else None
    results = run_prefer_bench(seeds=args.seeds, votes_grid=tuple(args.votes),
                               strategies=strategies, first_seed=args.first_seed,
                               rater_options=rater,
                               search_seed_offset=args.search_seed_offset)  # fmt: skip
    paths = write_results(results, args.output)
    print(format_markdown(results))
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def add_prefer_bench_parser(bench_sub: argparse._SubParsersAction) -> None:
    """Register ``bench prefer`` (the simulated-rater preference benchmark)."""
    p = bench_sub.add_parser(
        "prefer",
        help="preference searches on a simulated rater: found patch's true utility per vote count",
        description="Random pairs, plain CMA-ES on noisy votes and the learned GP search "
        "against a simulated rater (hidden target timbre, noisy votes) on the 4-knob "
        "subtractive synth; writes prefer_bench.json, .md and .png.",
    )
    p.add_argument("--seeds", type=int, default=10, help="hidden tastes (10)")
    p.add_argument("--votes", type=int, nargs="+", default=[10, 20, 30, 40, 60], metavar="N",
                   help="vote counts to score (10 20 30 40 60)")  # fmt: skip
    p.add_argument("--first-seed", type=int, default=0,
                   help="first hidden taste (0); e.g. 10 for held-out tastes")  # fmt: skip
    p.add_argument("--strategies", nargs="+", metavar="NAME",
                   help="compare these (default preference/bench.py's STRATEGIES; also "
                   "model-ucb, model-v1, ideal)")  # fmt: skip
    p.add_argument("--noiseless", action="store_true",
                   help="a rater never wrong (temperature 0, no flips): the ceiling")  # fmt: skip
    p.add_argument("--search-seed-offset", type=int, default=1000, metavar="K",
                   help="seed each search with seed + K (1000); 0 reproduces the figures "
                   "made before the leak was found: the taste's own seed, whose random "
                   "first looks include the hidden target (docs/preference.md)")  # fmt: skip
    _output_arg(p)
    p.set_defaults(func=_cmd_prefer)


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``bench agents | perf | hw`` on the top-level subparsers.

    ``bench`` alone has no ``func``: ``ddsp_gym.cli.main`` prints its help and exits 2.
    """
    bench = sub.add_parser(
        "bench",
        help="benchmarks: agents on envs, speed of plants and envs, agents on a real synth",
        description="Benchmarks. Choose one: agents, meta, perf, hw, rl, rl-throughput, match, "
        "chain, prefer or posterior.",
    )
    bench.set_defaults(func=None, help_parser=bench)
    bench_sub = bench.add_subparsers(dest="bench_command", title="benchmarks", metavar="WHAT")

    p = bench_sub.add_parser(
        "agents",
        help="compare agents on envs: same held-out targets, same query budget",
        description="Every agent on every env over the same held-out targets with the same "
        "query budget; writes bench.json, bench.md and bench_curves.png, cell by cell "
        "(a rerun of the same command resumes).",
    )
    p.add_argument("--envs", nargs="*", metavar="ID", help="env ids (default: all)")
    p.add_argument(
        "--agents",
        nargs="+",
        default=None,
        metavar="NAME",
        help=" ".join(SEARCH_AGENTS + TRAINED_AGENTS) + f" (default: {' '.join(DEFAULT_AGENTS)})",
    )
    p.add_argument("--budget", type=int, default=200, help="plant queries per target (200)")
    p.add_argument("--seeds", type=int, default=20, help="held-out targets per env (20)")
    p.add_argument(
        "--train-queries",
        type=int,
        default=None,
        help="training queries of ppo/sac/td3/amortized (default budget * seeds)",
    )
    _output_arg(p)
    p.set_defaults(func=_cmd_agents)
    add_meta_bench_parser(bench_sub)
    add_posterior_bench_parser(bench_sub)

    p = bench_sub.add_parser(
        "perf",
        help="speed: render, gradient and env-step rates of every plant and env",
        description="Render and gradient throughput per plant, compile times, memory, and "
        "env steps/s in every way an env can be stepped; writes perf.json and perf.md.",
    )
    p.add_argument("--quick", action="store_true", help="a smoke-test run (one env by default)")
    p.add_argument("--envs", nargs="*", metavar="ID", help="env ids (default: all)")
    p.add_argument(
        "--plants",
        nargs="*",
        metavar="NAME",
        help=f"plants (default: all): {' '.join(PLANT_NAMES)}",
    )
    _output_arg(p)
    p.set_defaults(func=_cmd_perf)

    p = bench_sub.add_parser(
        "hw",
        help="search agents on a real synth (backend='hardware'), every query a take",
        description="Search agents on hidden patches played on a real synth (or the software "
        "rig's amsynth); writes hw_bench.json and hw_bench.md, seed by seed (a rerun of the "
        "same command resumes at the next seed).",
    )
    p.add_argument("--envs", nargs="*", metavar="ID", help=f"env ids (default: {DEFAULT_HW_ENV})")
    p.add_argument(
        "--agents",
        nargs="+",
        default=list(HW_AGENTS),
        metavar="NAME",
        help=f"{' '.join(HW_AGENTS)} (default: all three; gradient needs a sim env)",
    )
    p.add_argument("--budget", type=int, default=60, help="takes per hidden patch (60)")
    p.add_argument("--seeds", type=int, default=10, help="hidden patches per env (10)")
    p.add_argument(
        "--hardware-json",
        default=None,
        metavar="JSON",
        help="hardware options as a JSON object (see ddsp_gym/backends/README.md)",
    )
    p.add_argument(
        "--knobs",
        nargs="+",
        default=None,
        metavar="NAME",
        help="search only these knobs; the others sit at the hidden patch's values",
    )
    p.add_argument(
        "--blind-targets",
        action="store_true",
        help="record each hidden patch once as a WAV and give the agents only that sound "
        "(target=); success by the device's noise-aware rule",
    )
    p.add_argument(
        "--name", default="hw_bench", help="results file name (hw_bench: hw_bench.json, .md)"
    )
    _output_arg(p)
    p.set_defaults(func=_cmd_hw)

    p = bench_sub.add_parser(
        "rl",
        help="RL algorithms x envs x seeds at a fixed step budget, scored on held-out targets",
        description="Trains each algorithm on each env from each seed, scores its "
        "deterministic policy on held-out targets at evenly spaced points (learning curves), "
        "and reports the IQM of held-out success with bootstrap confidence intervals and "
        "scores normalized by the search agents (rliable); writes rl_bench.json, .md and "
        ".png, run by run (a rerun of the same command resumes).",
    )
    p.add_argument(
        "--envs", nargs="*", metavar="ID", help=f"env ids (default: {' '.join(DEFAULT_RL_ENVS)})"
    )
    p.add_argument(
        "--algos",
        nargs="+",
        default=list(RL_ALGOS),
        metavar="NAME",
        help=" ".join(RL_ALGOS + JAX_RL_ALGOS) + f" (default: {' '.join(RL_ALGOS)})",
    )
    p.add_argument("--seeds", type=int, default=5, help="training seeds per env and algo (5)")
    p.add_argument("--steps", type=int, default=100_000, help="training env steps per run")
    p.add_argument(
        "--eval-points", type=int, default=5, help="evaluations per run, evenly spaced (5)"
    )
    p.add_argument("--targets", type=int, default=20, help="held-out targets (20)")
    p.add_argument("--budget", type=int, default=200, help="env steps per held-out target (200)")
    _ray_args(p, "--ray", "run each (env, algo, seed) as a Ray task of one CPU: on the "
              "cluster at ADDRESS ('auto': the one `ray start` runs here), else at RAY_ADDRESS "
              "when set, else on a local Ray (the ray extra; docs/ray.md)")  # fmt: skip
    _output_arg(p)
    p.set_defaults(func=_cmd_rl)

    add_prefer_bench_parser(bench_sub)

    p = bench_sub.add_parser(
        "rl-throughput",
        help="JAX PPO's training rate against the vector env's stepping rate and SB3 PPO's",
        description="Measures, in one process, env steps/s of the native vector env "
        "(random actions), the same step in a jitted scan, JAX PPO training and SB3 PPO "
        "training at the same batch; writes rl_throughput.json and .md with the ratios.",
    )
    p.add_argument("--envs", nargs="+", default=list(THROUGHPUT_ENVS), metavar="ID", help="env ids")
    p.add_argument("--num-envs", type=int, default=64, help="envs stepped together (64)")
    p.add_argument("--updates", type=int, default=4, help="PPO updates per timed run (4)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the median counts (3)")
    p.add_argument("--no-sb3", action="store_true", help="skip SB3 PPO")
    _output_arg(p)
    p.set_defaults(func=_cmd_rl_throughput)

    _add_match_parser(bench_sub)
    _add_chain_parser(bench_sub)
