"""``ddsp-gym bench rl-throughput``: JAX PPO's training rate against its ceiling and SB3's.

Measured in one process, per env at one batch of ``num_envs`` envs, in env steps per
second of wall time (compilation and warm-up excluded):

* **vector env**: the native vector env (``gym.make_vec``) stepped with random actions
  from Python, one call per step: the rate a host-side trainer can at best see.
* **rollout scan**: the same vector step in one jitted ``lax.scan``
  (:func:`ddsp_gym.envs.rollout.rollout`, random actions): the env's ceiling inside JAX.
* **JAX PPO**: :mod:`ddsp_gym.agents.jax_ppo` training (rollout, GAE and the clipped
  updates) in one jitted scan over updates.
* **SB3 PPO**: Stable-Baselines3's PPO on the same native vector env
  (:func:`ddsp_gym.envs.sb3.make_sb3_vec_env`), with JAX PPO's rollout length, epochs,
  minibatches and network, so both do the same work per env step.

The issue's targets are ratios of these: JAX PPO / vector env >= 0.6 and JAX PPO /
SB3 PPO >= 5. Each rate is the median of ``repeats`` timed runs, the four taking turns
(:func:`interleaved_rates`), so load from other processes moves the ratios less.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

import ddsp_gym
from ddsp_gym.agents import provenance
from ddsp_gym.agents.benchmark import write_json_atomic
from ddsp_gym.agents.jax_rl import build_config, load_hyperparams

Runner = Callable[[], int]  # plays some env steps, returns how many


def vector_env_runner(env_id: str, num_envs: int, steps: int) -> Runner:
    """The native vector env stepped from Python with random actions, ``steps`` steps."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    for a in actions[:3]:  # compile
        env.step(a)

    def run() -> int:
        for a in actions:
            env.step(a)
        return steps * num_envs

    return run


def rollout_runner(env_id: str, num_envs: int, steps: int) -> Runner:
    """The vector step in one jitted scan, random actions, ``steps`` steps."""
    from ddsp_gym.envs.rollout import rollout

    fenv, params = ddsp_gym.make_functional(env_id)
    d = fenv.num_knobs

    def policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], d), minval=-1.0, maxval=1.0)

    fn = jax.jit(lambda key: rollout(fenv, params, policy, key, num_envs, steps)[1].reward)
    jax.block_until_ready(fn(jax.random.PRNGKey(0)))
    keys = [jax.random.PRNGKey(1)]

    def run() -> int:
        keys[0], key = jax.random.split(keys[0])
        jax.block_until_ready(fn(key))
        return steps * num_envs

    return run


def jax_ppo_runner(env_id: str, config: Any, updates: int) -> Runner:
    """JAX PPO training, ``updates`` updates in one jitted scan."""
    from ddsp_gym.agents.jax_ppo import make_trainer

    fenv, params = ddsp_gym.make_functional(env_id)
    trainer = make_trainer(config, fenv, params)
    run_updates = jax.jit(trainer.run, static_argnums=1)
    state, metrics = run_updates(jax.jit(trainer.init)(jax.random.PRNGKey(0)), updates)
    jax.block_until_ready(metrics)  # compiled
    box = [state]

    def run() -> int:
        box[0], metrics = run_updates(box[0], updates)
        jax.block_until_ready(metrics)
        return updates * config.batch_steps

    return run


def sb3_ppo_runner(env_id: str, config: Any, updates: int) -> Runner:
    """SB3 PPO on the native vector env with JAX PPO's update shape, ``updates`` updates."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    torch.set_num_threads(1)  # as agents.sb3.make_model: tiny MLPs, JAX uses the cores
    venv = VecMonitor(make_sb3_vec_env(env_id, config.num_envs))
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=config.num_steps,
        batch_size=config.batch_steps // config.num_minibatches,
        n_epochs=config.num_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_eps,
        policy_kwargs={"net_arch": list(config.hidden)},
        seed=0,
        device="cpu",
    )
    model.learn(config.batch_steps, reset_num_timesteps=False)  # compile, warm up

    def run() -> int:
        model.learn(updates * config.batch_steps, reset_num_timesteps=False)
        return updates * config.batch_steps

    return run


def interleaved_rates(runners: dict[str, Runner], repeats: int) -> dict[str, float]:
    """Median env steps/s of each runner over ``repeats`` rounds, the runners taking turns
    within each round: load from other processes then slows all of them alike, and the
    ratios hold better than the rates."""
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            steps = run()
            rates[name].append(steps / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def measure(
    env_id: str,
    num_envs: int,
    updates: int,
    repeats: int,
    sb3: bool = True,
) -> dict[str, Any]:
    """One env's rates and ratios at ``num_envs`` envs; ``updates`` PPO updates per timed
    run (the vector env and the scan play as many steps)."""
    from ddsp_gym.agents.jax_ppo import PPOConfig

    values = load_hyperparams("jax_ppo")
    values["num_envs"] = num_envs
    config = build_config(PPOConfig, values, "jax_ppo")
    steps = updates * config.num_steps
    runners = {
        "vector_env": vector_env_runner(env_id, num_envs, steps),
        "rollout_scan": rollout_runner(env_id, num_envs, steps),
        "jax_ppo": jax_ppo_runner(env_id, config, updates),
    }
    if sb3:
        runners["sb3_ppo"] = sb3_ppo_runner(env_id, config, updates)
    row: dict[str, Any] = {"env": env_id, "num_envs": num_envs, "updates": updates}
    row.update(steps_per_run=steps * num_envs, repeats=repeats, sb3_ppo=None)
    row.update(interleaved_rates(runners, repeats))
    row["jax_ppo_over_vector_env"] = row["jax_ppo"] / row["vector_env"]
    row["jax_ppo_over_rollout_scan"] = row["jax_ppo"] / row["rollout_scan"]
    row["jax_ppo_over_sb3_ppo"] = row["jax_ppo"] / row["sb3_ppo"] if sb3 else None
    row["ppo_config"] = {**dataclasses.asdict(config), "hidden": list(config.hidden)}
    return row


def format_markdown(rows: Sequence[dict[str, Any]], command: str, device: str) -> str:
    lines = [
        "| env | envs | vector env | rollout scan | JAX PPO | SB3 PPO "
        "| JAX PPO / vector env | JAX PPO / rollout scan | JAX PPO / SB3 PPO |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def rate(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    def ratio(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for r in rows:
        lines.append(
            f"| {r['env'].split('/')[-1]} | {r['num_envs']} | {rate(r['vector_env'])} "
            f"| {rate(r['rollout_scan'])} | {rate(r['jax_ppo'])} | {rate(r['sb3_ppo'])} "
            f"| {ratio(r['jax_ppo_over_vector_env'])} | {ratio(r['jax_ppo_over_rollout_scan'])} "
            f"| {ratio(r['jax_ppo_over_sb3_ppo'])} |"
        )
    notes = (
        "Env steps per second of wall time, median of the timed runs (the four measurements "
        "taking turns), compilation and warm-up excluded, all in one process. Vector env: "
        "the native vector env stepped from Python with random actions; rollout scan: the "
        "same step in one jitted scan; "
        "JAX PPO: rollout + GAE + clipped updates in one jitted scan "
        "(agents/hyperparams/jax_ppo.yaml); SB3 PPO: Stable-Baselines3 PPO on the native "
        "vector env with the same rollout length, epochs, minibatches and network. "
        f"Device: {device}."
    )
    return "\n".join(lines) + f"\n\nMade with:\n\n    {command}\n\n{notes}\n"


def run_throughput(
    envs: Sequence[str],
    num_envs: int,
    updates: int,
    repeats: int,
    out: Path,
    command: str,
    sb3: bool = True,
) -> list[dict[str, Any]]:
    """Measure every env, write ``out`` (.json) and its .md; returns the rows."""
    rows = [measure(e, num_envs, updates, repeats, sb3) for e in envs]
    device = f"{jax.default_backend()} ({platform.processor() or platform.machine()})"
    document = {
        "rows": rows,
        "command": command,
        "device": device,
        provenance.VERSION_KEY: provenance.code_version(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, document)
    out.with_suffix(".md").write_text(format_markdown(rows, command, device))
    return rows
