"""The jitted functions a single sim env steps with, and how XLA:CPU schedules them.

Each function returns what the host needs packed into one array
(:mod:`ddsp_gym.envs.packing`): one transfer per call. They are built once per
functional env and schedule and shared by every env instance of that configuration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.utils import seeding
from jax import Array

from ddsp_gym.envs import packing
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv

# How XLA:CPU orders a single env's kernels. "concurrency", XLA's default, schedules
# breadth-first so that independent kernels can run at once in its thread pool;
# "memory" schedules depth-first, running them one after another on the calling thread.
# At batch 1 a step is mostly small kernels, and for some envs handing them to the pool
# costs more than the overlap gains; for others (large independent renders and FFTs) it
# gains. The order changes no result of the envs listed (tests/test_speed_paths.py).
CPU_SCHEDULES: dict[str, str | None] = {
    "concurrency": None,
    "memory": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
}
# (plant, task) registry names whose single env steps faster depth-first, measured by
# ``ddsp-gym bench perf`` (docs/performance.md). Native vector envs keep XLA's default:
# their batches fill the pool.
DEPTH_FIRST: frozenset[tuple[str, str]] = frozenset(
    {
        ("filtered_saw", "spectrum"),
        ("gain", "loudness"),
        ("faust", "spectrum"),
        ("compressor", "dynamics"),
        ("distortion", "harmonics"),
        ("guitar_amp", "tone"),
        ("fm2", "fm_bell"),
        ("subtractive", "subtractive_patch"),
        ("resonant_filter", "brightness"),
    }
)


def cpu_schedule_for(plant: str, task: str) -> str:
    """The XLA:CPU schedule a single env of this plant and task runs fastest with."""
    return "memory" if (plant, task) in DEPTH_FIRST else "concurrency"


def _jit_with_schedule(schedule: str) -> Callable[[Callable], Callable]:
    """``jax.jit`` compiling with XLA:CPU's ``schedule`` (no option off CPU or by default)."""
    if schedule not in CPU_SCHEDULES:
        raise ValueError(f"schedule must be one of {tuple(CPU_SCHEDULES)}, not {schedule!r}")
    scheduler_type = CPU_SCHEDULES[schedule]
    if scheduler_type is None or jax.default_backend() != "cpu":
        return jax.jit
    return functools.partial(jax.jit, compiler_options={"xla_cpu_scheduler_type": scheduler_type})


_SIGNALS = ("target_audio", "input_audio")
NUMBER_FIELDS: tuple[str, ...] = tuple(f for f in EnvParams._fields if f not in _SIGNALS)
# Float32 holds integers exactly up to here; the wrappers do not truncate by params anyway.
_MAX_EXACT_STEPS = 2**24


class PackedParams(NamedTuple):
    """:class:`EnvParams` as the compiled functions take them: the numbers in one array.

    A jitted call's host cost grows with the number of arrays passed; nine scalars
    cost more than one vector, at every step.
    """

    numbers: Array  # (len(NUMBER_FIELDS),) float32
    target_audio: Array | None
    input_audio: Array | None


def pack_params(params: EnvParams) -> PackedParams:
    steps = jnp.minimum(params.max_steps_in_episode, _MAX_EXACT_STEPS)
    values = {**params._asdict(), "max_steps_in_episode": steps}
    numbers = jnp.stack([jnp.asarray(values[name], jnp.float32) for name in NUMBER_FIELDS])
    return PackedParams(numbers, params.target_audio, params.input_audio)


def unpack_params(packed: PackedParams) -> EnvParams:
    values = {name: packed.numbers[i] for i, name in enumerate(NUMBER_FIELDS)}
    values["max_steps_in_episode"] = values["max_steps_in_episode"].astype(jnp.int32)
    return EnvParams(**values, target_audio=packed.target_audio, input_audio=packed.input_audio)


class StepChange(NamedTuple):
    """The state fields a step changes (every other field stays as it was).

    A jitted step returns only these: returning the whole state would make XLA copy
    its unchanged fields (the target's audio and spectra) into new buffers each step.
    """

    knobs: Array
    step_count: Array

    def applied_to(self, state: EnvState) -> EnvState:
        return state._replace(knobs=self.knobs, step_count=self.step_count)


class Compiled(NamedTuple):
    """The jitted pure functions of one env configuration (see :func:`compiled`)."""

    # Each takes the params packed (PackedParams) as its last argument.
    reset: Callable  # (key, params) -> (state, packed reset: obs, knobs, target_known)
    step: Callable  # (state, action, params) -> (StepChange, packed step)
    step_with_grad: Callable  # same, with the reward gradient packed in
    query: Callable  # (state, action, params) -> packed query (no step taken)
    query_with_grad: Callable  # same, with the reward gradient
    reward_and_grad: Callable  # (state, action, params) -> packed (reward, grad)
    render: Callable  # (knobs, key, params) -> audio
    reset_cols: packing.Layout
    step_cols: packing.Layout
    grad_step_cols: packing.Layout
    query_cols: packing.Layout
    reward_grad_cols: packing.Layout


@functools.lru_cache(maxsize=128)
def compiled(fenv: FunctionalDDSPEnv, schedule: str = "concurrency") -> Compiled:
    """Jitted reset/step/query/render closed over ``fenv``, built once per configuration.

    ``fenv`` is a frozen, hashable dataclass, so every env with the same configuration
    shares these functions and their compilations; closing over it (instead of a static
    argument) spares hashing it on every call. Params are arguments: changing them
    does not recompile. ``schedule``: a key of :data:`CPU_SCHEDULES`.
    """
    jit = _jit_with_schedule(schedule)
    plant = fenv.plant
    d = fenv.num_knobs
    reset_cols = packing.Layout((("obs", fenv.obs_size), ("knobs", d), ("target_known", None)))
    step_cols = packing.Layout(tuple(packing.step_fields(fenv.obs_size, d, False)))
    grad_step_cols = packing.Layout(tuple(packing.step_fields(fenv.obs_size, d, True)))
    skip = ("obs", "terminated")
    query_cols = packing.Layout(
        tuple(f for f in packing.step_fields(fenv.obs_size, d, True) if f[0] not in skip)
    )
    reward_grad_cols = packing.Layout((("reward", None), ("reward_grad", d)))

    def knobs_of(knobs):
        return packing.knob_vector(plant.controls(knobs), plant.knob_names)

    def reset(key, packed):
        obs, state = fenv.reset_env(key, unpack_params(packed))
        values = {"obs": obs, "knobs": knobs_of(state.knobs), "target_known": state.target_known}
        return state, packing.pack(reset_cols, values)

    def step_values(state, obs, reward, terminated, info):
        return {
            "obs": obs,
            "reward": reward,
            "terminated": terminated,
            **info._asdict(),
            "knobs": knobs_of(state.knobs),
        }

    def step(state, action, packed):
        state, *out = fenv.transition(state, action, unpack_params(packed))
        values = step_values(state, *out)
        return StepChange(state.knobs, state.step_count), packing.pack(step_cols, values)

    def step_with_grad(state, action, packed):
        state, *out, grad = fenv.transition_with_grad(state, action, unpack_params(packed))
        values = {**step_values(state, *out), "reward_grad": grad}
        return StepChange(state.knobs, state.step_count), packing.pack(grad_step_cols, values)

    def query(state, action, packed, with_grad):
        params = unpack_params(packed)
        if with_grad:
            reward, grad, (_, info) = fenv.reward_and_grad(state, action, params)
        else:
            (reward, (_, info)), grad = fenv.reward_of_action(state, action, params), jnp.zeros(d)
        knobs = fenv.knobs_after(state.knobs, jnp.clip(action, -1.0, 1.0), params)
        values = {"reward": reward, **info._asdict(), "knobs": knobs_of(knobs), "reward_grad": grad}
        return packing.pack(query_cols, values)

    def reward_and_grad(state, action, packed):
        reward, grad, _ = fenv.reward_and_grad(state, action, unpack_params(packed))
        return packing.pack(reward_grad_cols, {"reward": reward, "reward_grad": grad})

    def render(knobs, key, packed):
        return plant.render(knobs, key, packed.input_audio)

    return Compiled(
        reset=jit(reset),
        step=jit(step),
        step_with_grad=jit(step_with_grad),
        query=jit(functools.partial(query, with_grad=False)),
        query_with_grad=jit(functools.partial(query, with_grad=True)),
        reward_and_grad=jit(reward_and_grad),
        render=jit(render),
        reset_cols=reset_cols,
        step_cols=step_cols,
        grad_step_cols=grad_step_cols,
        query_cols=query_cols,
        reward_grad_cols=reward_grad_cols,
    )


def seed_chain(seed: int) -> np.ndarray:
    """The key-chain seed of an env reset with ``seed``: what single and vector envs use.

    ``reset(seed=s)`` seeds Gymnasium's ``np_random`` with ``s`` and draws one
    integer from it; the env's JAX key chain starts at ``PRNGKey(that integer)``.
    """
    return chain_from_int(int(seeding.np_random(seed)[0].integers(0, 2**31 - 1)))


def chain_from_int(value: int) -> np.ndarray:
    return np.asarray(jax.random.PRNGKey(value))
