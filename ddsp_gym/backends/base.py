"""The one interface every backend implements: unit knobs in, a take of sound out.

An env holds one backend (``DDSPEnv.backend``) and drives its episodes through it:
``start_episode`` prepares the target and the starting sound, ``evaluate`` plays an
action and scores it, ``audio_of`` is the sound of the current knobs. The defaults
here build them from :meth:`AbstractBackend.render` and the env's reward source, which
is all a device (a real synth over MIDI, a hosted plugin) offers; the sim backend
overrides them with one jitted call each (render, features, reward, gradient fused).
"""

from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_gym.envs import packing
from ddsp_gym.envs.compile import Compiled, PackedParams, StepChange, compiled, pack_params
from ddsp_gym.plants.base import AbstractPlant

if TYPE_CHECKING:
    from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv
    from ddsp_gym.rewards import RewardSource


@dataclass(frozen=True)
class Capabilities:
    """What a backend can offer an env and its agents."""

    differentiable: bool  # exact reward gradients through the render (the JAX plant)
    deterministic: bool  # the same knobs always give the same sound
    real_time: bool  # a take lasts the sound's own duration in wall time


class Take(Protocol):
    """One rendered or recorded sound."""

    audio: np.ndarray  # (n,) float32 at the plant's sample rate, on the plant's timeline
    knobs: np.ndarray  # (d,) unit knob positions actually played (a device quantizes)

    def info(self) -> dict[str, Any]:
        """What ``info[backend.name]`` reports of the take (empty: nothing)."""
        ...


@dataclass
class RenderedTake:
    """A take of the JAX plant: exact knobs, nothing to report."""

    audio: np.ndarray
    knobs: np.ndarray

    def info(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, eq=False)
class EnvCore:
    """What a backend needs of its env: the functional core, its params and reward source."""

    fenv: FunctionalDDSPEnv
    params: EnvParams
    reward: RewardSource

    @functools.cached_property
    def packed_params(self) -> PackedParams:
        """The params as the compiled functions take them."""
        return pack_params(self.params)

    @functools.cached_property
    def input_audio(self) -> np.ndarray | None:
        """The signal an effect processes (``input=`` or its default program; None: a synth)."""
        audio = self.fenv.plant.input_or_default(self.params.input_audio)
        return None if audio is None else np.asarray(audio, np.float32)


class Start(NamedTuple):
    """The first state of an episode and what ``reset`` returns of it."""

    state: EnvState
    obs: np.ndarray
    knobs: list[float]  # physical knob values in the plant's order
    target_known: bool
    info: dict[str, Any]  # backend-specific: {backend name: take info}


class Outcome(NamedTuple):
    """An action played from a state and scored (host values)."""

    change: StepChange | None  # what a step changes in the state (None: a query)
    obs: np.ndarray | None  # None for queries that do not observe
    reward: float
    distance: float
    success: bool
    param_error: float
    penalty: float
    physical: list[float]  # physical knob values in the plant's order
    reward_grad: np.ndarray | None
    info: dict[str, Any]  # backend- and source-specific entries
    truncate: bool = False  # the reward source asks to end the episode (Rating.truncate)


class AbstractBackend(abc.ABC):
    """Plays a plant's unit knobs and returns the sound (see the module docstring)."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # XLA:CPU schedule of the jitted scoring and twin functions (envs/compile.py).
    schedule: str = "concurrency"

    def __init__(self, plant: AbstractPlant) -> None:
        self.plant = plant
        self.last_take: Take | None = None
        self._core: EnvCore | None = None
        self._jit: Compiled | None = None

    def compiled(self, core: EnvCore) -> Compiled:
        """The jitted functions of ``core``'s functional env, looked up once per core."""
        if core is not self._core:
            self._core, self._jit = core, compiled(core.fenv, self.schedule)
        return self._jit

    @abc.abstractmethod
    def render(
        self,
        unit_knobs: np.ndarray,
        input_audio: np.ndarray | None = None,
        key: jax.Array | None = None,
    ) -> Take:
        """Play ``unit_knobs`` (d,) -> a :class:`Take` on the plant's timeline.

        ``input_audio``: an effect's dry signal; ``key``: the episode's noise key (the
        JAX plant's; a device has noise of its own).
        """

    def prepare(self) -> None:  # noqa: B027
        """Before each episode: reopen a device after a fault, resend its init patch."""

    def close(self) -> None:  # noqa: B027
        """Release the device (safe to call twice)."""

    # ---- episodes, from render() and the reward source ---------------------------------

    def start_episode(self, core: EnvCore, key: jax.Array) -> Start:
        """Play the target (hidden knobs, or the given sound) and the starting knobs."""
        self.prepare()
        fenv, params = core.fenv, core.params
        target_knobs, knobs, render_key = fenv.episode_knobs(key, params)
        if params.target_audio is None:
            target = self.render(np.asarray(target_knobs), core.input_audio, render_key)
            target_audio, target_knobs, known = target.audio, target.knobs, True
        else:
            target_audio, known = np.asarray(fenv.given_target(key, params)), False
        take = self.render(np.asarray(knobs), core.input_audio, render_key)
        self.last_take = take
        state, obs = _start(
            fenv, take.knobs, target_knobs, known, target_audio, render_key, take.audio
        )
        core.reward.begin_episode(np.asarray(target_audio), known)
        physical = _physical(fenv, jnp.asarray(take.knobs))
        return Start(state, np.asarray(obs), physical, known, self._take_info(take))

    def evaluate(
        self, core: EnvCore, state: EnvState, action: np.ndarray, with_grad: bool, step: bool
    ) -> Outcome:
        """Play ``action`` from ``state`` and score it; ``step``: the env steps to it
        (else a query). A device has no gradient: ``with_grad`` is refused by the env."""
        del with_grad
        fenv, params = core.fenv, core.params
        knobs = fenv.knobs_after(state.knobs, jnp.clip(jnp.asarray(action), -1.0, 1.0), params)
        take = self.render(np.asarray(knobs), core.input_audio, state.render_key)
        if step:  # a query leaves the current sound as it was
            self.last_take = take
        scored = core.reward.score(fenv, params, state, take.knobs, take.audio)
        info = self._take_info(take)
        if scored.extra:
            info["reward_source"] = dict(scored.extra)
        played = jnp.asarray(take.knobs)
        return Outcome(
            change=StepChange(played, state.step_count + 1) if step else None,
            obs=scored.obs,
            reward=scored.reward,
            distance=scored.distance,
            success=scored.success,
            param_error=scored.param_error,
            penalty=scored.penalty,
            physical=_physical(fenv, played),
            reward_grad=None,
            info=info,
            truncate=scored.truncate,
        )

    def twin_reward_and_grad(
        self, core: EnvCore, state: EnvState, action: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """The JAX plant's (reward, d reward / d action) of ``action`` from ``state``.

        On a device the twin is scored against the recorded target: its gradient points
        the device's knobs towards the real target as far as the twin models the device.
        """
        jit = self.compiled(core)
        row = np.asarray(jit.reward_and_grad(state, action, core.packed_params))
        cols = jit.reward_grad_cols
        return float(packing.column(row, cols, "reward")), packing.column(row, cols, "reward_grad")

    def audio_of(self, core: EnvCore, state: EnvState) -> np.ndarray:
        """The sound of the current knobs: the last take."""
        if self.last_take is None:
            raise RuntimeError("call reset() first")
        return np.asarray(self.last_take.audio)

    def _take_info(self, take: Take) -> dict[str, Any]:
        report = take.info()
        return {self.name: report} if report else {}


@functools.partial(jax.jit, static_argnums=0)
def _start(fenv, knobs, target_knobs, target_known, target_audio, render_key, audio):
    """The episode's first state and observation, from the target's and the start's takes."""
    state = fenv.start(knobs, target_knobs, target_known, target_audio, render_key)
    return state, fenv.observe(knobs, audio, state.target_summary)


def _physical(fenv: FunctionalDDSPEnv, knobs: jax.Array) -> list[float]:
    return np.asarray(_knob_values(fenv, knobs)).tolist()


@functools.partial(jax.jit, static_argnums=0)
def _knob_values(fenv, knobs):
    return packing.knob_vector(fenv.plant.controls(knobs), fenv.plant.knob_names)
