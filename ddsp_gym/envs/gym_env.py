"""The Gymnasium env: owns the key chain and the state, drives one backend, speaks numpy."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ddsp_gym.backends import make_backend
from ddsp_gym.backends.base import AbstractBackend, Capabilities, EnvCore, Outcome
from ddsp_gym.envs.compile import chain_from_int
from ddsp_gym.envs.config import EnvConfig, build_functional
from ddsp_gym.envs.functional import EnvParams, EnvState
from ddsp_gym.envs.spaces import checked_action
from ddsp_gym.features.summary import SUMMARY_BOUND


class DDSPEnv(gym.Env[np.ndarray, np.ndarray]):
    """An agent turns the knobs of a synth or effect to match a target sound.

    ## Description
    Each env plays one *plant* (a pure JAX synth or effect, ``env.unwrapped.plant``)
    and scores it with one *task* (features of the sound and a distance to the
    target's). Which plant and task, and the seed demo an id realizes, are set in
    ``envs_registry.yaml`` (``ddsp-gym list`` prints them).

    ## Action Space
    ``Box(-1, 1, (d,), float32)``, one entry per knob. With ``control="absolute"``
    the action sets the knobs' unit positions ``u = (a + 1) / 2``; with
    ``control="delta"`` it nudges them, ``u <- clip(u + max_delta * a, 0, 1)``.
    Out-of-range actions are clipped; NaN or infinite entries raise ``ValueError``.

    ## Observation Space
    ``Box(-5, 5, (d + 2 * 28,), float32)``: the knobs' unit positions, then 28 summary
    features of the current sound and of the target (spectral centroid, rolloff,
    flatness, loudness, 16 mel-band levels, 8 envelope points; each scaled to about
    [-1, 1]).

    ## Rewards
    ``-distance / distance_scale - penalties``: ``distance_scale`` is calibrated so a
    random policy scores about -1; penalties are knob slew (weight ``slew_penalty``,
    default 0) and output peaks above full scale. ``reward=`` swaps in another source
    (:mod:`ddsp_gym.rewards`).

    ## Starting State
    A target drawn from the plant's knob distribution (uniform in unit space, seeded by
    ``reset(seed=...)``) or loaded from ``target=`` (a WAV path or an array); knobs start
    at random unit positions (or mid travel with ``random_start=False``). Seeding:
    ``reset(seed=s)`` starts the env's JAX key chain at
    :func:`ddsp_gym.envs.compile.seed_chain` ``(s)``; every reset splits the chain into
    the episode's key and its next link, so ``reset(seed=s)`` then ``reset()``...
    replays the same episodes, and env ``i`` of a vector env reset with ``seed=s``
    plays exactly what this env plays from ``seed=s + i``.

    ## Episode End
    Terminates on success (distance within the task's threshold, or knobs within
    ``param_tolerance`` where the task states its criterion in knob space and the
    target's knobs are known); truncated by ``max_episode_steps``, or when an external
    reward source cannot rate any more (``Rating.truncate``: a lost stream). On hardware the sound
    decides, against the larger of the sim's threshold and k times the device's take
    noise (``info["hardware"]["success_rule"]``, which also reports the sim's verdict).

    ## Arguments
    The fields of :class:`ddsp_gym.envs.config.EnvConfig`, as keyword arguments (or
    one ``EnvConfig``).

    ## Backends
    ``backend="sim"`` renders the JAX plant; ``"hardware"`` plays the knobs on a real
    synth or effect over MIDI and records it; ``"plugin"`` renders a hosted plugin
    offline (``ddsp_gym/backends/``). Spaces, rewards and info are the same on every
    backend: a take goes through the same task features and reward. A device quantizes
    the knobs to what it can take (``info["knobs"]`` reports those, ``info[backend]``
    what was sent and the take's levels), has no gradient (``expose_grad=True`` is an
    error; :meth:`twin_reward_and_grad` gives the JAX twin's against the recorded
    target), and ``env.unwrapped.capabilities`` says what it offers. A hardware env is
    nondeterministic (``env.spec.nondeterministic``); ``reset()`` reopens the device
    after a fault; ``close()`` switches every note off and releases the device.

    ## Info
    ``distance`` (task units), ``success``, ``knobs`` (physical values by name),
    ``penalty``, ``param_error`` (max unit-space knob error, when the target's knobs
    are known), ``reward_grad`` (d reward / d action, with ``expose_grad``),
    ``hardware`` / ``plugin`` (those backends' take reports), ``reward_source`` (an
    external reward source's report).

    ## Version History
    * v1: RL-ready defaults (registry's ``rl_control``): ``control="log_delta"``,
      ``observation="log_difference"``, ``reward_shape="log"``.
    * v0: initial release (absolute control, summaries, linear reward).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 4}
    _spec = None

    def __init__(self, config: EnvConfig | None = None, /, **kwargs: Any) -> None:
        if config is not None and kwargs:
            raise TypeError("pass an EnvConfig or keyword arguments, not both")
        self.config = config if config is not None else EnvConfig.from_kwargs(**kwargs)
        cfg = self.config
        if cfg.render_mode is not None and cfg.render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"not {cfg.render_mode!r}"
            )
        self.render_mode = cfg.render_mode
        self.functional, self._params = build_functional(cfg)
        self.reward_source = cfg.reward_source
        self.backend: AbstractBackend = make_backend(cfg, self.functional.plant)
        if cfg.expose_grad and not self.differentiable:
            self.backend.close()
            why = (
                f"a {self.backend.name} backend has no gradient"
                if not self.backend.capabilities.differentiable
                else f"the reward source {type(self.reward_source).__name__} has none"
            )
            raise ValueError(
                f"expose_grad=True needs backend='sim' and the task reward: {why}. Use "
                "env.unwrapped.twin_reward_and_grad(action) (the sim twin's gradient) or a "
                "gradient-free estimate (SPSA)"
            )
        self._core = EnvCore(self.functional, self._params, self.reward_source)
        d = self.functional.num_knobs
        self.action_space = gym.spaces.Box(-1.0, 1.0, (d,), np.float32)
        self.observation_space = gym.spaces.Box(
            -SUMMARY_BOUND, SUMMARY_BOUND, (self.functional.obs_size,), np.float32
        )
        self.state: EnvState | None = None
        self._chain: jax.Array | None = None  # this env's key chain (see seed_chain)
        self._target_known = False

    # ---- accessors ----------------------------------------------------------------

    @property
    def spec(self):
        return self._spec

    @spec.setter
    def spec(self, value) -> None:
        # gym.make sets the spec after construction; a nondeterministic backend makes the
        # env nondeterministic whatever the registry says (Gymnasium's checker then skips
        # its determinism checks).
        if value is not None and self.nondeterministic and not value.nondeterministic:
            value = dataclasses.replace(value, nondeterministic=True)
        self._spec = value

    @property
    def capabilities(self) -> Capabilities:
        """What this env's backend offers (gradient, determinism, real time)."""
        return self.backend.capabilities

    @property
    def differentiable(self) -> bool:
        """Are exact reward gradients available (sim backend and the task reward)?"""
        return self.backend.capabilities.differentiable and self.reward_source.fused

    @property
    def nondeterministic(self) -> bool:
        return not self.backend.capabilities.deterministic

    @property
    def expose_grad(self) -> bool:
        return self.config.expose_grad

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
    def cpu_schedule(self) -> str:
        """The XLA:CPU schedule this env's jitted functions use (chosen per env)."""
        return self.backend.schedule

    @property
    def input_audio(self) -> np.ndarray | None:
        """The signal an effect processes: ``input=``, else the plant's default program
        (None for a synth)."""
        return self._core.input_audio

    # ---- gymnasium API --------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. ``seed`` restarts this env's key chain (see ``seed_chain``);
        without it the chain goes on, so successive episodes get fresh targets."""
        super().reset(seed=seed)
        if seed is not None or self._chain is None:
            self._chain = chain_from_int(int(self.np_random.integers(0, 2**31 - 1)))
        self._chain, key = _split(self._chain)
        start = self.backend.start_episode(self._core, key)
        self.state, self._target_known = start.state, start.target_known
        return start.obs, {"knobs": self._physical(start.knobs), **start.info}

    def step(self, action):
        state = self._require_state()
        action = self._checked_action(action)
        out = self.backend.evaluate(self._core, state, action, self.config.expose_grad, True)
        self.state = out.change.applied_to(state)
        return out.obs, out.reward, out.success, out.truncate, self._info(out)

    def reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """(reward, d reward / d action) of ``action`` from the current state, no step taken."""
        self._require_gradient()
        return self.twin_reward_and_grad(action)

    def twin_reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """The sim twin's (reward, d reward / d action) of ``action`` from the current state.

        On the sim backend this is :meth:`reward_and_grad`. On a device the twin (the JAX
        plant) is scored against the *recorded* target, so its gradient points the
        device's knobs towards the real target as far as the twin models the device.
        """
        state = self._require_state()
        return self.backend.twin_reward_and_grad(self._core, state, self._checked_action(action))

    def reward_of(self, action, with_grad: bool = False) -> tuple[float, dict[str, Any]]:
        """(reward, info) of ``action`` from the current state, without stepping.

        One plant query, as an optimizer's probe: ``info`` is what :meth:`step` would
        report (``reward_grad`` too when ``with_grad``); the state is kept. On a device the
        query is a take; ``with_grad`` needs :attr:`differentiable`.
        """
        state = self._require_state()
        if with_grad:
            self._require_gradient()
        out = self.backend.evaluate(
            self._core, state, self._checked_action(action), with_grad, False
        )
        return out.reward, self._info(out)

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

    def close(self) -> None:
        """Release the backend (a device: all notes off, ports closed) and the reward source."""
        self.backend.close()
        self.reward_source.close()
        super().close()

    # ---- helpers --------------------------------------------------------------------

    def current_audio(self) -> np.ndarray:
        """The sound of the current knobs, (n_samples,) float32 (a device: the last take)."""
        return self.backend.audio_of(self._core, self._require_state())

    def target_audio(self) -> np.ndarray:
        return np.asarray(self._require_state().target_audio)

    def _info(self, out: Outcome) -> dict[str, Any]:
        """The ``info`` of a step or query (``param_error`` only where the target is known)."""
        info: dict[str, Any] = {
            "distance": out.distance,
            "success": out.success,
            "knobs": self._physical(out.physical),
            "penalty": out.penalty,
        }
        if self._target_known:
            info["param_error"] = out.param_error
        if out.reward_grad is not None:
            info["reward_grad"] = out.reward_grad
            # A task whose distance stands in for another (the embedding proxy) says so.
            grad_source = getattr(self.functional.task, "grad_source", None)
            if grad_source is not None:
                info["grad_source"] = grad_source
        info.update(out.info)
        return info

    def _play(self, audio: np.ndarray) -> None:
        try:
            import sounddevice as sd

            sd.play(audio, self.plant.sample_rate, blocking=True)
        except Exception as err:  # no PortAudio, no device: rendering must not crash training
            warnings.warn(f"cannot play audio ({err}); use render_mode='rgb_array'", stacklevel=2)

    def _require_state(self) -> EnvState:
        if self.state is None:
            raise RuntimeError("call reset() before step(), reward_and_grad() or render()")
        return self.state

    def _require_gradient(self) -> None:
        if not self.differentiable:
            what = (
                f"the {self.backend.name} backend has no gradient"
                if not self.backend.capabilities.differentiable
                else f"the reward source {type(self.reward_source).__name__} has no gradient"
            )
            raise NotImplementedError(
                f"{what}; use twin_reward_and_grad(action) for the sim twin's, or a "
                "gradient-free estimate (SPSA) from step()"
            )

    def _checked_action(self, action) -> np.ndarray:
        return checked_action(action, self.action_space.shape, self.plant.knob_names)

    def _physical(self, knobs: list[float]) -> dict[str, float]:
        return dict(zip(self.plant.knob_names, knobs, strict=True))


@jax.jit
def _split(chain: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(the chain's next link, this episode's key)."""
    chain, key = jax.random.split(chain)
    return chain, key
