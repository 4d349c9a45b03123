"""SB3 training speed with an env's RL Zoo entry: one env, RL Zoo's env copies, the native
vector env.

    python scripts/sb3_throughput.py --env ddsp_gym/SineTuner-v1 --steps 65536

Trains SB3 with ``<algo>.yml``'s entry for ``--env`` (PPO: 64 envs x 128 steps per
update, minibatches of 2048, 10 epochs) three ways, each with the same steps per update
so the gradient work per env step is equal and only the env stepping differs:

- ``one env``: ``gym.make`` under TrainingSeeds, ``n_steps`` = 64 x 128;
- ``DummyVecEnv``: 64 ``gym.make`` copies stepped one by one (what ``rl_zoo3.train`` runs);
- ``native``: 64 envs in one jitted call (``make_model``, ``make_sb3_vec_env``).

Policy updates included: the rate a training run sees. After one warm-up update
(compiles), ``--steps`` env steps are timed per way; rates per wall second and per CPU
second of this process (on a shared machine the second counts only the work). Writes
``results/sb3_throughput.{json,md}`` with the ratios and this command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents import provenance
from ddsp_gym.agents.sb3 import TrainingSeeds, load_hyperparams, make_model, sb3_setup
from ddsp_gym.bench.perf import machine_info
from ddsp_gym.runtime import tune_for_cpu


def timed_learn(model: Any, steps: int) -> dict[str, float]:
    """Warm up with one update, then time ``steps`` env steps of ``model.learn``."""
    model.learn(total_timesteps=model.n_envs * model.n_steps)
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"wall_s": wall, "steps_per_s": steps / wall, "steps_per_cpu_s": steps / cpu}


def measure(env_id: str, steps: int, seed: int = 0) -> list[dict[str, Any]]:
    """Steps/s of PPO with ``env_id``'s entry, one row per way (see the module doc)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    entry = load_hyperparams("ppo", env_id)
    n_envs, n_steps = int(entry["n_envs"]), int(entry["n_steps"])
    if n_envs < 2:
        raise ValueError(f"{env_id}'s PPO entry has n_envs {n_envs}: nothing to compare")
    rows = []
    one = {**entry, "n_envs": 1, "n_steps": n_envs * n_steps}
    rows.append(
        {"way": "one env", "n_envs": 1, **timed_learn(make_model(env_id, "ppo", seed, one), steps)}
    )
    setup = sb3_setup(entry)
    copies = DummyVecEnv(
        [lambda: Monitor(TrainingSeeds(gym.make(env_id), seed)) for _ in range(n_envs)]
    )
    model = PPO(setup.policy, copies, seed=seed, device="cpu", **setup.algo_kwargs)
    rows.append({"way": "DummyVecEnv (RL Zoo)", "n_envs": n_envs, **timed_learn(model, steps)})
    native = make_model(env_id, "ppo", seed, entry)
    rows.append({"way": "native vector env", "n_envs": n_envs, **timed_learn(native, steps)})
    return rows


def report(document: dict[str, Any]) -> str:
    lines = [
        "# SB3 PPO training speed: one env, RL Zoo's env copies, the native vector env",
        "",
        f"{document['env']}, PPO entry of agents/hyperparams/ppo.yml "
        f"(`{json.dumps(document['ppo'])}`), the same steps per update each way; "
        f"{document['steps']:,} timed env steps after a warm-up update, policy updates "
        f"included. {document['machine']['cpu']}, {document['machine']['cpu_count']} cores, "
        f"load average {document['load_average_before'][0]:.1f} before. "
        f"Code version {provenance.version_label(document[provenance.VERSION_KEY])}.",
        "",
        "| way | envs | env steps/s | per CPU-second | vs one env |",
        "|---|---|---|---|---|",
    ]
    base = document["rows"][0]["steps_per_s"]
    for row in document["rows"]:
        lines.append(
            f"| {row['way']} | {row['n_envs']} | {row['steps_per_s']:,.0f} "
            f"| {row['steps_per_cpu_s']:,.0f} | {row['steps_per_s'] / base:.1f}x |"
        )
    lines += ["", "Made with:", "", f"    {document['command']}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ddsp_gym/SineTuner-v1")
    parser.add_argument("--steps", type=int, default=65_536, help="timed env steps per way")
    parser.add_argument("--out", type=Path, default=Path("results/sb3_throughput.json"))
    args = parser.parse_args()
    tune_for_cpu()
    import torch

    torch.set_num_threads(1)
    load = os.getloadavg()
    rows = measure(args.env, args.steps)
    entry = load_hyperparams("ppo", args.env)
    document = {
        "command": "python scripts/sb3_throughput.py " + " ".join(sys.argv[1:]),
        "env": args.env,
        "steps": args.steps,
        "ppo": {k: entry[k] for k in ("n_envs", "n_steps", "batch_size", "n_epochs")},
        "machine": machine_info(),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        provenance.VERSION_KEY: provenance.code_version(),
        "rows": rows,
        "native_over_one_env": rows[2]["steps_per_s"] / rows[0]["steps_per_s"],
        "native_over_dummy": rows[2]["steps_per_s"] / rows[1]["steps_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(report(document))
    for row in rows:
        print(f"{row['way']}: {row['steps_per_s']:,.0f} env steps/s")
    print(f"native vector env / one env: {document['native_over_one_env']:.1f}x -> {args.out}")


if __name__ == "__main__":
    main()
