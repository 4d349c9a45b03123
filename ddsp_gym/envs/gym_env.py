"""The Gymnasium wrapper around :class:`FunctionalDDSPEnv`: owns the key and state, speaks numpy."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.utils import seeding
from jax import Array

from ddsp_gym.audio_io import fit_length, load_audio
from ddsp_gym.backends import validate_backend
from ddsp_gym.envs import packing
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv
from ddsp_gym.features.summary import SUMMARY_BOUND
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import make_task


class StepChange(NamedTuple):
    """The state fields a step changes (every other field stays as it was).

    A jitted step returns only these: returning the whole state made XLA copy its
    unchanged fields (the target's audio and spectra) into new buffers at every
    step, ~5-8 % of a spectrum-scored env's step at batch 1 (profiled).
    """

    knobs: Array
    step_count: Array

    def applied_to(self, state: EnvState) -> EnvState:
        return state._replace(knobs=self.knobs, step_count=self.step_count)


class _Compiled(NamedTuple):
    """The jitted pure functions of one env configuration (see :func:`compiled`)."""

    reset: Callable  # (chain, params) -> (chain, state, packed reset: obs, knobs, known)
    step: Callable  # (state, action, params) -> (StepChange, packed step, see packing.step_fields)
    step_with_grad: Callable  # same, with the reward gradient packed in
    reward_and_grad: Callable  # (state, action, params) -> packed (reward, grad)
    render: Callable  # (knobs, key, params) -> audio
    reset_cols: packing.Layout
    step_cols: packing.Layout
    grad_step_cols: packing.Layout
    reward_grad_cols: packing.Layout


# How XLA:CPU orders the kernels of a single env's computations (``cpu_schedule=``).
# "concurrency", XLA's default, schedules breadth-first so that independent kernels can
# run at once in its thread pool; "memory" schedules depth-first, which reuses buffers
# and so runs the kernels one after another on the calling thread. At batch 1 a step is
# mostly small kernels, and on the 2-core machine handing some to the pool and waiting
# for them cost more than the overlap gained for some envs and less for others: single
# env steps/s depth-first over breadth-first, in alternating rounds in one process (two
# runs), DistortionDrive 1.35-1.41x, FaustPatch 1.27-1.35x, FMBell 1.22-1.23x,
# CutoffSweeper 1.13-1.22x, GuitarTone 1.12-1.22x, VolumeMatch 1.07x, SubtractivePatch
# 1.06-1.07x, and in five runs BrightnessStability 0.99-1.12x (mean 1.05x) and
# CompressorCalibration 1.04-1.10x; but SineTuner 0.69-0.72x and PlateauEscape
# 0.82-0.89x (their renders and FFTs are large independent kernels). Gradients (a step
# with expose_grad, reward_and_grad) of the first seven: 0.85-1.16x, GuitarTone's 0.85.
# So each registry entry names the faster for its steps. For those nine the order changes
# no result (tests/test_speed_paths.py plays both); it can change float32 rounding where
# XLA then fuses differently (RealSynthPatch: 4e-6 in an observation; it keeps the
# default). Native vector envs keep XLA's default: their batches fill the pool (steps of
# 64 envs were 5-25 % slower depth-first). The option is per function; the process-wide
# flag --xla_cpu_enable_concurrency_optimized_scheduler does the same to every
# computation (as a per-function option it changed nothing).
CPU_SCHEDULES: dict[str, str | None] = {
    "concurrency": None,  # XLA's default
    "memory": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
}


def validate_cpu_schedule(schedule: str) -> str:
    """``schedule`` if it names one of :data:`CPU_SCHEDULES`, else a ValueError."""
    if schedule not in CPU_SCHEDULES:
        raise ValueError(f"cpu_schedule must be one of {tuple(CPU_SCHEDULES)}, not {schedule!r}")
    return schedule


def _jit_with_schedule(schedule: str) -> Callable[[Callable], Callable]:
    """``jax.jit`` compiling with XLA:CPU's ``schedule`` (no option off CPU or by default)."""
    scheduler_type = CPU_SCHEDULES[validate_cpu_schedule(schedule)]
    if scheduler_type is None or jax.default_backend() != "cpu":
        return jax.jit
    return functools.partial(jax.jit, compiler_options={"xla_cpu_scheduler_type": scheduler_type})


@functools.lru_cache(maxsize=128)
def compiled(fenv: FunctionalDDSPEnv, cpu_schedule: str = "concurrency") -> _Compiled:
    """Jitted reset/step/... closed over ``fenv``, built once per configuration.

    ``fenv`` is a frozen, hashable dataclass, so every env instance with the same
    configuration shares these functions and their compilations; closing over it
    (instead of a static argument) spares hashing it on every call. Each returns
    what the host needs packed into one array (:mod:`ddsp_gym.envs.packing`).
    ``cpu_schedule``: see :data:`CPU_SCHEDULES`.
    """
    jit = _jit_with_schedule(cpu_schedule)
    plant = fenv.plant
    d = fenv.num_knobs
    reset_cols = packing.Layout((("obs", fenv.obs_size), ("knobs", d), ("target_known", None)))
    step_cols = packing.Layout(tuple(packing.step_fields(fenv.obs_size, d, False)))
    grad_step_cols = packing.Layout(tuple(packing.step_fields(fenv.obs_size, d, True)))
    reward_grad_cols = packing.Layout((("reward", None), ("reward_grad", d)))

    def knobs_of(state):
        return packing.knob_vector(plant.controls(state.knobs), plant.knob_names)

    def reset(chain, params):
        chain, state, obs = fenv.reset_from_chain(chain, params)
        values = {"obs": obs, "knobs": knobs_of(state), "target_known": state.target_known}
        return chain, state, packing.pack(reset_cols, values)

    def step_values(state, obs, reward, terminated, info):
        return {
            "obs": obs,
            "reward": reward,
            "terminated": terminated,
            "distance": info.distance,
            "success": info.success,
            "param_error": info.param_error,
            "penalty": info.penalty,
            "knobs": knobs_of(state),
        }

    def step(state, action, params):
        state, *out = fenv.step(state.render_key, state, action, params)
        values = step_values(state, *out)
        return StepChange(state.knobs, state.step_count), packing.pack(step_cols, values)

    def step_with_grad(state, action, params):
        state, *out, grad = fenv.step_with_grad(state.render_key, state, action, params)
        values = {**step_values(state, *out), "reward_grad": grad}
        return StepChange(state.knobs, state.step_count), packing.pack(grad_step_cols, values)

    def reward_and_grad(state, action, params):
        reward, grad, _ = fenv.reward_and_grad(state, action, params)
        return packing.pack(reward_grad_cols, {"reward": reward, "reward_grad": grad})

    def render(knobs, key, params):
        return plant.render(knobs, key, params.input_audio)

    return _Compiled(
        reset=jit(reset),
        step=jit(step),
        step_with_grad=jit(step_with_grad),
        reward_and_grad=jit(reward_and_grad),
        render=jit(render),
        reset_cols=reset_cols,
        step_cols=step_cols,
        grad_step_cols=grad_step_cols,
        reward_grad_cols=reward_grad_cols,
    )


@functools.lru_cache(maxsize=128)
def compiled_queries(
    fenv: FunctionalDDSPEnv, cpu_schedule: str = "concurrency"
) -> tuple[Callable, Callable, packing.Layout]:
    """Jitted (query, query_with_grad) of ``fenv`` and their packed layout.

    A query evaluates an action from a state without stepping (an optimizer's
    probe): (state, action, params) -> packed reward, info numbers, physical
    knobs and, for ``query_with_grad``, the reward gradient.
    """
    plant, d = fenv.plant, fenv.num_knobs
    skip = ("obs", "terminated")
    fields = [f for f in packing.step_fields(fenv.obs_size, d, True) if f[0] not in skip]
    cols = packing.Layout(tuple(fields))

    def query(state, action, params, with_grad):
        if with_grad:
            reward, grad, (_, info) = fenv.reward_and_grad(state, action, params)
        else:
            (reward, (_, info)), grad = fenv.reward_of_action(state, action, params), jnp.zeros(d)
        knobs = fenv.knobs_after(state.knobs, jnp.clip(action, -1.0, 1.0))
        values = {
            "reward": reward,
            "distance": info.distance,
            "success": info.success,
            "param_error": info.param_error,
            "penalty": info.penalty,
            "knobs": packing.knob_vector(plant.controls(knobs), plant.knob_names),
            "reward_grad": grad,
        }
        return packing.pack(cols, values)

    jit = _jit_with_schedule(cpu_schedule)
    return (
        jit(functools.partial(query, with_grad=False)),
        jit(functools.partial(query, with_grad=True)),
        cols,
    )


def seed_chain(seed: int) -> np.ndarray:
    """The key-chain seed of an env reset with ``seed``: what ``DDSPEnv`` and the vector env use.

    ``reset(seed=s)`` seeds Gymnasium's ``np_random`` with ``s`` and draws one
    integer from it; the env's JAX key chain starts at ``PRNGKey(that integer)``.
    """
    return _chain_from_int(int(seeding.np_random(seed)[0].integers(0, 2**31 - 1)))


def _chain_from_int(value: int) -> np.ndarray:
    return np.asarray(jax.random.PRNGKey(value))


# The hardware backend scores recorded audio with the same functional pieces (jitted
# once per configuration; speed hardly matters next to a take in real time).
@functools.partial(jax.jit, static_argnums=0)
def _hw_score(fenv: FunctionalDDSPEnv, state: EnvState, knobs, audio):
    reward, (obs, info) = fenv.score(state, knobs, audio)
    return reward, obs, info, packing.knob_vector(fenv.plant.controls(knobs), fenv.plant.knob_names)


@functools.partial(jax.jit, static_argnums=0)
def _hw_start(fenv: FunctionalDDSPEnv, knobs, target_knobs, target_known, target_audio, key, audio):
    state = fenv.start(knobs, target_knobs, target_known, target_audio, key)
    obs = fenv.observe(knobs, audio, state.target_summary)
    return state, obs, packing.knob_vector(fenv.plant.controls(knobs), fenv.plant.knob_names)


def build_functional(
    plant: str,
    task: str,
    plant_config: dict[str, Any] | None = None,
    task_config: dict[str, Any] | None = None,
    control: str = "absolute",
    max_delta: float = 0.1,
    target: str | Path | np.ndarray | None = None,
    input: str | Path | np.ndarray | None = None,  # noqa: A002 - the documented kwarg name
    slew_penalty: float = 0.0,
    success_threshold: float | None = None,
    random_start: bool = True,
) -> tuple[FunctionalDDSPEnv, EnvParams]:
    """The functional env and its params from the registry kwargs (shared by all wrappers)."""
    task_config = dict(task_config or {})
    if success_threshold is not None:
        task_config["success_threshold"] = float(success_threshold)
    plant_obj = make_plant(plant, **(plant_config or {}))
    fenv = FunctionalDDSPEnv(
        plant=plant_obj,
        task=make_task(task, **task_config),
        control=control,
        max_delta=max_delta,
        slew_penalty=slew_penalty,
        random_start=random_start,
    )
    n, sr = plant_obj.n_samples, plant_obj.sample_rate
    params = EnvParams(
        target_audio=_as_audio(target, sr, n, "target"),
        input_audio=_as_audio(input, sr, n, "input"),
    )
    return fenv, params


def _as_audio(source: str | Path | np.ndarray | None, sample_rate: int, n: int, what: str):
    if source is None:
        return None
    if isinstance(source, str | Path):
        return load_audio(source, sample_rate, n)
    audio = np.asarray(source, np.float32)
    if audio.ndim != 1 or audio.size == 0 or not np.all(np.isfinite(audio)):
        raise ValueError(f"{what} must be a non-empty 1-D array of finite samples")
    return fit_length(audio, n)


class DDSPEnv(gym.Env[np.ndarray, np.ndarray]):
    """An agent turns the knobs of a differentiable synth/effect to match a target sound.

    ## Description
    Each env plays one *plant* (a pure JAX synth or effect, ``env.unwrapped.plant``)
    and scores it with one *task* (features of the sound and a distance to the
    target's). Which plant and task, and the seed demo an id realizes, are set
    in ``envs_registry.yaml`` (``ddsp-gym list`` prints them).

    ## Action Space
    ``Box(-1, 1, (d,), float32)``, one entry per knob. With ``control="absolute"``
    the action sets the knobs' unit positions ``u = (a + 1) / 2``; with
    ``control="delta"`` it nudges them, ``u <- clip(u + max_delta * a, 0, 1)``.
    Out-of-range actions are clipped; NaN or infinite entries raise ``ValueError``.

    ## Observation Space
    ``Box(-5, 5, (d + 2 * 28,), float32)``: the knobs' unit positions, then
    28 summary features of the current sound and of the target (spectral
    centroid, rolloff, flatness, loudness, 16 mel-band levels, 8 envelope
    points; each scaled to about [-1, 1]).

    ## Rewards
    ``-distance / distance_scale - penalties``: ``distance_scale`` is calibrated
    so a random policy scores about -1; penalties are knob slew (weight
    ``slew_penalty``, default 0) and output peaks above full scale.

    ## Starting State
    A target drawn from the plant's knob distribution (uniform in unit space,
    seeded by ``reset(seed=...)``) or loaded from ``target=`` (a WAV path or an
    array); knobs start at random unit positions (or 0.5 with ``random_start=False``).
    Seeding: ``reset(seed=s)`` starts the env's JAX key chain at
    :func:`seed_chain` ``(s)``; every reset splits the chain into the episode's
    key and its next link, so ``reset(seed=s)`` then ``reset()``... replays the
    same episodes, and env ``i`` of a vector env reset with ``seed=s`` plays
    exactly what this env plays from ``seed=s + i``.

    ## Episode End
    Terminates on success (distance within the task's threshold, or knobs within
    ``param_tolerance`` where the task states its criterion in knob space and
    the target's knobs are known); truncated by ``max_episode_steps``.

    ## Arguments
    ``plant``, ``task`` (registry names), ``plant_config``, ``task_config``,
    ``control`` ("absolute" | "delta"), ``max_delta``, ``expose_grad`` (adds
    ``info["reward_grad"]``), ``target``, ``input`` (an effect's dry signal),
    ``backend`` ("sim"; "hardware": the same knobs played on a real synth or
    effect over MIDI and audio; "plugin": set as parameters of a hosted VST
    plugin rendered offline), ``hardware`` / ``plugin`` (options, see
    ``ddsp_gym/backends/README.md``; merged over the registry's
    ``hardware_defaults`` / ``plugin_defaults``), ``render_mode`` ("rgb_array" |
    "human"), ``slew_penalty``, ``success_threshold``, ``random_start``,
    ``cpu_schedule`` ("concurrency" | "memory": the order XLA:CPU runs this env's
    kernels in, a speed setting only; see :data:`CPU_SCHEDULES`).

    ## Hardware backend
    Spaces, rewards and info are the sim's: the recorded take goes through the
    same task features and reward (:meth:`FunctionalDDSPEnv.score`). Knobs are
    quantized to what the device's MIDI transport can carry (``info["knobs"]``
    reports those; ``info["hardware"]`` the values sent, levels, latency). The
    env is nondeterministic (``env.spec.nondeterministic`` is True and
    ``env.unwrapped.nondeterministic`` too) and has no gradient:
    ``expose_grad=True`` is an error and ``reward_grad`` is never in ``info``;
    :meth:`twin_reward_and_grad` gives the sim twin's gradient against the
    recorded target. ``reset()`` reopens the device after a fault; ``close()``
    switches every note off and closes the ports.

    ## Plugin backend
    As the hardware backend (same spaces, rewards, ``twin_reward_and_grad``, no
    ``reward_grad``), with the take rendered offline by a hosted plugin whose
    parameters are set by name from a plugin knob map; ``info["plugin"]``
    reports the normalized values sent, levels and render time. Rendering is
    deterministic, so the env is not marked nondeterministic.

    ## Info
    ``distance`` (task units), ``success``, ``knobs`` (physical values by name),
    ``penalty``, ``param_error`` (max unit-space knob error, when the target's
    knobs are known), ``reward_grad`` (d reward / d action, with ``expose_grad``),
    ``hardware`` / ``plugin`` (those backends only: see above).

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 4}
    _spec = None
    nondeterministic = False

    def __init__(
        self,
        plant: str,
        task: str,
        plant_config: dict[str, Any] | None = None,
        task_config: dict[str, Any] | None = None,
        control: str = "absolute",
        max_delta: float = 0.1,
        expose_grad: bool = False,
        target: str | Path | np.ndarray | None = None,
        input: str | Path | np.ndarray | None = None,  # noqa: A002 - the documented kwarg name
        backend: str = "sim",
        hardware: dict[str, Any] | None = None,
        hardware_defaults: dict[str, Any] | None = None,
        plugin: dict[str, Any] | None = None,
        plugin_defaults: dict[str, Any] | None = None,
        render_mode: str | None = None,
        slew_penalty: float = 0.0,
        success_threshold: float | None = None,
        random_start: bool = True,
        cpu_schedule: str = "concurrency",
    ) -> None:
        self.backend = validate_backend(backend)
        self.hardware_options = {**(hardware_defaults or {}), **(hardware or {})}
        self.plugin_options = {**(plugin_defaults or {}), **(plugin or {})}
        if self.backend != "sim" and expose_grad:
            raise ValueError(
                f"expose_grad=True needs backend='sim': a {self.backend} backend has no "
                "gradient. Use env.unwrapped.twin_reward_and_grad(action) (the sim twin's "
                "gradient) or a gradient-free estimate (SPSA)"
            )
        self.device = None  # the hardware or plugin backend that renders instead of the plant
        self._last_take = None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"not {render_mode!r}"
            )
        self.render_mode = render_mode
        self.functional, self._params = build_functional(
            plant,
            task,
            plant_config,
            task_config,
            control=control,
            max_delta=max_delta,
            target=target,
            input=input,
            slew_penalty=slew_penalty,
            success_threshold=success_threshold,
            random_start=random_start,
        )
        self.expose_grad = bool(expose_grad)
        self._jit = compiled(self.functional, cpu_schedule)  # validates cpu_schedule
        self.cpu_schedule = cpu_schedule
        plant_obj = self.functional.plant
        d = plant_obj.num_knobs
        self.action_space = gym.spaces.Box(-1.0, 1.0, (d,), np.float32)
        self.observation_space = gym.spaces.Box(
            -SUMMARY_BOUND, SUMMARY_BOUND, (self.functional.obs_size,), np.float32
        )
        self.state: EnvState | None = None
        self._chain: np.ndarray | None = None  # this env's key chain (see seed_chain)
        self._target_known = False
        if self.backend == "hardware":
            from ddsp_gym.backends.hardware import HardwareBackend

            self.nondeterministic = True
            self.device = HardwareBackend(plant_obj, self.hardware_options)
        elif self.backend == "plugin":
            from ddsp_gym.backends.plugin import PluginBackend

            # Offline rendering is deterministic: nondeterministic stays False.
            self.device = PluginBackend(plant_obj, self.plugin_options)

    @property
    def hardware(self):
        """The HardwareBackend of ``backend="hardware"`` (else None)."""
        return self.device if self.backend == "hardware" else None

    @property
    def plugin(self):
        """The PluginBackend of ``backend="plugin"`` (else None)."""
        return self.device if self.backend == "plugin" else None

    @property
    def spec(self):
        return self._spec

    @spec.setter
    def spec(self, value) -> None:
        # gym.make sets the spec after construction; a hardware env is nondeterministic
        # whatever the registry says (Gymnasium's checker then skips determinism checks).
        if value is not None and self.nondeterministic and not value.nondeterministic:
            value = dataclasses.replace(value, nondeterministic=True)
        self._spec = value

    # ---- accessors ----------------------------------------------------------------

    @property
    def plant(self):
        return self.functional.plant

    @property
    def task(self):
        return self.functional.task

    @property
    def params(self) -> EnvParams:
        return self._params

    @property
    def input_audio(self) -> np.ndarray | None:
        """The signal an effect processes: ``input=``, else the plant's default program
        (None for a synth)."""
        audio = self.plant.input_or_default(self._params.input_audio)
        return None if audio is None else np.asarray(audio, np.float32)

    # ---- gymnasium API --------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. ``seed`` restarts this env's key chain (see :func:`seed_chain`);
        without it the chain goes on, so successive episodes get fresh targets."""
        super().reset(seed=seed)
        if seed is not None or self._chain is None:
            self._chain = _chain_from_int(int(self.np_random.integers(0, 2**31 - 1)))
        if self.device is not None:
            chain, key = jax.random.split(self._chain)  # as FunctionalDDSPEnv.reset_from_chain
            self._chain = np.asarray(chain)
            return self._hardware_reset(key)
        self._chain, self.state, packed = self._jit.reset(self._chain, self._params)
        row, cols = np.asarray(packed), self._jit.reset_cols
        self._target_known = bool(packing.column(row, cols, "target_known"))
        return row[cols["obs"]].copy(), {"knobs": self._physical(row[cols["knobs"]])}

    def _hardware_reset(self, key):
        """Record the target (hidden knobs played on the device, or the given WAV) and the start.

        The hidden knobs are the sim's for the same seed, quantized to the device."""
        hw = self.device
        hw.prepare()
        target_knobs, knobs, render_key = self.functional.episode_knobs(key)
        if self._params.target_audio is None:
            target_take = hw.render(np.asarray(target_knobs), self.input_audio)
            target_audio, target_knobs, known = target_take.audio, target_take.knobs, True
        else:
            target_audio, known = np.asarray(self._params.target_audio), False
        take = hw.render(np.asarray(knobs), self.input_audio)
        self._last_take = take
        self.state, obs, physical = _hw_start(
            self.functional, jnp.asarray(take.knobs), jnp.asarray(target_knobs),
            jnp.asarray(known), jnp.asarray(target_audio), render_key, jnp.asarray(take.audio),
        )  # fmt: skip
        self._target_known = known
        info = {"knobs": self._physical(np.asarray(physical)), self.backend: take.info()}
        return np.asarray(obs), info

    def _device_score(self, state: EnvState, action: np.ndarray):
        """Play ``action`` on the device and score the take -> (take, reward, obs, info)."""
        knobs = self.functional.knobs_after(state.knobs, jnp.clip(jnp.asarray(action), -1, 1))
        take = self.device.render(np.asarray(knobs), self.input_audio)
        reward, obs, out, physical = _hw_score(
            self.functional, state, jnp.asarray(take.knobs), jnp.asarray(take.audio)
        )
        info = self._info(
            out.distance, out.success, np.asarray(physical), out.penalty, out.param_error
        )
        info[self.backend] = take.info()
        return take, float(reward), obs, info

    def _info(self, distance, success, physical_knobs, penalty, param_error) -> dict[str, Any]:
        """The ``info`` of a step or query (``param_error`` only where the target is known)."""
        info: dict[str, Any] = {
            "distance": float(distance),
            "success": bool(success),
            "knobs": self._physical(physical_knobs),
            "penalty": float(penalty),
        }
        if self._target_known:
            info["param_error"] = float(param_error)
        return info

    def _packed_info(self, row: np.ndarray, cols: packing.Layout) -> tuple[dict[str, Any], list]:
        """(:meth:`_info`, the row as Python floats) of a packed row.

        One ``tolist`` reads every number of the row, cheaper than a numpy slice and
        scalar per field (see :meth:`_checked_action` on the host work of a step).
        """
        values = row.tolist()
        scalar = functools.partial(packing.scalar, values, cols)
        info = self._info(
            scalar("distance"), scalar("success"), values[cols["knobs"]], scalar("penalty"),
            scalar("param_error"),
        )  # fmt: skip
        return info, values

    def _device_step(self, state: EnvState, action: np.ndarray):
        take, reward, obs, info = self._device_score(state, action)
        self._last_take = take
        self.state = state._replace(knobs=jnp.asarray(take.knobs), step_count=state.step_count + 1)
        return np.asarray(obs), reward, info["success"], False, info

    def step(self, action):
        state = self._require_state()
        action = self._checked_action(action)
        if self.device is not None:
            return self._device_step(state, action)
        if self.expose_grad:
            change, packed = self._jit.step_with_grad(state, action, self._params)
            cols = self._jit.grad_step_cols
        else:
            change, packed = self._jit.step(state, action, self._params)
            cols = self._jit.step_cols
        self.state = change.applied_to(state)
        row = np.asarray(packed)  # the step's one transfer to the host
        info, values = self._packed_info(row, cols)
        if self.expose_grad:
            info["reward_grad"] = packing.column(row, cols, "reward_grad")
        reward, terminated = (packing.scalar(values, cols, n) for n in ("reward", "terminated"))
        return packing.column(row, cols, "obs"), reward, bool(terminated), False, info

    def reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """(reward, d reward / d action) of ``action`` from the current state, without stepping."""
        if self.device is not None:
            raise NotImplementedError(
                f"the {self.backend} backend has no gradient; use twin_reward_and_grad(action) "
                "for the sim twin's, or a gradient-free estimate (SPSA) from step()"
            )
        return self.twin_reward_and_grad(action)

    def twin_reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """The sim twin's (reward, d reward / d action) of ``action`` from the current state.

        On the sim backend this is :meth:`reward_and_grad`. On hardware the twin
        (the JAX plant) is scored against the *recorded* target, so its gradient
        points the real device's knobs towards the real target as far as the
        twin models the device.
        """
        state = self._require_state()
        packed = self._jit.reward_and_grad(state, self._checked_action(action), self._params)
        row, cols = np.asarray(packed), self._jit.reward_grad_cols
        return float(packing.column(row, cols, "reward")), packing.column(row, cols, "reward_grad")

    def reward_of(self, action, with_grad: bool = False) -> tuple[float, dict[str, Any]]:
        """(reward, info) of ``action`` from the current state, without stepping.

        One plant query, as an optimizer's probe: ``info`` is what :meth:`step`
        would report (``reward_grad`` too when ``with_grad``); the state is kept.
        On the hardware and plugin backends the query is a take on the device
        (``info[backend]``) and ``with_grad`` is refused: the device has no gradient,
        the sim twin's is :meth:`twin_reward_and_grad`.
        """
        state = self._require_state()
        if self.device is not None:
            if with_grad:
                raise NotImplementedError(
                    f"the {self.backend} backend has no gradient; use "
                    "twin_reward_and_grad(action) for the sim twin's"
                )
            _, reward, _, info = self._device_score(state, self._checked_action(action))
            return reward, info
        query, query_with_grad, cols = compiled_queries(self.functional, self.cpu_schedule)
        run = query_with_grad if with_grad else query
        row = np.asarray(run(state, self._checked_action(action), self._params))
        info, values = self._packed_info(row, cols)
        if with_grad:
            info["reward_grad"] = packing.column(row, cols, "reward_grad")
        return packing.scalar(values, cols, "reward"), info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to gym.make")
            return None
        state = self._require_state()
        audio = self.current_audio()
        if self.render_mode == "rgb_array":
            from ddsp_gym.plotting import spectrogram_image

            return spectrogram_image(audio, np.asarray(state.target_audio), self.plant.sample_rate)
        self._play(audio)
        return None

    # ---- helpers --------------------------------------------------------------------

    def current_audio(self) -> np.ndarray:
        """The sound of the current knobs, (n_samples,) float32 (hardware: the last take)."""
        state = self._require_state()
        if self._last_take is not None:
            return np.asarray(self._last_take.audio)
        return np.asarray(self._jit.render(state.knobs, state.render_key, self._params))

    def target_audio(self) -> np.ndarray:
        return np.asarray(self._require_state().target_audio)

    def _play(self, audio: np.ndarray) -> None:
        try:
            import sounddevice as sd

            sd.play(audio, self.plant.sample_rate, blocking=True)
        except Exception as err:  # no PortAudio, no device: rendering must not crash training
            warnings.warn(f"cannot play audio ({err}); use render_mode='rgb_array'", stacklevel=2)

    def close(self) -> None:
        """Hardware: all notes and sounds off, MIDI port and audio stream closed; plugin:
        the host released."""
        if self.device is not None:
            self.device.close()
        super().close()

    def _require_state(self) -> EnvState:
        if self.state is None:
            raise RuntimeError("call reset() before step(), reward_and_grad() or render()")
        return self.state

    def _checked_action(self, action) -> np.ndarray:
        """``action`` as float32, refused if misshapen or not finite; not clipped here
        (every jitted path clips it to [-1, 1], and so does the device path).

        Checked with Python's math on the action's few numbers: right after a jitted
        step each numpy call costs several times its isolated time (cold caches). With
        the packed row read by one ``tolist``, a single env's host work per step fell
        from ~40 to ~23 us (CutoffSweeper, step ~300 us; profiled).
        """
        array = np.asarray(action, dtype=np.float32)
        if array.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {array.shape}; this env expects {self.action_space.shape}"
            )
        values = array.tolist()
        if not all(map(math.isfinite, values)):
            i = next(i for i, v in enumerate(values) if not math.isfinite(v))
            name = self.plant.knob_names[i]
            raise ValueError(
                f"action[{i}] ({name}) is {values[i]}: actions must be finite numbers in [-1, 1]"
            )
        return array

    def _physical(self, knobs: np.ndarray | list[float]) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.plant.knob_names, knobs, strict=True)}
