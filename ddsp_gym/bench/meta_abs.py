"""``ddsp-gym bench meta``: the meta-learned gradient agent vs the hand-set agents.

Per env: meta-train :class:`ddsp_gym.agents.meta.MetaSettings` on training targets
(reset seeds ``0..targets-1``), save them to ``results/meta_abs/<env>.json``, then score
the learned agent, the hand-set :class:`GradientAgent` and the hand-set
:class:`HybridAgent` on the same held-out targets (reset seeds ``EVAL_SEED_OFFSET + i``)
with the same query budget. Success is the env's own rule; medians of the best
distance; 95 % bootstrap CIs (numpy, percentile) of the success rate and of the median.
Written to ``results/meta_abs.{json,md}``; every outcome is reported.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the CLI imports this module: JAX and the agents load in the command
    from ddsp_gym.agents.base import SolveResult

# Envs where the hand-set gradient agent leaves targets unsolved (results/bench.md, 200
# queries). "auto" picks the meta-training method per env from the meta-gradient's
# consistency across training batches (agents/meta.py: diagnose_meta_gradient).
DEFAULT_ENVS: dict[str, str] = {
    "ddsp_gym/FMBell-v1": "auto",
    "ddsp_gym/FormantVowel-v1": "auto",
    "ddsp_gym/PlateauEscape-v1": "auto",
}
METHOD_WHY = {
    "grad": "the meta-gradients of disjoint training batches agree (mean cosine >= 0.3) "
    "and none blows up (max/median norm <= 100): follow them with Adam",
    "cma": "the unrolled meta-gradient is chaotic (batches disagree or a norm blows up): "
    "CMA-ES over the same settings on the forward meta-loss",
}
AGENTS = ("meta-gradient", "meta-gradient, env start", "gradient", "hybrid")


def bootstrap_ci(
    values: Sequence[float], stat=np.mean, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of ``stat`` over ``values``."""
    data = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), (resamples, len(data)))
    stats = np.apply_along_axis(stat, 1, data[picks])
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def summarize(
    env_id: str, agent: str, results: Sequence[SolveResult], budget: int, unit: str = ""
) -> dict:
    """One row: success rate and median best distance with bootstrap CIs."""
    success = [float(r.success) for r in results]
    best = [r.best_distance for r in results]
    return {
        "env": env_id,
        "agent": agent,
        "budget": budget,
        "targets": len(results),
        "successes": int(sum(success)),
        "success_rate": float(np.mean(success)),
        "success_ci95": bootstrap_ci(success),
        "median_best_distance": float(np.median(best)),
        "distance_unit": unit,
        "median_best_distance_ci95": bootstrap_ci(best, np.median),
        "median_queries": float(np.median([r.queries for r in results])),
        "wall_s": float(sum(r.wall_s for r in results)),
    }


def run_env(
    env_id: str,
    method: str,
    budget: int,
    seeds: int,
    config_overrides: dict[str, Any],
    settings_dir: Path,
) -> tuple[list[dict], dict]:
    """Meta-train on one env, then score the learned agent, its ablation and the hand-set
    agents on its held-out targets."""
    from dataclasses import replace

    from ddsp_gym.agents.benchmark import eval_seeds, make_eval_env
    from ddsp_gym.agents.gradient import GradientAgent
    from ddsp_gym.agents.hybrid import HybridAgent
    from ddsp_gym.agents.meta import MetaConfig, MetaGradientAgent, meta_train

    held_out = eval_seeds(seeds)
    config = MetaConfig(method=method, **config_overrides)
    settings = meta_train(env_id, config, held_out)
    path = settings.to_json(settings_dir / f"{env_id.split('/')[-1]}.json")
    env = make_eval_env(env_id, budget)
    learned = MetaGradientAgent.from_file(path, env)
    agents = {
        "meta-gradient": learned,
        # Ablation: the learned step sizes, decay and momentum from the env's own random
        # start, as the hand-set agents start: how much of any gain is the start point.
        "meta-gradient, env start": MetaGradientAgent(
            settings=replace(learned.settings, start=None)
        ),
        "gradient": GradientAgent(),
        "hybrid": HybridAgent(),
    }
    rows = []
    for name, agent in agents.items():
        results = [agent.solve(env, seed, budget) for seed in held_out]
        rows.append(summarize(env_id, name, results, budget, env.unwrapped.task.distance_unit))
    env.close()
    training = {
        "env": env_id,
        "settings_file": str(path),
        "why": METHOD_WHY[settings.training["method"]],
        **{k: v for k, v in settings.training.items() if k != "batch_losses"},
        "learning_rates": settings.learning_rates,
        "decay": settings.decay,
        "b1": settings.b1,
        "start": settings.start,
    }
    return rows, training


def format_report(document: dict) -> str:
    """results/meta_abs.md: the comparison table and the meta-training table."""
    lines = [
        f"# Meta-AbS: learned vs hand-set optimizer ({document['budget']} queries per "
        f"target, {document['seeds']} held-out targets per env)",
        "",
        "| env | agent | success | success 95% CI | median best distance (95% CI) |",
        "|---|---|---|---|---|",
    ]
    for r in document["rows"]:
        lo, hi = r["success_ci95"]
        dlo, dhi = r["median_best_distance_ci95"]
        lines.append(
            f"| {r['env'].split('/')[-1]} | {r['agent']} | {r['successes']}/{r['targets']} "
            f"| {lo:.2f}-{hi:.2f} | {r['median_best_distance']:.3g} ({dlo:.3g}-{dhi:.3g}) "
            f"{r.get('distance_unit', '')} |"
        )
    lines += [
        "",
        "Meta-training (training targets: reset seeds below the held-out ones):",
        "",
        "| env | method | meta-gradient check (mean cosine, max/median norm) | unroll K "
        "| meta steps | meta-loss hand-set -> learned (train targets) | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in document["training"]:
        check = t.get("diagnosis")
        check = (
            "-"
            if not check
            else (f"{check['mean_cosine']:.2f}, {check['max_over_median_norm']:.3g}")
        )
        lines.append(
            f"| {t['env'].split('/')[-1]} | {t['method']} | {check} | {t['unroll']} "
            f"| {t['meta_steps']} "
            f"| {t['meta_loss_hand_set']:.3f} -> {t['meta_loss_learned']:.3f} "
            f"| {t['wall_s']:.0f} s |"
        )
    lines += [
        "",
        "Why each method: " + "; ".join(f"{m}: {w}" for m, w in METHOD_WHY.items()) + ".",
        "",
        f"Held-out targets: reset seeds {document['held_out'][0]}..{document['held_out'][1]}; "
        "every agent gets the same query budget (one query = one plant render with its "
        "gradient). Success is the env's own rule. CIs: 2000-sample percentile bootstrap "
        "over targets.",
        "",
        f"Made with: `{document['command']}` ({document['wall_s']:.0f} s in all).",
        "",
    ]
    return "\n".join(lines)


def run_meta_bench(
    envs: dict[str, str] | None = None,
    budget: int = 60,
    seeds: int = 20,
    out: str | Path = "results/meta_abs.json",
    config_overrides: dict[str, Any] | None = None,
    command: str = "ddsp-gym bench meta",
) -> dict:
    """Run every env, write ``out`` (JSON) and its Markdown twin after each env."""
    from ddsp_gym.agents.benchmark import eval_seeds, write_json_atomic

    envs = dict(envs or DEFAULT_ENVS)
    out = Path(out)
    settings_dir = out.with_suffix("")
    start = time.perf_counter()
    document: dict[str, Any] = {
        "budget": budget,
        "seeds": seeds,
        "held_out": [eval_seeds(seeds)[0], eval_seeds(seeds)[-1]],
        "command": command,
        "rows": [],
        "training": [],
    }
    for env_id, method in envs.items():
        overrides = dict(config_overrides or {})
        overrides.setdefault("unroll", budget // 2)
        rows, training = run_env(env_id, method, budget, seeds, overrides, settings_dir)
        document["rows"] += rows
        document["training"].append(training)
        document["wall_s"] = time.perf_counter() - start
        write_json_atomic(out, document)
        out.with_suffix(".md").write_text(format_report(document))
    return document


def parse_env_methods(items: Sequence[str] | None) -> dict[str, str]:
    """``["ID=method", "ID"]`` -> {id: method} (default "auto"); unknown ids or methods
    are refused before any env is made."""
    from ddsp_gym.catalog import check_env_ids

    if not items:
        return dict(DEFAULT_ENVS)
    envs = {}
    for item in items:
        env_id, _, method = item.partition("=")
        envs[env_id] = method or "auto"
    check_env_ids(envs)
    methods = ("grad", "cma", "auto")
    for env_id, method in envs.items():
        if method not in methods:
            raise ValueError(f"{env_id}: unknown meta-training method {method!r}; known: {methods}")
    return envs


def _cmd_meta(args: argparse.Namespace) -> int:
    envs = parse_env_methods(args.envs)
    overrides = {"meta_steps": args.meta_steps, "targets": args.targets, "batch": args.batch}
    if args.unroll is not None:
        overrides["unroll"] = args.unroll
    command = (
        f"ddsp-gym bench meta --envs {' '.join(f'{k}={v}' for k, v in envs.items())} "
        f"--budget {args.budget} --seeds {args.seeds} --meta-steps {args.meta_steps} "
        f"--targets {args.targets} --batch {args.batch}"
        + ("" if args.unroll is None else f" --unroll {args.unroll}")
    )
    document = run_meta_bench(envs, args.budget, args.seeds, args.output, overrides, command)
    print(format_report(document))
    return 0


def add_meta_bench_parser(bench_sub: argparse._SubParsersAction) -> None:
    """Register ``bench meta`` (Meta-AbS: learned vs hand-set gradient optimizer)."""
    p = bench_sub.add_parser(
        "meta",
        help="meta-learned gradient optimizer vs hand-set agents on held-out targets",
        description="Meta-train the gradient agent's per-knob step sizes, decay, momentum "
        "and start point per env on training targets, then compare it with the hand-set "
        "gradient and hybrid agents on held-out targets at equal query budget; writes "
        "meta_abs.json, .md and the learned settings under meta_abs/.",
    )
    p.add_argument("--envs", nargs="+", metavar="ID[=grad|cma]",
                   help="env ids, each with its meta-training method (grad, cma or auto) (default: "
                   + " ".join(f"{k}={v}" for k, v in DEFAULT_ENVS.items()) + ")")  # fmt: skip
    p.add_argument("--budget", type=int, default=60, help="queries per held-out target (60)")
    p.add_argument("--seeds", type=int, default=20, help="held-out targets per env (20)")
    p.add_argument("--unroll", type=int, default=None, help="unroll K (default budget // 2)")
    p.add_argument("--meta-steps", type=int, default=40, help="outer steps / CMA generations (40)")
    p.add_argument("--targets", type=int, default=64, help="training targets (64)")
    p.add_argument("--batch", type=int, default=8, help="training targets per step (8)")
    p.add_argument("--output", default="results/meta_abs.json", help="results JSON")
    p.set_defaults(func=_cmd_meta)
