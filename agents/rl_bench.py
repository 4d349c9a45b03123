"""``ddsp-gym bench rl``: RL algorithms x envs x seeds at fixed budgets, a table to cite.

Each run trains one algorithm on one env from one seed for ``steps`` env steps, on
training targets (reset seeds below :data:`~ddsp_gym.agents.benchmark.EVAL_SEED_OFFSET`),
and pauses at ``eval_points`` evenly spaced step counts to score its deterministic policy
on the held-out targets the agent benchmark uses (reset seeds from ``EVAL_SEED_OFFSET``,
at most ``budget`` env steps each): the learning curve. Its last point is the run's
result. The env is made with its registry defaults, the settings an RL algorithm meets.

Per env and algorithm the table gives the interquartile mean (IQM) of the runs' held-out
success with a 95 % stratified-bootstrap confidence interval, and, where the agent
benchmark has cells for the env at the same per-target budget and targets, the IQM of
the normalized score: 0 = random search's success, 1 = the best search agent's
(``results/bench.json``, ``ddsp-gym bench agents``). Performance profiles over the
normalized scores of all runs are drawn beside the learning curves. Aggregates and
profiles come from ``rliable`` (Agarwal et al., "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021).

Runs are written as they finish and a rerun of the same command resumes; each run
records the code version that made it (:mod:`ddsp_gym.agents.provenance`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents import jax_rl, provenance
from ddsp_gym.agents.base import SolveResult
from ddsp_gym.agents.benchmark import eval_seeds, write_json_atomic
from ddsp_gym.catalog import DEFAULT_RL_ENVS, RL_ALGOS, SEARCH_AGENTS

BOOTSTRAP_REPS = 2000


class Policy(Protocol):
    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult: ...


class Learner(Protocol):
    """An RL algorithm that trains in installments and hands out its current policy."""

    def learn(self, steps: int) -> None: ...

    def policy(self) -> Policy: ...


@dataclass
class SB3Learner:
    """A Stable-Baselines3 model trained in installments (its step counter carries on).

    The model is :func:`ddsp_gym.agents.sb3.make_model`'s: the env id's RL Zoo entry,
    PPO on the native vector env. PPO collects whole rollouts (``n_steps`` x
    ``n_envs`` steps), so an installment can overshoot; the next one aims at the
    running total asked for, so overshoots do not add up.
    """

    model: Any
    algo: str
    target: int = 0

    def learn(self, steps: int) -> None:
        self.target += steps
        remaining = self.target - self.model.num_timesteps
        if remaining > 0:
            self.model.learn(total_timesteps=remaining, reset_num_timesteps=False)

    @property
    def trained_steps(self) -> int:
        return int(self.model.num_timesteps)

    def policy(self) -> Policy:
        from ddsp_gym.agents.sb3 import SB3Policy

        return SB3Policy(self.model, self.algo)


def _sb3_learner(algo: str) -> Callable[[str, int], Learner]:
    def make(env_id: str, seed: int) -> Learner:
        from ddsp_gym.agents.sb3 import make_model

        return SB3Learner(make_model(env_id, algo, seed), algo)

    return make


# Name -> (env id, seed) -> Learner: the SB3 algorithms, then the JAX-native trainers.
LEARNERS: dict[str, Callable[[str, int], Learner]] = {a: _sb3_learner(a) for a in RL_ALGOS}
LEARNERS.update(jax_rl.LEARNERS)


def eval_steps(steps: int, points: int) -> list[int]:
    """The step counts at which a run is scored: ``points`` evenly spaced, ending at ``steps``."""
    if steps < 1 or points < 1:
        raise ValueError(f"steps and eval points must be >= 1, not {steps} and {points}")
    return sorted({max(1, round(steps * (i + 1) / points)) for i in range(points)})


def score_policy(policy: Policy, env: gym.Env, targets: int, budget: int) -> dict[str, Any]:
    """Held-out success rate and median best distance of ``policy`` on ``targets`` targets."""
    results = [policy.solve(env, seed, budget) for seed in eval_seeds(targets)]
    return {
        "success": float(np.mean([r.success for r in results])),
        "median_best_distance": float(np.median([r.best_distance for r in results])),
    }


def run_one(
    env_id: str,
    algo: str,
    seed: int,
    steps: int,
    eval_points: int,
    targets: int,
    budget: int,
) -> dict[str, Any]:
    """Train one run, scoring it at each evaluation point -> its record."""
    if algo not in LEARNERS:
        raise ValueError(f"unknown RL algorithm {algo!r}; known: {', '.join(LEARNERS)}")
    start = time.perf_counter()
    learner = LEARNERS[algo](env_id, seed)
    env = gym.make(env_id, max_episode_steps=budget)
    curve, trained = [], 0
    for point in eval_steps(steps, eval_points):
        learner.learn(point - trained)
        trained = point
        scored = {"steps": point, **score_policy(learner.policy(), env, targets, budget)}
        # Learners that train in whole rollouts say how many steps they actually took.
        if hasattr(learner, "trained_steps"):
            scored["trained_steps"] = learner.trained_steps
        curve.append(scored)
    env.close()
    return {
        "env": env_id,
        "algo": algo,
        "seed": seed,
        "steps": steps,
        "budget": budget,
        "targets": targets,
        "curve": curve,
        "success": curve[-1]["success"],
        "wall_s": time.perf_counter() - start,
    }


# (env id, algo, seed) triples and the shared run settings -> their records as they finish.
Runner = Callable[[Sequence[tuple[str, str, int]], int, int, int, int], Iterable[dict[str, Any]]]


def run_locally(
    todo: Sequence[tuple[str, str, int]], steps: int, eval_points: int, targets: int, budget: int
) -> Iterator[dict[str, Any]]:
    """The default :data:`Runner`: one run after another in this process."""
    for env_id, algo, seed in todo:
        yield run_one(env_id, algo, seed, steps, eval_points, targets, budget)


def run_key(record: dict[str, Any]) -> tuple:
    keys = ("env", "algo", "seed", "steps", "budget", "targets")
    return tuple(record[k] for k in keys)


# ---- aggregation -------------------------------------------------------------------------


def search_baselines(
    bench_cells: Sequence[dict[str, Any]], env_id: str, budget: int, targets: int
) -> tuple[float, float, str] | None:
    """(random search's success, the best search agent's, its name) on these targets and
    budget, from the agent benchmark's cells; None without both."""
    cells = {
        c["agent"]: c
        for c in bench_cells
        if c["env"] == env_id
        and c["budget"] == budget
        and c["seeds"] == targets
        and c["agent"] in SEARCH_AGENTS
    }
    if "random" not in cells:
        return None
    best = max(cells.values(), key=lambda c: c["success_rate"])
    return cells["random"]["success_rate"], best["success_rate"], best["agent"]


def normalized(score: float, random: float, best: float) -> float | None:
    """0 at random search's success, 1 at the best search agent's (None where they tie)."""
    return None if best <= random else (score - random) / (best - random)


def interval(scores: np.ndarray, reps: int = BOOTSTRAP_REPS) -> tuple[float, float, float]:
    """(IQM, CI low, CI high) of ``scores`` (runs, tasks), stratified bootstrap (rliable)."""
    from rliable import library, metrics

    point, ci = library.get_interval_estimates(
        {"x": np.asarray(scores, np.float64)},
        lambda s: np.array([metrics.aggregate_iqm(s)]),
        reps=reps,
    )
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def aggregate(
    records: Sequence[dict[str, Any]], bench_cells: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per (env, algo, steps, budget, targets) of the runs' results."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["env"], r["algo"], r["steps"], r["budget"], r["targets"]), []).append(
            r
        )
    rows = []
    for (env_id, algo, steps, budget, targets), runs in groups.items():
        success = np.array([[r["success"] for r in runs]]).T
        row = {"env": env_id, "algo": algo, "steps": steps, "budget": budget}
        row.update(targets=targets, runs=len(runs))
        row["success_iqm"], row["success_ci_low"], row["success_ci_high"] = interval(success)
        baseline = search_baselines(bench_cells, env_id, budget, targets)
        row["random_success"], row["best_search_success"], row["best_search_agent"] = (
            baseline if baseline else (None, None, None)
        )
        scores = [normalized(r["success"], *baseline[:2]) for r in runs] if baseline else []
        if scores and None not in scores:
            norm = interval(np.array([scores]).T)
            row["normalized_iqm"], row["normalized_ci_low"], row["normalized_ci_high"] = norm
        rows.append(row)
    return rows


# ---- reporting ---------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _ci(row: dict[str, Any], name: str) -> str:
    """'IQM [low, high]': success in per cent, normalized scores as fractions."""
    if row.get(f"{name}_iqm") is None:
        return "-"
    values = (row[f"{name}_iqm"], row[f"{name}_ci_low"], row[f"{name}_ci_high"])
    if name == "success":
        point, low, high = (f"{100 * v:.0f}" for v in values)
        return f"{point} % [{low}, {high}]"
    point, low, high = (f"{v:.2f}" for v in values)
    return f"{point} [{low}, {high}]"


def format_markdown(rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]) -> str:
    header = (
        "| env | algo | steps | runs | held-out success, IQM [95 % CI] | normalized score, "
        "IQM [95 % CI] | random search | best search agent |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        best = (
            "-"
            if row["best_search_agent"] is None
            else f"{row['best_search_agent']} {_pct(row['best_search_success'])}"
        )
        lines.append(
            f"| {row['env'].split('/')[-1]} | {row['algo']} | {row['steps']:,} | {row['runs']} "
            f"| {_ci(row, 'success')} | {_ci(row, 'normalized')} "
            f"| {_pct(row['random_success'])} | {best} |"
        )
    dated = provenance.single_version_line(records) or (
        "Runs from several code versions: each run's is in rl_bench.json."
    )
    table = "\n".join(lines) + f"\n\n{dated}"
    commands = sorted({r["command"] for r in records if r.get("command")})
    made = "\n".join(f"    {c}" for c in commands)
    notes = (
        "Each run trains on targets from reset seeds below 10000 and is scored, with its "
        "deterministic policy, on held-out targets (reset seeds 10000 on, at most `budget` "
        "env steps each). IQM: interquartile mean over runs (seeds); 95 % CI: stratified "
        "bootstrap (rliable). Normalized score: 0 = random search's success on the same "
        "targets and budget, 1 = the best search agent's (results/bench.json)."
    )
    return f"{table}\n\nMade with:\n\n{made}\n\n{notes}\n"


def plot(rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Learning curves per env (median over seeds, interquartile band) and, where
    normalized scores exist, the performance profiles of all runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env"] for r in records})
    fig, axes = plt.subplots(1, len(envs) + 1, figsize=(4 * (len(envs) + 1), 3.2), squeeze=False)
    for ax, env_id in zip(axes[0], envs, strict=False):
        for algo in sorted({r["algo"] for r in records if r["env"] == env_id}):
            runs = [r for r in records if r["env"] == env_id and r["algo"] == algo]
            steps = [p["steps"] for p in runs[0]["curve"]]
            curves = np.array([[p["success"] for p in r["curve"]] for r in runs])
            ax.plot(steps, np.median(curves, 0), label=algo)
            low, high = np.percentile(curves, [25, 75], axis=0)
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set(title=env_id.split("/")[-1], xlabel="env steps", ylabel="held-out success")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    _plot_profiles(axes[0][-1], rows, records)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_profiles(ax: Any, rows: Sequence[dict[str, Any]], records: Sequence[dict]) -> None:
    from rliable import library

    scores: dict[str, list[float]] = {}
    for row in rows:
        if row.get("normalized_iqm") is None:
            continue
        runs = [r for r in records if (r["env"], r["algo"]) == (row["env"], row["algo"])]
        random, best = row["random_success"], row["best_search_success"]
        scores.setdefault(row["algo"], []).extend(
            normalized(r["success"], random, best) for r in runs
        )
    ax.set(title="performance profile", xlabel="normalized score tau", ylabel="runs > tau")
    if not scores:
        ax.text(0.5, 0.5, "no search-agent baseline", ha="center", transform=ax.transAxes)
        return
    taus = np.linspace(-0.5, 1.5, 81)
    profiles, _ = library.create_performance_profile(
        {a: np.array([s]).T for a, s in scores.items()}, taus
    )
    for algo, profile in profiles.items():
        ax.plot(taus, profile, label=algo)
    ax.legend(fontsize=7)


# ---- the command -------------------------------------------------------------------------


def run_rl_benchmark(
    envs: Sequence[str] | None,
    algos: Sequence[str],
    seeds: int,
    steps: int,
    eval_points: int,
    targets: int,
    budget: int,
    out: Path,
    command: str = "",
    bench_file: Path | None = None,
    progress: bool = True,
    runner: Runner = run_locally,
) -> list[dict[str, Any]]:
    """Run what ``out`` (rl_bench.json) lacks for this code version, write JSON, Markdown
    and the figure after every run; returns the rows of this configuration. ``runner``
    runs them (:func:`run_locally`; on Ray: :func:`ddsp_gym.agents.ray_runs.ray_runner`)."""
    envs = list(envs or DEFAULT_RL_ENVS)
    unknown = [a for a in algos if a not in LEARNERS]
    if unknown:
        raise ValueError(f"unknown RL algorithms {unknown}; known: {', '.join(LEARNERS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    records: list[dict[str, Any]] = document["runs"]
    version = provenance.code_version()
    current = {run_key(r) for r in records if provenance.is_current(r, version)}
    todo = [
        (e, a, s)
        for e in envs
        for a in algos
        for s in range(seeds)
        if (e, a, s, steps, budget, targets) not in current
    ]
    stale = {run_key(r) for r in records} - current
    provenance.announce_stale(sum((e, a, s, steps, budget, targets) in stale for e, a, s in todo))
    bench_cells = _bench_cells(bench_file or out.with_name("bench.json"))
    runs = runner(todo, steps, eval_points, targets, budget)
    for record in tqdm(runs, desc="bench rl runs", total=len(todo), disable=not progress):
        record.update(command=command, **{provenance.VERSION_KEY: version})
        records = provenance.put(records, record, run_key)
        _write(out, records, bench_cells)
    _write(out, records, bench_cells)
    wanted = {(e, a) for e in envs for a in algos}
    return [
        row
        for row in aggregate(records, bench_cells)
        if (row["env"], row["algo"]) in wanted
        and (row["steps"], row["budget"], row["targets"]) == (steps, budget, targets)
    ]


def _bench_cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["cells"] if path.is_file() else []


def _write(out: Path, records: list[dict[str, Any]], bench_cells: list[dict]) -> None:
    rows = aggregate(records, bench_cells)
    write_json_atomic(out, {"runs": records, "rows": rows})
    out.with_suffix(".md").write_text(format_markdown(rows, records))
    if records:
        plot(rows, records, out.with_suffix(".png"))
