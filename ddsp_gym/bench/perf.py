"""``ddsp-gym bench --perf``: how fast the simulated suite renders, differentiates and steps.

For every plant in ``PLANTS`` and every registered env it measures, in one run
on one machine:

* plants: forward render throughput (seconds of audio per wall-clock second)
  at 16 kHz and 44.1 kHz for batches 1, 32 and 256; render + gradient of the
  multi-resolution STFT loss (16 kHz, batch 32); compile time of both; the
  peak memory of both;
* envs: steps per second of one env through ``gym.make`` (also in a process
  pinned to one CPU core, where the OS allows it, and in one with JAX's async CPU
  dispatch, which ``import ddsp_gym`` turns off), of the native vector
  env (64 and 256 envs), of Gymnasium's ``SyncVectorEnv`` of 64 single envs, of
  the pure-JAX rollout, and of SB3 PPO on the native batched env against
  ``DummyVecEnv``;
* other libraries (the optional ``bench`` extra): SynthAX and torchsynth voices
  (:mod:`ddsp_gym.bench.external`) beside ours, both rendered for the same duration
  and timed in alternating rounds.

Method. Every timing runs warm (compiled) calls in rounds of at least
``min_time`` seconds and reports the best round's mean (as ``timeit`` does:
the least disturbed by other processes); the median round is kept in the JSON.
Compile time is the wall time of tracing, lowering and compiling a fresh jitted
function: for a plant's gradient and its 16 kHz forward at the gradient's batch, the
best of ``compile_repeats`` compilations with JAX's caches cleared before each (all
of them are kept in the JSON), the same least-disturbed rule as the throughputs.
Peak memory is XLA's buffer assignment for the compiled function (arguments +
outputs + temporaries - aliased), i.e. what the computation needs at its peak;
the process's maximum resident set size is recorded too. The load average
before and after the run is recorded: on a shared machine it says how much of
the CPU the run had.

Results go to ``perf.json`` (rewritten after every section, so a stopped run
keeps what it measured) and ``perf.md`` in the output folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from tqdm import tqdm

from ddsp_gym import dsp
from ddsp_gym.batching import chunked_vmap
from ddsp_gym.features.distances import (
    DEFAULT_FFT_SIZES,
    mrstft_distance_from_spectra,
    multi_resolution_spectra,
)
from ddsp_gym.features.spectral import windowed_frames
from ddsp_gym.plants import PLANTS, AbstractPlant
from ddsp_gym.runtime import ASYNC_DISPATCH_ENV_VAR, cpu_dispatch, malloc_mode, tune_for_cpu

# Our plant set beside each external voice, the first one present wins.
COMPARABLE_PLANTS: dict[str, tuple[str, ...]] = {
    "voice": ("subtractive", "fm2", "filtered_saw"),
    "adsr_sine": ("adsr_tone",),
}


@dataclass(frozen=True)
class PerfSettings:
    """What to measure and how long; :data:`FULL` and :data:`QUICK` are the two presets."""

    sample_rates: tuple[int, ...] = (16_000, 44_100)
    render_batches: tuple[int, ...] = (1, 32, 256)
    grad_batch: int = 32
    vector_sizes: tuple[int, ...] = (64, 256)
    sync_size: int = 64
    rollout_envs: int = 256
    rollout_steps: int = 50
    min_time: float = 0.25  # seconds per timing round
    rounds: int = 3
    compile_repeats: int = 3  # fresh compilations per judged compile time (best kept)
    pinned_single_env: bool = True  # also time gym.make envs in a process on one core
    async_single_env: bool = True  # ... and in a process with JAX's async CPU dispatch
    env_ids: tuple[str, ...] | None = None  # None: every registered env
    plants: tuple[str, ...] | None = None  # None: every plant in PLANTS
    sb3_env_ids: tuple[str, ...] | None = None  # None: the first env; (): no SB3 runs
    sb3_num_envs: int = 16
    sb3_n_steps: int = 64
    sb3_rollouts: int = 3
    external_batches: tuple[int, ...] = (32,)
    external_voices: tuple[str, ...] = ("voice", "adsr_sine")  # (): no other libraries
    external_seconds: float = 1.0
    external_rounds: int = 5  # theirs and ours alternate, best round of each kept
    # (batch, seconds) of 16 kHz audio whose MR-STFT alone is timed: the floor under an
    # env step (64 envs of 0.25 s) and under render + gradient (batch 32 of 0.5 s and 1 s).
    analysis_shapes: tuple[tuple[int, float], ...] = ((1, 0.25), (64, 0.25), (32, 0.5), (32, 1.0))
    quick: bool = False


FULL = PerfSettings()
QUICK = PerfSettings(
    sample_rates=(16_000,),
    render_batches=(32,),
    vector_sizes=(64,),
    sync_size=16,
    rollout_envs=64,
    rollout_steps=10,
    min_time=0.05,
    rounds=2,
    sb3_num_envs=8,
    sb3_n_steps=16,
    sb3_rollouts=1,
    compile_repeats=1,
    pinned_single_env=False,
    async_single_env=False,
    external_voices=("adsr_sine",),
    external_rounds=2,
    analysis_shapes=((64, 0.25),),
    quick=True,
)


# ---- timing --------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds per call, wall clock (best and median round) and this process's CPU time."""

    best_s: float
    median_s: float
    cpu_s: float  # CPU seconds per call (all threads) in the least-CPU round
    calls: int

    def rates(self, work: float) -> dict[str, float]:
        """Work per second (e.g. audio seconds or env steps per call): wall best, median, CPU."""
        return {
            "per_s": work / self.best_s,
            "median_per_s": work / self.median_s,
            "per_cpu_s": work / self.cpu_s,
        }


def time_calls(fn: Callable[[], Any], min_time: float, rounds: int) -> Timing:
    """Time warm calls of ``fn`` (which must block until its work is done).

    Besides wall time it records the process's CPU time: on a machine shared
    with other work, wall time counts the waiting, CPU time the work.
    """
    return time_interleaved([fn], min_time, rounds)[0]


def time_interleaved(
    fns: Sequence[Callable[[], Any]], min_time: float, rounds: int
) -> list[Timing]:
    """:func:`time_calls` of several functions whose rounds alternate (A B A B ...).

    For a ratio of two rates: a change in the machine's load during the timing
    then falls on both sides alike, where timing one after the other let it favour
    either.
    """
    per_call: list[list[float]] = [[] for _ in fns]
    cpu_per_call: list[list[float]] = [[] for _ in fns]
    totals = [0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            per_call[i].append(elapsed / calls)
            cpu_per_call[i].append((time.process_time() - cpu_start) / calls)
            totals[i] += calls
    return [
        Timing(min(wall), statistics.median(wall), min(cpu), total)
        for wall, cpu, total in zip(per_call, cpu_per_call, totals, strict=True)
    ]


def _blocking(fn: Callable, *args) -> Callable[[], Any]:
    return lambda: jax.block_until_ready(fn(*args))


def compile_seconds(fn: Callable, *args, repeats: int = 1) -> tuple[dict[str, Any], Any]:
    """Wall and CPU seconds to trace, lower and compile ``jax.jit(fn)`` -> (times, compiled).

    With ``repeats`` > 1 it compiles that many times, clearing JAX's caches before
    each repeat (else the trace and the executable come from them), and reports
    the fastest; every wall time is kept under "all_s".
    """
    walls, cpus = [], []
    for repeat in range(repeats):
        if repeat:
            jax.clear_caches()
        start, cpu_start = time.perf_counter(), time.process_time()
        compiled = jax.jit(fn).lower(*args).compile()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    times: dict[str, Any] = {"s": min(walls), "cpu_s": min(cpus)}
    if repeats > 1:
        times["all_s"] = walls
    return times, compiled


def peak_bytes(compiled: Any) -> int | None:
    """XLA's peak buffer need of a compiled function (None where the backend says nothing)."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend/version reports it
        return None
    if stats is None:
        return None
    return int(
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )


# ---- plants --------------------------------------------------------------------------


def _plant_inputs(plant: AbstractPlant, batch: int, seed: int = 0):
    """Random unit knobs (B, d), keys (B, 2) and, for effects, an input (B, n)."""
    rng = np.random.default_rng(seed)
    knobs = jnp.asarray(rng.uniform(0.0, 1.0, (batch, plant.num_knobs)), jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    audio_in = None
    if plant.needs_input:
        # A 110 Hz band-limited saw: a harmonic-rich signal for every effect to work on.
        n, sr = plant.n_samples, plant.sample_rate
        saw = 0.5 * dsp.saw_polyblep(
            dsp.phase_accumulator(110.0, sr, n), dsp.phase_increment(110.0, sr, n)
        )
        audio_in = jnp.broadcast_to(saw, (batch, n))
    return knobs, keys, audio_in


def _batched_render(plant: AbstractPlant) -> Callable:
    in_axes = (0, 0, 0 if plant.needs_input else None)
    return jax.vmap(plant.render, in_axes=in_axes)


def _mean_mrstft(audio: Array, target_spectra: Any) -> Array:
    """Mean MR-STFT distance of a batch of sounds (B, n) from precomputed target spectra."""
    spectra = jax.vmap(multi_resolution_spectra)(audio)
    return jnp.mean(jax.vmap(mrstft_distance_from_spectra)(spectra, target_spectra))


def _windowed_frames(audio: Array) -> list[Array]:
    """The STFT frames of one sound (n,) at each of the MR-STFT's FFT sizes."""
    return [windowed_frames(audio, n_fft) for n_fft in DEFAULT_FFT_SIZES]


def _rffts(*frames: Array) -> list[Array]:
    """The MR-STFT's FFTs alone: one rfft per resolution's frames."""
    return [jnp.fft.rfft(f, axis=-1) for f in frames]


def _mrstft_loss(plant: AbstractPlant) -> Callable:
    """(knobs, keys, audio_in, target spectra) -> (mean MR-STFT distance, d / d knobs)."""
    render = _batched_render(plant)

    def loss(knobs, keys, audio_in, target_spectra):
        return _mean_mrstft(render(knobs, keys, audio_in), target_spectra)

    return jax.value_and_grad(loss)


def _render_call(
    plant: AbstractPlant, batch: int, compile_repeats: int = 1
) -> tuple[Callable[[], Any], dict[str, Any], Any]:
    """A blocking call rendering ``batch`` voices -> (call, compile times, compiled)."""
    knobs, keys, audio_in = _plant_inputs(plant, batch)
    compile_times, compiled = compile_seconds(
        _batched_render(plant), knobs, keys, audio_in, repeats=compile_repeats
    )
    return _blocking(compiled, knobs, keys, audio_in), compile_times, compiled


def time_render(
    plant: AbstractPlant, batch: int, settings: PerfSettings, compile_repeats: int = 1
) -> dict[str, Any]:
    """Rates, call time, compile time and peak memory of rendering ``batch`` voices."""
    call, compile_times, compiled = _render_call(plant, batch, compile_repeats)
    timing = time_calls(call, settings.min_time, settings.rounds)
    return {
        **_audio_rates(timing, batch * plant.n_samples / plant.sample_rate),
        "call_ms": 1e3 * timing.best_s,
        "compile": compile_times,
        "peak_mb": _mb(peak_bytes(compiled)),
    }


def bench_plant(name: str, settings: PerfSettings) -> dict[str, Any]:
    """Render throughput, MR-STFT gradient throughput, compile times and memory of one plant."""
    cls = PLANTS[name]
    base = cls()
    row: dict[str, Any] = {
        "plant": name,
        "knobs": base.num_knobs,
        "duration_s": base.duration,
        "render": {},
        "errors": [],
    }
    for sr in settings.sample_rates:
        plant = cls(sample_rate=sr)
        for batch in settings.render_batches:
            label = f"{sr}/{batch}"
            judged = sr == settings.sample_rates[0] and batch == settings.grad_batch
            repeats = settings.compile_repeats if judged else 1
            try:
                row["render"][label] = time_render(plant, batch, settings, repeats)
            except Exception as err:  # a plant that fails here must not stop the run
                row["errors"].append(f"render {label}: {_one_line(err)}")
    # Render + MR-STFT gradient at 16 kHz (the first sample rate), against fixed targets
    # whose spectra are taken once, as in any fitting loop.
    plant = cls(sample_rate=settings.sample_rates[0])
    batch = settings.grad_batch
    try:
        knobs, keys, audio_in = _plant_inputs(plant, batch)
        target_knobs, _, _ = _plant_inputs(plant, batch, seed=1)
        target = jax.jit(_batched_render(plant))(target_knobs, keys, audio_in)
        target_spectra = jax.jit(jax.vmap(multi_resolution_spectra))(target)
        loss_grad = _mrstft_loss(plant)
        compile_times, compiled = compile_seconds(
            loss_grad, knobs, keys, audio_in, target_spectra, repeats=settings.compile_repeats
        )
        timing = time_calls(
            _blocking(compiled, knobs, keys, audio_in, target_spectra),
            settings.min_time,
            settings.rounds,
        )
        row["grad"] = {
            "sample_rate": plant.sample_rate,
            "batch": batch,
            **_audio_rates(timing, batch * plant.n_samples / plant.sample_rate),
            "call_ms": 1e3 * timing.best_s,
            "compile": compile_times,
            "peak_mb": _mb(peak_bytes(compiled)),
        }
    except Exception as err:
        row["errors"].append(f"grad: {_one_line(err)}")
    forward = row["render"].get(f"{settings.sample_rates[0]}/{settings.grad_batch}", {})
    row["compile_forward"] = forward.get("compile")
    row["compile_grad"] = row.get("grad", {}).get("compile")
    return row


def _audio_rates(timing: Timing, seconds: float) -> dict[str, float]:
    rates = timing.rates(seconds)
    return {
        "audio_s_per_s": rates["per_s"],
        "median_audio_s_per_s": rates["median_per_s"],
        "audio_s_per_cpu_s": rates["per_cpu_s"],
    }


def _step_rates(timing: Timing, steps: float) -> dict[str, float]:
    rates = timing.rates(steps)
    return {
        "steps_per_s": rates["per_s"],
        "median_steps_per_s": rates["median_per_s"],
        "steps_per_cpu_s": rates["per_cpu_s"],
    }


# ---- envs ----------------------------------------------------------------------------


def _env_loop(env: gym.Env, actions: np.ndarray) -> Callable[[], None]:
    """One call plays ``len(actions)`` steps of a single env, resetting when an episode ends."""

    def play():
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    return play


def _vector_loop(venv: gym.vector.VectorEnv, actions: np.ndarray) -> Callable[[], None]:
    def play():
        for batch in actions:
            venv.step(batch)

    return play


def _steps_per_s(play: Callable[[], None], steps: int, settings: PerfSettings) -> dict:
    play()  # warm: compiles, first transfers
    return _step_rates(time_calls(play, settings.min_time, settings.rounds), steps)


# Linux lets a process choose its CPUs (``os.sched_setaffinity``); elsewhere no pinned runs.
_CAN_PIN = hasattr(os, "sched_setaffinity")


def single_env_rates(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """Steps/s of one env through ``gym.make``: random actions, a reset where an episode ends."""
    import ddsp_gym  # noqa: F401  (registers the envs)

    env = gym.make(env_id)
    env.reset(seed=0)
    steps = 50
    actions = np.random.default_rng(0).uniform(-1, 1, (steps,) + env.action_space.shape)
    result = _steps_per_s(_env_loop(env, actions.astype(np.float32)), steps, settings)
    env.close()
    cpus = len(os.sched_getaffinity(0)) if _CAN_PIN else os.cpu_count()
    return {**result, "cpus": cpus, "cpu_dispatch": cpu_dispatch()}


def _start_child(one_core: bool) -> None:
    """A benchmark child process: optionally on one core, then the CLI's speed settings."""
    if one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tune_for_cpu()


def fresh_process_single_env_rates(
    env_ids: Sequence[str],
    settings: PerfSettings,
    *,
    one_core: bool = False,
    async_dispatch: bool = False,
) -> dict[str, dict]:
    """:func:`single_env_rates` of each env in a fresh process: pinned to one CPU core,
    and/or with JAX's async CPU dispatch kept (what ``import ddsp_gym`` turns off).

    Both must hold before JAX makes its CPU client, which only a new process shows:
    the client's thread pool is sized by the CPUs the process may use, and its dispatch
    mode is fixed when it is made (see ddsp_gym/runtime.py).

    One core: at batch 1 an env step is ~50-140 small XLA kernels, and a process pinned to
    one core steps single envs faster on the shared 2-core machine. Neither half of that
    alone gained (profiled, fresh processes): a one-thread XLA pool with the threads
    unpinned (pinned only while JAX made its client), FMBell 2,907 -> 2,930 steps/s
    against 3,557 pinned throughout; the stepping thread pinned after JAX started, or
    every thread pinned to one core with XLA's two-thread pool, CutoffSweeper
    2,360-2,530 against 2,450-2,670 unpinned and 2,730-2,900 started on one core. One
    process per core (``taskset -c 0 python ...``) is how single envs are usually run in
    parallel; this measures that setup.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from unittest import mock  # patch.dict: environment variables for the block, restored

    if one_core and not _CAN_PIN:
        return {}
    context = multiprocessing.get_context("spawn")
    # Without async_dispatch the child runs as this process does (it inherits the variable).
    keep_async = {ASYNC_DISPATCH_ENV_VAR: "1"} if async_dispatch else {}
    with (
        mock.patch.dict(os.environ, keep_async),
        ProcessPoolExecutor(
            1, mp_context=context, initializer=_start_child, initargs=(one_core,)
        ) as pool,
    ):
        rates = list(pool.map(single_env_rates, env_ids, [settings] * len(env_ids)))
    return dict(zip(env_ids, rates, strict=True))


# The single-env columns measured in fresh processes: result key -> (how the process
# runs, the column's title, what the column is).
FRESH_PROCESS_COLUMNS: dict[str, tuple[dict[str, bool], str, str]] = {
    "single_1core": (
        {"one_core": True},
        "gym.make, 1 core",
        "the same single-env loop in a fresh process pinned to one CPU core (as "
        "`taskset -c 0` does)",
    ),
    "single_async": (
        {"async_dispatch": True},
        "gym.make, JAX async dispatch",
        f"the same loop in a fresh process with `{ASYNC_DISPATCH_ENV_VAR}=1`, which keeps "
        "JAX's default of handing each CPU computation to a worker thread (ddsp_gym runs "
        "them inline; see ddsp_gym/runtime.py)",
    ),
}


def bench_env(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """Steps/s of one env id in every way it can be stepped."""
    import ddsp_gym  # noqa: F401  (registers the envs)
    from ddsp_gym.envs.rollout import init_rollout, rollout_from

    rng = np.random.default_rng(0)
    base = gym.make(env_id).unwrapped
    d = base.action_space.shape[0]
    row: dict[str, Any] = {
        "env": env_id,
        "plant": base.plant.__class__.__name__,
        "duration_s": base.plant.duration,
        "sample_rate": base.plant.sample_rate,
        "cpu_schedule": base.cpu_schedule,
        "errors": [],
    }

    def record(key: str, make: Callable[[], dict]) -> None:
        try:
            row[key] = make()
        except Exception as err:
            row["errors"].append(f"{key}: {_one_line(err)}")

    record("single", lambda: single_env_rates(env_id, settings))

    def vector(num_envs: int, mode: str) -> dict:
        venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
        venv.reset(seed=0)
        calls = 5 if mode == "vector_entry_point" else 2
        actions = rng.uniform(-1, 1, (calls, num_envs, d)).astype(np.float32)
        start = time.perf_counter()
        venv.step(actions[0])
        first_call_s = time.perf_counter() - start
        result = _steps_per_s(_vector_loop(venv, actions), calls * num_envs, settings)
        venv.close()
        return {**result, "num_envs": num_envs, "first_step_s": first_call_s}

    for num_envs in settings.vector_sizes:
        record(f"native_{num_envs}", lambda n=num_envs: vector(n, "vector_entry_point"))
    record(f"sync_{settings.sync_size}", lambda: vector(settings.sync_size, "sync"))
    # Per env step, so the ratio holds even where the two batch sizes differ (--quick).
    native = row.get(f"native_{settings.vector_sizes[0]}")
    sync = row.get(f"sync_{settings.sync_size}")
    if native and sync:
        row["native_over_sync"] = native["steps_per_s"] / sync["steps_per_s"]

    def jax_rollout() -> dict:
        # The steps alone, from envs already reset, as the vector columns time them: a
        # goal task's first reset of 256 envs scored 256 x 64 candidate settings, which
        # timed with 50 steps read as a slower step (BrightnessStability ~4,700 -> ~3,200
        # steps/s; profiled).
        n, steps = settings.rollout_envs, settings.rollout_steps

        def policy(obs, key):
            return jax.random.uniform(key, (obs.shape[0], d), minval=-1.0, maxval=1.0)

        spec = gym.spec(env_id)
        fenv, params = base.functional, base.params
        start = jax.jit(init_rollout, static_argnums=(0, 3))(fenv, params, jax.random.PRNGKey(0), n)

        def run(start):
            return rollout_from(fenv, params, policy, start, steps, spec.max_episode_steps)

        compile_times, compiled = compile_seconds(run, start)
        timing = time_calls(_blocking(compiled, start), settings.min_time, settings.rounds)
        return {
            **_step_rates(timing, n * steps),
            "num_envs": n,
            "num_steps": steps,
            "compile": compile_times,
        }

    record("jax_rollout", jax_rollout)
    return row


def bench_sb3(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """SB3 PPO timesteps/s on the native batched env vs ``DummyVecEnv`` of ``gym.make`` envs."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    n = settings.sb3_num_envs
    total = n * settings.sb3_n_steps * settings.sb3_rollouts
    row: dict[str, Any] = {
        "env": env_id,
        "num_envs": n,
        "n_steps": settings.sb3_n_steps,
        "timesteps": total,
        "torch_threads": torch.get_num_threads(),
    }
    makers = {
        "native": lambda: make_sb3_vec_env(env_id, num_envs=n),
        "dummy": lambda: DummyVecEnv([lambda: gym.make(env_id)] * n),
    }
    for name, make in makers.items():
        venv = make()
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=settings.sb3_n_steps,
            batch_size=min(256, n * settings.sb3_n_steps),
            n_epochs=1,
            seed=0,
            device="cpu",
        )
        model.learn(total_timesteps=n * settings.sb3_n_steps)  # warm: compiles, allocates
        start, cpu_start = time.perf_counter(), time.process_time()
        model.learn(total_timesteps=total, reset_num_timesteps=False)
        row[f"{name}_steps_per_s"] = total / (time.perf_counter() - start)
        row[f"{name}_steps_per_cpu_s"] = total / (time.process_time() - cpu_start)
        venv.close()
    row["native_over_dummy"] = row["native_steps_per_s"] / row["dummy_steps_per_s"]
    return row


# ---- the analysis alone --------------------------------------------------------------


def bench_analysis(settings: PerfSettings) -> list[dict[str, Any]]:
    """The MR-STFT alone (no plant): its spectra, its FFTs alone, and its distance's
    value + gradient.

    The spectra are what a spectrum-scored env computes at every step (in the vector
    env's chunks), so their rate over the env's seconds of audio is about the most
    steps/s such an env can reach; their FFTs alone (in the same chunks, from frames made
    outside the timing) bound it whatever else of the spectra gets faster. The gradient
    row is the loss's share of every plant's render + MR-STFT gradient at the same batch
    and duration.
    """
    rows = []
    sr = settings.sample_rates[0]
    for batch, seconds in settings.analysis_shapes:
        n = int(round(seconds * sr))
        rng = np.random.default_rng(0)
        audio = jnp.asarray(rng.uniform(-0.5, 0.5, (batch, n)), jnp.float32)
        # Chunked on CPU as the vector env's step computes them (ddsp_gym.batching).
        spectra = jax.jit(chunked_vmap(multi_resolution_spectra, (0,))).lower(audio).compile()
        target = spectra(audio[::-1])
        value_and_grad = jax.jit(jax.value_and_grad(_mean_mrstft)).lower(audio, target).compile()
        frames = jax.jit(jax.vmap(_windowed_frames))(audio)
        ffts = jax.jit(chunked_vmap(_rffts, (0,) * len(frames))).lower(*frames).compile()
        calls = {
            "spectra": _blocking(spectra, audio),
            "ffts": _blocking(ffts, *frames),
            "value_and_grad": _blocking(value_and_grad, audio, target),
        }
        row: dict[str, Any] = {"batch": batch, "duration_s": seconds, "sample_rate": sr}
        for key, call in calls.items():
            row[key] = _audio_rates(
                time_calls(call, settings.min_time, settings.rounds), batch * seconds
            )
        rows.append(row)
    return rows


# ---- other libraries -----------------------------------------------------------------


def bench_external(settings: PerfSettings, plant_rows: Sequence[dict]) -> list[dict[str, Any]]:
    """SynthAX and torchsynth voices, timed here, beside our comparable plants."""
    from ddsp_gym.bench import external

    measured = {row["plant"] for row in plant_rows}  # the plants this run was asked for
    sr = settings.sample_rates[0]
    rows = []
    for library, make in external.LIBRARIES.items():
        for voice in settings.external_voices:
            for batch in settings.external_batches:
                row: dict[str, Any] = {
                    "library": library,
                    "voice": voice,
                    "batch": batch,
                    "sample_rate": sr,
                    "seconds": settings.external_seconds,
                }
                try:
                    ext = make(voice, batch, sr, settings.external_seconds)
                except ImportError as err:
                    row["unavailable"] = f"not installed ({_one_line(err)}); pip install '.[bench]'"
                    rows.append(row)
                    continue
                except Exception as err:
                    row["unavailable"] = f"fails to run here: {_one_line(err)}"
                    rows.append(row)
                    continue
                # Ours rendered here too, for their duration (the plant table uses each
                # plant's own), so both sides of the ratio time the same work, in
                # alternating rounds.
                mine = next((p for p in COMPARABLE_PLANTS[voice] if p in measured), None)
                calls = [ext.render]
                if mine is not None:
                    plant = PLANTS[mine](sample_rate=sr, duration=settings.external_seconds)
                    calls.append(_render_call(plant, batch)[0])
                for call in calls:
                    call()  # warm: first-call work on both sides, outside the timing
                timings = time_interleaved(calls, settings.min_time, settings.external_rounds)
                seconds = batch * settings.external_seconds
                row.update(
                    version=ext.version,
                    setup_s=ext.setup_s,
                    torch_threads=_torch_threads(),
                    **_audio_rates(timings[0], seconds),
                )
                if mine is not None:
                    ours = _audio_rates(timings[1], seconds)
                    row.update(
                        ours_plant=mine,
                        ours_audio_s_per_s=ours["audio_s_per_s"],
                        ours_audio_s_per_cpu_s=ours["audio_s_per_cpu_s"],
                        ratio=ours["audio_s_per_s"] / row["audio_s_per_s"],
                        cpu_ratio=ours["audio_s_per_cpu_s"] / row["audio_s_per_cpu_s"],
                    )
                rows.append(row)
    return rows


# ---- targets ---------------------------------------------------------------------------


@dataclass
class Target:
    what: str
    bar: str
    measured: str  # wall clock, with the per-CPU-second figure where it applies
    passed: bool | None  # judged on wall clock; None: cannot be judged in this build


def _both(wall: float, cpu: float | None, unit: str = "") -> str:
    cpu_text = "" if cpu is None else f" ({cpu:,.0f} per CPU-s)"
    return f"{wall:,.0f}{unit}{cpu_text}"


def check_targets(results: dict[str, Any]) -> list[Target]:
    """The issue's speed targets, judged on this run's wall-clock numbers."""
    plants = {row["plant"]: row for row in results.get("plants", [])}
    envs = results.get("envs", [])
    out: list[Target] = []

    for plant, bar in (("subtractive", 4_000), ("fm2", 10_000)):
        cell = plants.get(plant, {}).get("render", {}).get("16000/32")
        out.append(
            Target(
                f"{plant} render, 16 kHz, batch 32",
                f">= {bar:,} audio-s/s",
                "plant not in this build"
                if cell is None
                else _both(cell["audio_s_per_s"], cell["audio_s_per_cpu_s"]),
                None if cell is None else cell["audio_s_per_s"] >= bar,
            )
        )
    grads = {p: r["grad"] for p, r in plants.items() if "grad" in r}
    if grads:
        worst = min(grads, key=lambda p: grads[p]["audio_s_per_s"])
        g = grads[worst]
        out.append(
            Target(
                "render + MR-STFT gradient, 16 kHz, batch 32 (slowest plant)",
                ">= 400 audio-s/s",
                f"{_both(g['audio_s_per_s'], g['audio_s_per_cpu_s'])} [{worst}]",
                g["audio_s_per_s"] >= 400,
            )
        )
    short = [e for e in envs if e.get("sample_rate") == 16_000 and e.get("duration_s") == 0.25]
    singles = {e["env"]: e["single"] for e in short if "single" in e}
    if singles:
        worst = min(singles, key=lambda e: singles[e]["steps_per_s"])
        cell = singles[worst]
        out.append(
            Target(
                "single env via gym.make, 0.25 s at 16 kHz (slowest env)",
                ">= 2,500 steps/s",
                f"{_both(cell['steps_per_s'], cell['steps_per_cpu_s'])} [{worst.split('/')[-1]}]",
                cell["steps_per_s"] >= 2_500,
            )
        )
    for env in envs:
        native, ratio = env.get("native_64"), env.get("native_over_sync")
        if native is None or ratio is None:
            continue
        out.append(
            Target(
                f"native vector env, 64 envs: {env['env'].split('/')[-1]}",
                ">= 20,000 steps/s and >= 5x SyncVectorEnv",
                f"{_both(native['steps_per_s'], native['steps_per_cpu_s'])}, {ratio:.1f}x Sync",
                native["steps_per_s"] >= 20_000 and ratio >= 5,
            )
        )
    for key, what, bar in (
        ("compile_forward", "forward compile (slowest plant)", 1.0),
        ("compile_grad", "gradient compile (slowest plant)", 3.0),
    ):
        times = {p: r.get(key) for p, r in plants.items()}
        if not times or any(v is None for v in times.values()):
            continue
        worst = max(times, key=lambda p: times[p]["s"])
        t = times[worst]
        out.append(
            Target(
                what,
                f"<= {bar:g} s",
                f"{t['s']:.2f} s ({t['cpu_s']:.2f} CPU-s) [{worst}]",
                t["s"] <= bar,
            )
        )
    for row in results.get("external", []):
        label = f"ours vs {row['library']} {row['voice']} (batch {row['batch']})"
        if "unavailable" in row:
            out.append(Target(label, ">= 3x", row["unavailable"], None))
        elif "ratio" in row:
            measured = (
                f"{row['ratio']:.1f}x ({row['cpu_ratio']:.1f}x per CPU-s) [{row['ours_plant']}]"
            )
            out.append(Target(label, ">= 3x", measured, row["ratio"] >= 3))
    return out


# ---- the run -------------------------------------------------------------------------


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _mb(nbytes: int | None) -> float | None:
    return None if nbytes is None else nbytes / 2**20


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "cpu_dispatch": cpu_dispatch(),
        "malloc": malloc_mode(),
        "devices": [str(d) for d in jax.devices()],
        "float": "float32",
    }


def run_perf(
    out_dir: str | Path,
    settings: PerfSettings = FULL,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the benchmark, write ``perf.json`` and ``perf.md`` under ``out_dir``; return results."""
    import ddsp_gym

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plants = list(settings.plants or PLANTS)
    unknown = sorted(set(plants) - set(PLANTS))
    if unknown:
        raise ValueError(f"unknown plants {unknown}; known: {sorted(PLANTS)}")
    env_ids = list(settings.env_ids or ddsp_gym.ENV_IDS[: 1 if settings.quick else None])
    unknown = sorted(set(env_ids) - set(ddsp_gym.ENV_IDS))
    if unknown:
        raise ValueError(f"unknown env ids {unknown}")
    sb3_ids = list(env_ids[:1] if settings.sb3_env_ids is None else settings.sb3_env_ids)
    results: dict[str, Any] = {
        "meta": {
            **machine_info(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average_before": os.getloadavg(),
            "settings": asdict(settings),
            "method": __doc__.split("Method.")[1].split("Results go")[0].strip(),
        },
        "plants": [],
        "envs": [],
        "sb3": [],
        "analysis": [],
        "external": [],
    }
    json_path, md_path = out_dir / "perf.json", out_dir / "perf.md"
    tasks = (
        [("plant", p) for p in plants]
        + [("env", e) for e in env_ids]
        + [("single_1core", None)] * (settings.pinned_single_env and _CAN_PIN)
        + [("single_async", None)] * settings.async_single_env
        + [("sb3", e) for e in sb3_ids]
        + [("analysis", None), ("external", None)]
    )
    start = time.perf_counter()
    for kind, name in tqdm(tasks, desc="bench --perf", unit="task", disable=not progress):
        try:
            if kind == "plant":
                results["plants"].append(bench_plant(name, settings))
            elif kind == "env":
                results["envs"].append(bench_env(name, settings))
            elif kind in FRESH_PROCESS_COLUMNS:
                how = FRESH_PROCESS_COLUMNS[kind][0]
                ids = [e["env"] for e in results["envs"]]
                rates = fresh_process_single_env_rates(ids, settings, **how)
                for row in results["envs"]:
                    row[kind] = rates[row["env"]]
            elif kind == "sb3":
                results["sb3"].append(bench_sb3(name, settings))
            elif kind == "analysis":
                results["analysis"] = bench_analysis(settings)
            else:
                results["external"] = bench_external(settings, results["plants"])
        except Exception as err:
            results.setdefault("errors", []).append(
                f"{kind} {name}: {_one_line(err)}\n{traceback.format_exc(limit=3)}"
            )
        _write_json(json_path, results)
    meta = results["meta"]
    meta["wall_s"] = time.perf_counter() - start
    meta["load_average_after"] = os.getloadavg()
    meta["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["targets"] = [asdict(t) for t in check_targets(results)]
    _write_json(json_path, results)
    md_path.write_text(format_markdown(results))
    return results


def _write_json(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=_json_default))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# ---- Markdown ------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _cell(row: dict | None, wall: str, cpu: str) -> str:
    """'wall (per CPU-s)' of a result dict, '-' where missing."""
    if not row or wall not in row:
        return "-"
    return f"{_fmt(row[wall])} ({_fmt(row.get(cpu))})"


def _env_steps(row: dict, key: str) -> str:
    """An analysis rate as env steps/s: its audio-s/s over one env's seconds of audio."""
    if key not in row:
        return "-"
    return _fmt(row[key]["audio_s_per_s"] / row["duration_s"])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def format_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables (what README quotes)."""
    meta = results["meta"]
    settings = meta["settings"]
    command = "ddsp-gym bench --perf" + (" --quick" if settings["quick"] else "")
    after = meta.get("load_average_after", [float("nan")])[0]
    lines = [
        f"# ddsp_gym speed (`{command}`)",
        "",
        f"{meta['started']} | {meta['cpu']}, {meta['cpu_count']} cores | "
        f"jax {meta['jax']} ({meta['jax_backend']}, {meta.get('cpu_dispatch', '?')} CPU "
        f"dispatch, {meta.get('malloc', '?')} malloc) | {meta['float']} | "
        f"load average {meta['load_average_before'][0]:.1f} before, {after:.1f} after | "
        f"run {meta.get('wall_s', float('nan')):.0f} s",
        "",
        f"Each cell: wall-clock rate, best of {settings['rounds']} rounds of >= "
        f"{settings['min_time']} s, and in parentheses the rate per CPU-second of this "
        "process (all its threads): on a machine shared with other work the first counts "
        "the waiting, the second only the work. audio-s/s = seconds of audio per second. "
        "Memory: XLA's peak buffer need of the compiled function. CPU dispatch and malloc: "
        "as `import ddsp_gym` sets them (ddsp_gym/runtime.py).",
        "",
        "## Plants (audio-s/s)",
        "",
    ]
    srs, batches = settings["sample_rates"], settings["render_batches"]
    header = ["plant", "knobs", "dur (s)"]
    header += [f"render {sr / 1000:g} kHz b{b}" for sr in srs for b in batches]
    header += ["render + MR-STFT grad 16 kHz b32", "compile fwd / grad (s)", "peak MB fwd / grad"]
    rows = []
    for row in results["plants"]:
        cells = [row["plant"], str(row["knobs"]), f"{row['duration_s']:g}"]
        cells += [
            _cell(row["render"].get(f"{sr}/{b}"), "audio_s_per_s", "audio_s_per_cpu_s")
            for sr in srs
            for b in batches
        ]
        grad = row.get("grad", {})
        forward = row["render"].get(f"{srs[0]}/{settings['grad_batch']}", {})
        fc, gc = row.get("compile_forward") or {}, row.get("compile_grad") or {}
        cells += [
            _cell(grad, "audio_s_per_s", "audio_s_per_cpu_s"),
            f"{_fmt(fc.get('s'), 2)} / {_fmt(gc.get('s'), 2)}",
            f"{_fmt(forward.get('peak_mb'), 1)} / {_fmt(grad.get('peak_mb'), 1)}",
        ]
        rows.append(cells)
    lines += _table(header, rows)
    lines += ["", "## Envs (env steps/s)", ""]
    sizes, sync = settings["vector_sizes"], settings["sync_size"]
    extra = [
        (key, title, note)
        for key, (_, title, note) in FRESH_PROCESS_COLUMNS.items()
        if any(key in row for row in results["envs"])
    ]
    if extra:
        lines += [f"'{title}': {note}." for _, title, note in extra] + [""]
    depth_first = [
        r["env"].split("/")[-1] for r in results["envs"] if r.get("cpu_schedule") == "memory"
    ]
    if depth_first:
        lines += [
            "'gym.make' columns: single envs as the registry makes them; "
            f"{', '.join(depth_first)} with `cpu_schedule: memory` (XLA:CPU's depth-first "
            "schedule; see CPU_SCHEDULES in ddsp_gym/envs/gym_env.py).",
            "",
        ]
    lines += [
        f"'JAX rollout {settings['rollout_envs']}': `rollout_from`, "
        f"{settings['rollout_steps']} steps in one jitted `lax.scan` from envs already "
        "reset (as the vector columns, their first reset untimed).",
        "",
    ]
    header = ["env", "audio", "gym.make (1 env)"] + [title for _, title, _ in extra]
    header += [f"native vector {n}" for n in sizes]
    header += [f"SyncVectorEnv {sync}", f"native {sizes[0]} / Sync {sync}"]
    header += [f"JAX rollout {settings['rollout_envs']}"]
    rows = []
    for row in results["envs"]:
        cells = [
            row["env"].split("/")[-1],
            f"{row['duration_s']:g} s @ {row['sample_rate'] / 1000:g} kHz",
            _cell(row.get("single"), "steps_per_s", "steps_per_cpu_s"),
        ]
        cells += [_cell(row.get(key), "steps_per_s", "steps_per_cpu_s") for key, _, _ in extra]
        cells += [_cell(row.get(f"native_{n}"), "steps_per_s", "steps_per_cpu_s") for n in sizes]
        cells += [
            _cell(row.get(f"sync_{sync}"), "steps_per_s", "steps_per_cpu_s"),
            f"{_fmt(row.get('native_over_sync'), 1)}x",
            _cell(row.get("jax_rollout"), "steps_per_s", "steps_per_cpu_s"),
        ]
        rows.append(cells)
    lines += _table(header, rows)
    if results["sb3"]:
        lines += ["", "## SB3 PPO (timesteps/s, policy updates included)", ""]
        rows = [
            [
                r["env"].split("/")[-1],
                str(r["num_envs"]),
                _cell(r, "native_steps_per_s", "native_steps_per_cpu_s"),
                _cell(r, "dummy_steps_per_s", "dummy_steps_per_cpu_s"),
                f"{_fmt(r.get('native_over_dummy'), 1)}x",
            ]
            for r in results["sb3"]
        ]
        lines += _table(["env", "envs", "native batched env", "DummyVecEnv", "ratio"], rows)
    if results.get("analysis"):
        khz = results["analysis"][0]["sample_rate"] / 1000
        lines += [
            "",
            f"## The MR-STFT alone ({khz:g} kHz audio-s/s, no plant)",
            "",
            "The four-resolution STFT every spectrum-scored env computes at each step (in "
            "the vector env's chunks), and its distance's value + gradient. 'env steps/s' "
            "is the spectra rate over the seconds of audio: what such an env's step costs "
            "before its render, summary and reward (timings are best-of-rounds, so a "
            "measured env can land a little above it). 'FFTs alone': the spectra's four "
            "FFTs, computed in the same chunks from frames made beforehand, as env "
            "steps/s: a ceiling no faster framing, magnitude or distance can lift. The "
            "gradient column is the loss's share of a plant's render + MR-STFT gradient "
            "at the same batch and duration.",
            "",
        ]
        rows = [
            [
                str(r["batch"]),
                f"{r['duration_s']:g}",
                _cell(r.get("spectra"), "audio_s_per_s", "audio_s_per_cpu_s"),
                _env_steps(r, "spectra"),
                _env_steps(r, "ffts"),
                _cell(r.get("value_and_grad"), "audio_s_per_s", "audio_s_per_cpu_s"),
            ]
            for r in results["analysis"]
        ]
        header = [
            "batch",
            "dur (s)",
            "spectra",
            "env steps/s",
            "FFTs alone, env steps/s",
            "distance value + grad",
        ]
        lines += _table(header, rows)
    if results["external"]:
        first = results["external"][0]
        title = (
            f"## Other libraries, same run ({first['sample_rate'] / 1000:g} kHz, "
            f"{first['seconds']:g} s voices on both sides, timed in alternating rounds, "
            "audio-s/s)"
        )
        lines += ["", title, ""]
        rows = []
        for r in results["external"]:
            name = f"{r['library']} {r.get('version', '')}".strip()
            if "unavailable" in r:
                rows.append([name, r["voice"], str(r["batch"]), r["unavailable"], "", "", ""])
                continue
            rows.append(
                [
                    name,
                    r["voice"],
                    str(r["batch"]),
                    _cell(r, "audio_s_per_s", "audio_s_per_cpu_s"),
                    r.get("ours_plant", "-"),
                    _cell(r, "ours_audio_s_per_s", "ours_audio_s_per_cpu_s"),
                    f"{_fmt(r.get('ratio'), 1)}x ({_fmt(r.get('cpu_ratio'), 1)}x)",
                ]
            )
        lines += _table(["library", "voice", "batch", "theirs", "ours", "ours", "ratio"], rows)
    lines += ["", "## Targets (judged on wall clock)", ""]
    met = {True: "yes", False: "**no**", None: "n/a"}
    rows = [[t["what"], t["bar"], t["measured"], met[t["passed"]]] for t in results["targets"]]
    lines += _table(["target", "bar", "measured", "met"], rows)
    errors = [e for row in results["plants"] + results["envs"] for e in row.get("errors", [])]
    errors += [e.splitlines()[0] for e in results.get("errors", [])]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"


def settings_for(quick: bool, **overrides: Any) -> PerfSettings:
    """The preset, with any non-None overrides (e.g. ``env_ids=("ddsp_gym/SineTuner-v0",)``)."""
    preset = QUICK if quick else FULL
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})


__all__ = [
    "FULL",
    "QUICK",
    "PerfSettings",
    "Timing",
    "check_targets",
    "format_markdown",
    "run_perf",
    "settings_for",
    "time_calls",
    "time_interleaved",
]
