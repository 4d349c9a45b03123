"""Hidden-patch benchmark on a device backend: agents copy hidden amsynth patches.

    python scripts/bench_plugin.py [--backend plugin] [--seeds 10] [--budget 200]

Each held-out seed hides a patch (RealSynthPatch-v1's six knobs) that the backend
renders as the target; every agent then searches with at most ``budget`` queries,
each one rendered by the backend (plugin: amsynth's VST2 offline; sim: the JAX twin).
The hybrid agent takes the sim twin's gradient against the rendered target plus
antithetic SPSA probes; CMA-ES and random search use rewards only. Writes
``<out>.json`` and ``<out>.md``: success rate, median queries to success, median
best distance, and the wall time per query next to the physical limit of a real
synth (note + tail played in real time).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import ddsp_gym  # noqa: F401 - registers the envs
from ddsp_gym.agents.base import QUERY_ENV_KWARGS
from ddsp_gym.agents.benchmark import eval_seeds, format_table, make_search_agent, summarize
from ddsp_gym.runtime import tune_for_cpu


def make_env(env_id: str, backend: str, budget: int) -> gym.Env:
    kwargs = {"expose_grad": True} if backend == "sim" else {}
    env = gym.make(env_id, backend=backend, max_episode_steps=budget, **QUERY_ENV_KWARGS, **kwargs)
    env.reset(seed=0)  # compile the scoring functions outside the agents' wall time
    zero = np.zeros(env.action_space.shape, np.float32)
    env.unwrapped.reward_of(zero, with_grad=backend == "sim")
    env.unwrapped.twin_reward_and_grad(zero)
    return env


def render_time(env: gym.Env, repeats: int = 30) -> float | None:
    """Median seconds of one backend render (plugin: flush + prime + note, offline)."""
    device = env.unwrapped.backend
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        device.render(rng.uniform(0, 1, env.unwrapped.plant.num_knobs))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1000 * seconds:.1f} ms"


def _timing_row(row: dict) -> str:
    return (
        f"| {row['agent']} | {row['queries']} | {_ms(row['s_per_query'])} "
        f"| {_ms(row['render_s'])} | {_ms(row['physical_limit_s'])} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="ddsp_gym/RealSynthPatch-v1")
    parser.add_argument("--backend", default="plugin", choices=("plugin", "sim", "hardware"))
    parser.add_argument("--agents", nargs="+", default=["hybrid", "cma", "random"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("-o", "--out", type=Path, default=Path("results/bench_plugin"))
    args = parser.parse_args()
    tune_for_cpu()
    command = "python " + shlex.join(["scripts/bench_plugin.py", *sys.argv[1:]])
    rows = []
    for agent_name in args.agents:
        env = make_env(args.env, args.backend, args.budget)
        plant = env.unwrapped.plant
        render_s = render_time(env)
        agent = make_search_agent(agent_name)
        start = time.perf_counter()
        results = [agent.solve(env, seed, args.budget) for seed in eval_seeds(args.seeds)]
        wall = time.perf_counter() - start
        queries = sum(len(r.distances) for r in results)
        cell = summarize(args.env, agent_name, results, args.budget, wall, env.unwrapped.task)
        cell.update(
            backend=args.backend,
            queries=queries,
            s_per_query=wall / max(queries, 1),
            render_s=render_s,
            # A real synth plays each take in real time: settle, note and tail.
            physical_limit_s=plant.duration + 0.04,
            command=command,
        )
        env.close()
        rows.append(cell)
        print(
            f"{agent_name}: {cell['successes']}/{cell['seeds']} solved, median queries "
            f"{cell['median_queries_to_success']}, {1000 * cell['s_per_query']:.1f} ms/query"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    timing = "\n".join(_timing_row(r) for r in rows)
    report = (
        f"# Hidden-patch benchmark, backend={args.backend}\n\n{format_table(rows)}\n\n"
        "| agent | queries | wall time per query | backend render | real-time limit |\n"
        f"|---|---|---|---|---|\n{timing}\n\nMade with:\n\n    {command}\n"
    )
    args.out.with_suffix(".md").write_text(report)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
