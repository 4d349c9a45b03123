"""The Gymnasium wrapper around :class:`FunctionalDDSPEnv`: owns the key and state, speaks numpy."""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from ddsp_gym.audio_io import fit_length, load_audio
from ddsp_gym.backends import validate_backend
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv
from ddsp_gym.features.summary import SUMMARY_BOUND
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import make_task


# Module-level jitted functions with the (hashable, frozen) functional env as a static
# argument: every env instance with the same configuration shares one compilation.
@partial(jax.jit, static_argnums=0)
def _reset(fenv: FunctionalDDSPEnv, key, params: EnvParams):
    return fenv.reset(key, params)


@partial(jax.jit, static_argnums=0)
def _step(fenv: FunctionalDDSPEnv, state: EnvState, action, params: EnvParams):
    return fenv.step(state.render_key, state, action, params)


@partial(jax.jit, static_argnums=0)
def _step_with_grad(fenv: FunctionalDDSPEnv, state: EnvState, action, params: EnvParams):
    return fenv.step_with_grad(state.render_key, state, action, params)


@partial(jax.jit, static_argnums=0)
def _reward_and_grad(fenv: FunctionalDDSPEnv, state: EnvState, action, params: EnvParams):
    return fenv.reward_and_grad(state, action, params)


@partial(jax.jit, static_argnums=0)
def _score(fenv: FunctionalDDSPEnv, state: EnvState, knobs, audio):
    return fenv.score(state, knobs, audio)


@partial(jax.jit, static_argnums=0)
def _start(fenv: FunctionalDDSPEnv, knobs, target_knobs, target_known, target_audio, key):
    return fenv.start(knobs, target_knobs, target_known, target_audio, key)


@partial(jax.jit, static_argnums=0)
def _observe(fenv: FunctionalDDSPEnv, knobs, audio, target_summary):
    return fenv.observe(knobs, audio, target_summary)


@partial(jax.jit, static_argnums=0)
def _render_plant(fenv: FunctionalDDSPEnv, knobs, key, params: EnvParams):
    return fenv.plant.render(knobs, key, params.input_audio)


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

    ## Episode End
    Terminates on success (distance within the task's threshold, or knobs within
    ``param_tolerance`` where the task states its criterion in knob space and
    the target's knobs are known); truncated by ``max_episode_steps``.

    ## Arguments
    ``plant``, ``task`` (registry names), ``plant_config``, ``task_config``,
    ``control`` ("absolute" | "delta"), ``max_delta``, ``expose_grad`` (adds
    ``info["reward_grad"]``), ``target``, ``input`` (an effect's dry signal),
    ``backend`` ("sim", or "hardware": the same knobs played on a real synth or
    effect over MIDI and audio; "plugin" is refused until available),
    ``hardware`` (hardware options, see ``ddsp_gym/backends/README.md``; merged
    over the registry's ``hardware_defaults``), ``render_mode`` ("rgb_array" |
    "human"), ``slew_penalty``, ``success_threshold``, ``random_start``.

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

    ## Info
    ``distance`` (task units), ``success``, ``knobs`` (physical values by name),
    ``penalty``, ``param_error`` (max unit-space knob error, when the target's
    knobs are known), ``reward_grad`` (d reward / d action, with ``expose_grad``),
    ``hardware`` (hardware backend only: see above).

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
        render_mode: str | None = None,
        slew_penalty: float = 0.0,
        success_threshold: float | None = None,
        random_start: bool = True,
    ) -> None:
        self.backend = validate_backend(backend)
        self.hardware_options = {**(hardware_defaults or {}), **(hardware or {})}
        if self.backend == "hardware" and expose_grad:
            raise ValueError(
                "expose_grad=True needs backend='sim': a real device has no gradient. On "
                "hardware use env.unwrapped.twin_reward_and_grad(action) (the sim twin's "
                "gradient) or a gradient-free estimate (SPSA)"
            )
        self.hardware = None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"not {render_mode!r}"
            )
        self.render_mode = render_mode
        task_config = dict(task_config or {})
        if success_threshold is not None:
            task_config["success_threshold"] = float(success_threshold)
        plant_obj = make_plant(plant, **(plant_config or {}))
        self.functional = FunctionalDDSPEnv(
            plant=plant_obj,
            task=make_task(task, **task_config),
            control=control,
            max_delta=max_delta,
            slew_penalty=slew_penalty,
            random_start=random_start,
        )
        self.expose_grad = bool(expose_grad)
        n, sr = plant_obj.n_samples, plant_obj.sample_rate
        self._params = EnvParams(
            target_audio=_as_audio(target, sr, n, "target"),
            input_audio=_as_audio(input, sr, n, "input"),
        )
        d = plant_obj.num_knobs
        self.action_space = gym.spaces.Box(-1.0, 1.0, (d,), np.float32)
        self.observation_space = gym.spaces.Box(
            -SUMMARY_BOUND, SUMMARY_BOUND, (self.functional.obs_size,), np.float32
        )
        self.state: EnvState | None = None
        self._last_take = None
        if self.backend == "hardware":
            from ddsp_gym.backends.hardware import HardwareBackend

            self.nondeterministic = True
            self.hardware = HardwareBackend(plant_obj, self.hardware_options)

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

    # ---- gymnasium API --------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        key = jax.random.PRNGKey(int(self.np_random.integers(0, 2**31 - 1)))
        if self.hardware is not None:
            return self._hardware_reset(key)
        self.state, obs = _reset(self.functional, key, self._params)
        info = {"knobs": self._physical(self.state.knobs)}
        return np.asarray(obs), info

    def _input_np(self) -> np.ndarray | None:
        audio = self._params.input_audio
        return None if audio is None else np.asarray(audio, np.float32)

    def _hardware_reset(self, key):
        """Record the target (hidden knobs played on the device, or the given WAV) and the start."""
        hw = self.hardware
        hw.prepare()
        target_knobs, knobs, render_key = self.functional.episode_knobs(key)
        if self._params.target_audio is None:
            target_take = hw.render(np.asarray(target_knobs), self._input_np())
            target_audio, target_knobs, known = target_take.audio, target_take.knobs, True
        else:
            target_audio, known = np.asarray(self._params.target_audio), False
        take = hw.render(np.asarray(knobs), self._input_np())
        self._last_take = take
        fenv = self.functional
        self.state = _start(
            fenv, jnp.asarray(take.knobs), jnp.asarray(target_knobs), jnp.asarray(known),
            jnp.asarray(target_audio), render_key,
        )  # fmt: skip
        obs = _observe(fenv, self.state.knobs, jnp.asarray(take.audio), self.state.target_summary)
        info = {"knobs": self._physical(self.state.knobs), "hardware": take.info()}
        return np.asarray(obs), info

    def _hardware_step(self, state: EnvState, action):
        knobs = self.functional.knobs_after(state.knobs, action)
        take = self.hardware.render(np.asarray(knobs), self._input_np())
        self._last_take = take
        knobs = jnp.asarray(take.knobs)
        reward, (obs, info) = _score(self.functional, state, knobs, jnp.asarray(take.audio))
        self.state = state._replace(knobs=knobs, step_count=state.step_count + 1)
        info_dict = self._info(info, knobs, None)
        info_dict["hardware"] = take.info()
        return np.asarray(obs), float(reward), bool(info.success), False, info_dict

    def step(self, action):
        state = self._require_state()
        action = self._checked_action(action)
        if self.hardware is not None:
            return self._hardware_step(state, action)
        if self.expose_grad:
            self.state, obs, reward, terminated, info, grad = _step_with_grad(
                self.functional, state, action, self._params
            )
        else:
            self.state, obs, reward, terminated, info = _step(
                self.functional, state, action, self._params
            )
            grad = None
        info_dict = self._info(info, self.state.knobs, grad)
        return np.asarray(obs), float(reward), bool(terminated), False, info_dict

    def reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """(reward, d reward / d action) of ``action`` from the current state, without stepping."""
        if self.hardware is not None:
            raise NotImplementedError(
                "the hardware backend has no gradient; use twin_reward_and_grad(action) for the "
                "sim twin's, or a gradient-free estimate (SPSA) from step()"
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
        reward, grad, _ = _reward_and_grad(
            self.functional, state, self._checked_action(action), self._params
        )
        return float(reward), np.asarray(grad, np.float32)

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
        return np.asarray(
            _render_plant(self.functional, state.knobs, state.render_key, self._params)
        )

    def target_audio(self) -> np.ndarray:
        return np.asarray(self._require_state().target_audio)

    def _play(self, audio: np.ndarray) -> None:
        try:
            import sounddevice as sd

            sd.play(audio, self.plant.sample_rate, blocking=True)
        except Exception as err:  # no PortAudio, no device: rendering must not crash training
            warnings.warn(f"cannot play audio ({err}); use render_mode='rgb_array'", stacklevel=2)

    def close(self) -> None:
        """Hardware: all notes and sounds off, MIDI port and audio stream closed."""
        if self.hardware is not None:
            self.hardware.close()
        super().close()

    def _require_state(self) -> EnvState:
        if self.state is None:
            raise RuntimeError("call reset() before step(), reward_and_grad() or render()")
        return self.state

    def _checked_action(self, action) -> jax.Array:
        array = np.asarray(action, dtype=np.float32)
        if array.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {array.shape}; this env expects {self.action_space.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            i = int(bad[0])
            name = self.plant.knob_names[i]
            raise ValueError(
                f"action[{i}] ({name}) is {array[i]}: actions must be finite numbers in [-1, 1]"
            )
        return jnp.asarray(np.clip(array, -1.0, 1.0))

    def _physical(self, knobs) -> dict[str, float]:
        return {
            spec.name: float(spec.to_physical(float(u)))
            for spec, u in zip(self.plant.knob_specs, np.asarray(knobs), strict=True)
        }

    def _info(self, info, knobs, grad) -> dict[str, Any]:
        out: dict[str, Any] = {
            "distance": float(info.distance),
            "success": bool(info.success),
            "knobs": self._physical(knobs),
            "penalty": float(info.penalty),
        }
        if bool(self.state.target_known):
            out["param_error"] = float(info.param_error)
        if grad is not None:
            out["reward_grad"] = np.asarray(grad, np.float32)
        return out
