"""Env stepping rates: one env through ``gym.make``, the native vector env, Gymnasium's
``SyncVectorEnv`` and the pure-JAX rollout.

Random actions throughout (the rate of a step does not depend on how good the action
is), seeded, so every run steps the same episodes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ddsp_gym.bench.processes import CAN_PIN
from ddsp_gym.bench.report import one_line
from ddsp_gym.bench.settings import PerfSettings
from ddsp_gym.bench.timing import blocking, compile_seconds, step_rates, time_calls
from ddsp_gym.envs.functional import make_functional
from ddsp_gym.runtime import cpu_dispatch

SINGLE_ENV_STEPS = 50  # steps per timed call of a single env


def env_loop(env: gym.Env, actions: np.ndarray) -> Callable[[], None]:
    """One call plays ``len(actions)`` steps of a single env, resetting when an episode ends."""

    def play() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    return play


def vector_loop(venv: gym.vector.VectorEnv, actions: np.ndarray) -> Callable[[], None]:
    """One call plays ``len(actions)`` batched steps (the vector env resets finished envs)."""

    def play() -> None:
        for batch in actions:
            venv.step(batch)

    return play


def steps_per_s(play: Callable[[], None], steps: int, settings: PerfSettings) -> dict[str, float]:
    """Rates of a loop that plays ``steps`` env steps a call, after one untimed call."""
    play()  # warm: compiles, first transfers
    return step_rates(time_calls(play, settings.min_time, settings.rounds), steps)


def single_env_rates(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """Steps/s of one env through ``gym.make``: random actions, a reset where an episode ends.

    Also what the process ran under: the CPUs it may use and JAX's CPU dispatch mode
    (the fresh-process columns differ from this process in exactly these).
    """
    import ddsp_gym  # noqa: F401  (registers the envs; this also runs in child processes)

    env = gym.make(env_id)
    env.reset(seed=0)
    shape = (SINGLE_ENV_STEPS,) + env.action_space.shape
    actions = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    result = steps_per_s(env_loop(env, actions), SINGLE_ENV_STEPS, settings)
    env.close()
    cpus = len(os.sched_getaffinity(0)) if CAN_PIN else os.cpu_count()
    return {**result, "cpus": cpus, "cpu_dispatch": cpu_dispatch()}


def vector_env_rates(
    env_id: str, num_envs: int, mode: str, rng: np.random.Generator, settings: PerfSettings
) -> dict[str, Any]:
    """Steps/s of ``gym.make_vec(env_id, num_envs, vectorization_mode=mode)``, and its first
    step's seconds (compilation included for the native env)."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    venv.reset(seed=0)
    d = venv.single_action_space.shape[0]
    # The native env steps fast, so more calls fit one timing round.
    calls = 5 if mode == "vector_entry_point" else 2
    actions = rng.uniform(-1, 1, (calls, num_envs, d)).astype(np.float32)
    start = time.perf_counter()
    venv.step(actions[0])
    first_call_s = time.perf_counter() - start
    result = steps_per_s(vector_loop(venv, actions), calls * num_envs, settings)
    venv.close()
    return {**result, "num_envs": num_envs, "first_step_s": first_call_s}


def jax_rollout_rates(env_id: str, base: Any, settings: PerfSettings) -> dict[str, Any]:
    """Steps/s of ``rollout_from``: ``rollout_steps`` steps of ``rollout_envs`` envs in one
    jitted ``lax.scan``, random actions drawn inside it.

    The steps alone, from envs already reset, as the vector columns time them: a goal
    task's first reset renders many candidate settings per env, which timed with the
    steps would read as a slower step.
    """
    from ddsp_gym.envs.rollout import init_rollout, rollout_from

    n, steps = settings.rollout_envs, settings.rollout_steps
    d = base.action_space.shape[0]

    def policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], d), minval=-1.0, maxval=1.0)

    fenv, params = make_functional(env_id)  # truncates at the registry's horizon
    start = jax.jit(init_rollout, static_argnums=(0, 3))(fenv, params, jax.random.PRNGKey(0), n)

    def run(start):
        return rollout_from(fenv, params, policy, start, steps)

    compile_times, compiled = compile_seconds(run, start)
    timing = time_calls(blocking(compiled, start), settings.min_time, settings.rounds)
    return {
        **step_rates(timing, n * steps),
        "num_envs": n,
        "num_steps": steps,
        "compile": compile_times,
    }


def bench_env(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """Steps/s of one env id in every way it can be stepped; a way that fails is an error
    string in the row's "errors", and the others still run."""
    import ddsp_gym  # noqa: F401  (registers the envs)

    rng = np.random.default_rng(0)
    base = gym.make(env_id).unwrapped
    row: dict[str, Any] = {
        "env": env_id,
        "plant": base.plant.__class__.__name__,
        "duration_s": base.plant.duration,
        "sample_rate": base.plant.sample_rate,
        # The XLA:CPU schedule the env compiled its single-env step with (read-only).
        "cpu_schedule": base.cpu_schedule,
        "errors": [],
    }

    def record(key: str, make: Callable[[], dict]) -> None:
        try:
            row[key] = make()
        except Exception as err:
            row["errors"].append(f"{key}: {one_line(err)}")

    record("single", lambda: single_env_rates(env_id, settings))
    for num_envs in settings.vector_sizes:
        record(
            f"native_{num_envs}",
            lambda n=num_envs: vector_env_rates(env_id, n, "vector_entry_point", rng, settings),
        )
    sync_size = settings.sync_size
    record(f"sync_{sync_size}", lambda: vector_env_rates(env_id, sync_size, "sync", rng, settings))
    # Per env step, so the ratio holds even where the two batch sizes differ (--quick).
    native = row.get(f"native_{settings.vector_sizes[0]}")
    sync = row.get(f"sync_{sync_size}")
    if native and sync:
        row["native_over_sync"] = native["steps_per_s"] / sync["steps_per_s"]
    record("jax_rollout", lambda: jax_rollout_rates(env_id, base, settings))
    return row
