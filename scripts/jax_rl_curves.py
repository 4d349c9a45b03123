"""Learning curves of the JAX trainers with chosen env kwargs, scored inside JAX.

    python scripts/jax_rl_curves.py --envs ddsp_gym/VolumeMatch-v1 \\
        --runs jax_ppo=200000 apg=20000 --env-kwargs '{"control": "delta"}' --seeds 2

``ddsp-gym bench rl`` trains on the registry defaults; this script asks how the JAX
trainers compare under other env settings (a control mode the registry may adopt) and
whether the plant-gradient methods reach PPO's final held-out success in a tenth of its
env steps. Held-out scoring is :func:`ddsp_gym.agents.jax_policy.evaluate_heldout`:
the deterministic policy on reset seeds 10000 on, at most ``--budget`` steps each, the
episodes ``JaxPolicy.solve`` plays through Gymnasium (tests/test_jax_rl.py checks they
agree). Writes ``<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ddsp_gym.agents.benchmark import eval_seeds, write_json_atomic
from ddsp_gym.agents.jax_policy import deterministic_action, evaluate_heldout, heldout_chains
from ddsp_gym.agents.jax_rl import JAX_ALGOS, JaxLearner
from ddsp_gym.agents.rl_bench import eval_steps
from ddsp_gym.catalog import check_env_ids
from ddsp_gym.runtime import tune_for_cpu


def heldout_score(learner: JaxLearner, targets: int, budget: int) -> dict[str, float]:
    """Held-out success rate and median best distance (task units) of the policy."""
    params, d = learner.params(), learner.fenv.num_knobs
    result = evaluate_heldout(
        learner.fenv,
        learner.env_params,
        lambda obs: deterministic_action(params, obs, d),
        heldout_chains(eval_seeds(targets)),
        budget,
    )
    return {
        "success": float(np.mean(result.success)),
        "median_best_distance": float(np.median(result.best_distance)),
    }


def curve(env_id, algo, seed, steps, points, targets, budget, env_kwargs) -> dict:
    start = time.perf_counter()
    learner = JaxLearner(algo, env_id, seed, env_kwargs=env_kwargs)
    points_out = []
    for point in eval_steps(steps, points):
        learner.learn(point - learner._asked)
        points_out.append({"steps": learner.steps, **heldout_score(learner, targets, budget)})
    return {
        "env": env_id,
        "algo": algo,
        "seed": seed,
        "curve": points_out,
        "wall_s": time.perf_counter() - start,
    }


def table(records: list[dict], command: str, env_kwargs: dict) -> str:
    lines = [
        "| env | algo | env steps | seeds | final held-out success (mean) | median best "
        "distance, first -> last point | steps to PPO's final success (mean curve) |",
        "|---|---|---|---|---|---|---|",
    ]
    for env_id in dict.fromkeys(r["env"] for r in records):
        groups: dict[str, list[dict]] = {}
        for r in records:
            if r["env"] == env_id:
                groups.setdefault(r["algo"], []).append(r)
        mean = {
            a: (
                [p["steps"] for p in rs[0]["curve"]],
                np.mean([[p["success"] for p in r["curve"]] for r in rs], axis=0),
            )
            for a, rs in groups.items()
        }
        ppo_final = mean["jax_ppo"][1][-1] if "jax_ppo" in mean else None
        for algo, (steps, success) in mean.items():
            reach = "-"
            if ppo_final is not None and algo != "jax_ppo":
                hit = [s for s, v in zip(steps, success, strict=True) if v >= ppo_final]
                reach = f"{hit[0]:,}" if hit else "not reached"
            dist = np.mean(
                [[p.get("median_best_distance", np.nan) for p in r["curve"]] for r in groups[algo]],
                axis=0,
            )
            lines.append(
                f"| {env_id.split('/')[-1]} | {algo} | {steps[-1]:,} | {len(groups[algo])} "
                f"| {100 * success[-1]:.0f} % | {dist[0]:.3g} -> {dist[-1]:.3g} | {reach} |"
            )
    kwargs = json.dumps(env_kwargs)
    return (
        "\n".join(lines) + f"\n\nEnv kwargs: `{kwargs}`. Made with:\n\n    {command}\n\n"
        "Held-out success: the deterministic policy on reset seeds 10000 on (the targets "
        "`ddsp-gym bench rl` uses), scored inside JAX. Steps to PPO's final success: the "
        "first evaluation point at which the mean curve over seeds reaches JAX PPO's final "
        "mean success on the same env.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", required=True, metavar="ID")
    parser.add_argument("--runs", nargs="+", required=True, metavar="ALGO=STEPS")
    parser.add_argument("--env-kwargs", type=json.loads, default={})
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-points", type=int, default=5)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("-o", "--out", type=Path, default=Path("results/jax_rl_curves"))
    args = parser.parse_args()
    runs = {}
    for item in args.runs:
        algo, _, steps = item.partition("=")
        if algo not in JAX_ALGOS or not steps.isdigit():
            parser.error(f"--runs takes ALGO=STEPS with ALGO in {JAX_ALGOS}, not {item!r}")
        runs[algo] = int(steps)
    try:
        check_env_ids(args.envs)
    except ValueError as err:
        parser.exit(2, f"jax_rl_curves.py: error: {err}\n")
    tune_for_cpu()
    command = shlex.join(["python", "scripts/jax_rl_curves.py", *sys.argv[1:]])
    records = []
    for env_id in args.envs:
        for algo, steps in runs.items():
            for seed in range(args.seeds):
                record = curve(
                    env_id, algo, seed, steps, args.eval_points, args.targets, args.budget,
                    args.env_kwargs,
                )  # fmt: skip
                records.append(record)
                print(env_id, algo, seed, record["curve"], f"{record['wall_s']:.0f} s", flush=True)
                document = {"command": command, "env_kwargs": args.env_kwargs, "runs": records}
                write_json_atomic(args.out.with_suffix(".json"), document)
                md = table(records, command, args.env_kwargs)
                args.out.with_suffix(".md").write_text(md)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
