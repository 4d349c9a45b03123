"""``ddsp-gym bench agents``: every agent on every env, same held-out targets, same query budget.

Search agents (random, cma, gradient, hybrid) work on each held-out target
(reset seeds ``EVAL_SEED_OFFSET + i``) with at most ``budget`` plant queries:
env steps, reward/gradient queries and probes all count one each.

Trained agents (ppo, sac, td3, amortized) first learn on training targets
(reset seeds below ``EVAL_SEED_OFFSET``) for ``train_queries`` plant queries,
by default ``budget * seeds``: the total a search agent may spend on the whole
cell. They are then scored like the search agents on the same held-out
targets, with at most ``budget`` queries each (an SB3 policy plays one episode;
the amortized policy answers with one query). Their tables show the training
queries too.

Per cell: success rate, median queries to success (over successful seeds),
median best distance (task units), median parameter error (unit knob travel;
not for goal tasks, whose hidden knobs are only one of many solutions) and
wall time. Results are written after every cell (JSON, Markdown) and a rerun
skips cells already there, so an interrupted run resumes. Each cell records the
code version that made it (:mod:`ddsp_gym.agents.provenance`): only cells of the
running code's version are skipped; others are run again and replaced.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents import provenance
from ddsp_gym.agents.base import QUERY_ENV_KWARGS, SolveResult
from ddsp_gym.catalog import DEFAULT_AGENTS, RL_ALGOS, SEARCH_AGENTS, TRAINED_AGENTS
from ddsp_gym.registry import task_reward_ids

EVAL_SEED_OFFSET = 10_000


def eval_seeds(count: int) -> list[int]:
    """The held-out target seeds every agent is scored on."""
    return [EVAL_SEED_OFFSET + i for i in range(count)]


def make_search_agent(name: str):
    """A fresh search agent by its benchmark name."""
    from ddsp_gym.agents.cma_es import CMAAgent
    from ddsp_gym.agents.gradient import GradientAgent
    from ddsp_gym.agents.hybrid import HybridAgent
    from ddsp_gym.agents.random_search import RandomSearchAgent

    factories: dict[str, Callable[[], Any]] = {
        "random": RandomSearchAgent,
        "cma": CMAAgent,
        "gradient": GradientAgent,
        "hybrid": HybridAgent,
    }
    return factories[name]()


def best_so_far(distances: Sequence[float], budget: int) -> np.ndarray:
    """(budget,) running minimum of per-query distances, held after the last query."""
    curve = np.full(budget, np.nan)
    if distances:
        running = np.minimum.accumulate(np.asarray(distances, np.float64))[:budget]
        curve[: len(running)] = running
        curve[len(running) :] = running[-1]
    return curve


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(kept)) if kept else None


def summarize(
    env_id: str,
    agent: str,
    results: Sequence[SolveResult],
    budget: int,
    wall_s: float,
    task: Any,
    train_queries: int = 0,
) -> dict[str, Any]:
    """One table cell from the per-seed results."""
    curves = np.stack([best_so_far(r.distances, budget) for r in results])
    return {
        "env": env_id,
        "agent": agent,
        "budget": budget,
        "seeds": len(results),
        "successes": int(sum(r.success for r in results)),
        "success_rate": float(np.mean([r.success for r in results])),
        "median_queries_to_success": _median([r.queries_to_success for r in results]),
        "median_best_distance": _median([r.best_distance for r in results]),
        "distance_unit": task.distance_unit,
        "median_param_error": None if task.is_goal else _median([r.param_error for r in results]),
        "train_queries": int(train_queries),
        "wall_s": float(wall_s),
        "median_curve": np.nanmedian(curves, axis=0).tolist(),
    }


def make_eval_env(env_id: str, budget: int, queries: bool = True) -> gym.Env:
    """The env an agent is scored on, one episode lasting at most ``budget`` steps: for
    query-based agents (``queries``) with absolute control and gradients exposed, for RL
    policies with the registry's defaults, the settings they were trained with."""
    kwargs = {"expose_grad": True, **QUERY_ENV_KWARGS} if queries else {}
    env = gym.make(env_id, max_episode_steps=budget, **kwargs)
    # Compile the jitted step and queries now, so no agent's wall time pays for it.
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    env.unwrapped.reward_of(zero)
    if queries:
        env.unwrapped.reward_of(zero, with_grad=True)
    env.step(zero)
    return env


def run_cell(
    env_id: str,
    agent: str,
    budget: int,
    seeds: int,
    train_queries: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run one agent on one env over the held-out seeds; returns the cell."""
    env = make_eval_env(env_id, budget, queries=agent not in RL_ALGOS)
    task = env.unwrapped.task
    train_queries = budget * seeds if train_queries is None else train_queries
    start = time.perf_counter()
    if agent in SEARCH_AGENTS:
        solver, trained = make_search_agent(agent), 0
    elif agent == "amortized":
        from ddsp_gym.agents.amortized import train_amortized

        solver, trained = train_amortized(env_id, train_queries, seed=0), train_queries
    elif agent in RL_ALGOS:
        from ddsp_gym.agents.sb3 import train

        solver = train(env_id, agent, train_queries, seed=0)
        # PPO trains whole rollouts (n_steps x n_envs): it may take more than asked.
        trained = int(solver.model.num_timesteps)
    else:
        known = SEARCH_AGENTS + TRAINED_AGENTS
        raise ValueError(f"unknown agent {agent!r}; known agents: {', '.join(known)}")
    results = [
        solver.solve(env, seed, budget)
        for seed in tqdm(
            eval_seeds(seeds),
            desc=f"{env_id.split('/')[-1]} {agent}",
            leave=False,
            disable=not progress,
        )
    ]
    env.close()
    return summarize(env_id, agent, results, budget, time.perf_counter() - start, task, trained)


def cell_key(cell: dict[str, Any]) -> tuple:
    return (cell["env"], cell["agent"], cell["budget"], cell["seeds"])


def load_cells(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("cells", []))


def write_json(path: Path, cells: list[dict[str, Any]]) -> None:
    """The cells' results file (atomic: an interrupted run never leaves half a file)."""
    document = {
        "eval_seed_offset": EVAL_SEED_OFFSET,
        "budget_note": "queries per held-out target; trained agents also list train_queries",
        "cells": cells,
    }
    write_json_atomic(path, document)


def write_json_atomic(path: Path, document: Any) -> None:
    """Write ``document`` as JSON via a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1))
    os.replace(tmp, path)


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``, or "-" for a missing one."""
    return "-" if value is None else format(value, spec)


def format_table(cells: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of the cells, one row per (env, agent)."""
    return "\n".join(table_lines(cells))


def table_lines(cells: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`format_table`'s lines: header, rule, one row per cell."""
    lines = [
        "| env | agent | success | median queries to success | median best distance "
        "| median param error | train queries | wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['env'].split('/')[-1]} | {c['agent']} | {c['successes']}/{c['seeds']} "
            f"| {fmt(c['median_queries_to_success'], '.0f')} "
            f"| {fmt(c['median_best_distance'], '.3g')} {c['distance_unit']} "
            f"| {fmt(c['median_param_error'], '.3f')} "
            f"| {c['train_queries'] or '-'} | {c['wall_s']:.1f} s |"
        )
    return lines


BUDGET_NOTE = (
    "Budget: search agents (random, cma, gradient, hybrid) get `budget` plant queries per "
    "held-out target (env steps, gradient queries and probes count one each). Trained agents "
    "(ppo, sac, td3, amortized) first train on other targets for `train queries` plant queries "
    "(default budget x seeds, a search agent's total for the cell), then get at most `budget` "
    "queries per held-out target. Held-out targets: reset seeds "
    f"{EVAL_SEED_OFFSET}..{EVAL_SEED_OFFSET}+seeds-1; training uses seeds below {EVAL_SEED_OFFSET}."
)


def format_report(cells: Sequence[dict[str, Any]]) -> str:
    """The table (dated by the cells' code versions), the commands that made its cells,
    and how budgets compare."""
    envs = list(dict.fromkeys(c["env"] for c in cells))
    agents = SEARCH_AGENTS + TRAINED_AGENTS
    cells = sorted(cells, key=lambda c: (envs.index(c["env"]), agents.index(c["agent"])))
    commands = list(dict.fromkeys(c.get("command") for c in cells if c.get("command")))
    made = "\n".join(f"    {command}" for command in commands)
    table = provenance.dated_table(table_lines(cells), cells)
    return f"{table}\n\nMade with:\n\n{made}\n\n{BUDGET_NOTE}\n"


def plot_curves(cells: Sequence[dict[str, Any]], path: Path) -> Path:
    """Median best-so-far distance vs queries, one panel per env, one line per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(c["env"] for c in cells))
    cols = min(3, len(envs))
    rows = -(-len(envs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, env_id in zip(axes.flat, envs, strict=False):
        env_cells = [c for c in cells if c["env"] == env_id]
        for c in env_cells:
            curve = np.asarray(c["median_curve"], np.float64)
            style = "--" if c["train_queries"] else "-"  # trained agents: after training
            x = np.arange(1, len(curve) + 1)
            ax.plot(x, np.maximum(curve, 1e-9), style, label=c["agent"])
        ax.set(title=env_id.split("/")[-1], xlabel="plant queries per target", yscale="log")
        ax.set_ylabel(f"median best distance ({env_cells[0]['distance_unit']})")
        ax.legend(fontsize=8)
    for ax in axes.flat[len(envs) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_benchmark(
    envs: Sequence[str] | None = None,
    agents: Sequence[str] = DEFAULT_AGENTS,
    budget: int = 200,
    seeds: int = 20,
    out: str | Path = "results/bench.json",
    train_queries: int | None = None,
    progress: bool = True,
    command: str | None = None,
) -> list[dict[str, Any]]:
    """Run every (env, agent) cell not already in ``out`` from this code version (see
    :func:`ddsp_gym.agents.provenance.code_version`); returns the cells of this config.

    A stored cell of the same (env, agent, budget, seeds) from another code version, or
    from before versions were recorded, is run again and replaced.
    """
    # By default the task-reward envs: held-out targets and success are the task's.
    envs = list(envs or task_reward_ids())
    unknown = [a for a in agents if a not in SEARCH_AGENTS + TRAINED_AGENTS]
    if unknown:
        raise ValueError(f"unknown agents {unknown}; known: {SEARCH_AGENTS + TRAINED_AGENTS}")
    out = Path(out)
    version = provenance.code_version()
    cells = load_cells(out)
    done = {cell_key(c) for c in cells if provenance.is_current(c, version)}
    stale = {cell_key(c) for c in cells} - done
    todo = [(e, a) for e in envs for a in agents if (e, a, budget, seeds) not in done]
    provenance.announce_stale(sum((e, a, budget, seeds) in stale for e, a in todo))
    for env_id, agent in tqdm(todo, desc="bench cells", disable=not progress):
        cell = run_cell(env_id, agent, budget, seeds, train_queries, progress)
        cell = {**cell, "command": command, provenance.VERSION_KEY: version}
        cells = provenance.put(cells, cell, cell_key)
        write_json(out, cells)
        out.with_suffix(".md").write_text(format_report(cells))
    wanted = [c for c in cells if c["env"] in envs and c["agent"] in agents]
    wanted = [c for c in wanted if c["budget"] == budget and c["seeds"] == seeds]
    if wanted:
        plot_curves(wanted, out.with_name(out.stem + "_curves.png"))
    return wanted
