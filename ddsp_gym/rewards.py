"""Reward sources: where an env's reward comes from.

An env renders a sound on its backend and hands it to its reward source. The default,
:class:`TaskReward`, is the task's distance to the target (``ddsp_gym/tasks/``): pure
JAX, computed inside the sim backend's jitted step, so it has gradients. A reward that
comes from outside the sound (a person's vote, a physiological stream, a live score)
is an :class:`ExternalReward`: it rates each sound on the host, on any backend, through
the same env API (``gym.make(id, reward=MyReward())``); such an env has no gradient.
"""

from __future__ import annotations

import abc
import functools
import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv


class Scored(NamedTuple):
    """A sound's reward and what the env reports of it (host values)."""

    reward: float
    obs: np.ndarray  # the env's observation of the sound
    distance: float  # in the source's unit (nan where it has none)
    success: bool
    param_error: float  # max unit-space knob error from the target's (nan if unknown)
    penalty: float
    extra: Mapping[str, Any] = {}  # the source's own report: info["reward_source"]
    truncate: bool = False  # the source cannot go on (a lost stream): end the episode


class RewardSource(abc.ABC):
    """Scores the sounds of an env's episodes."""

    # True only for the task's own distance, which the sim backend computes inside its
    # jitted step (and differentiates); every other source scores on the host.
    fused: ClassVar[bool] = False

    def begin_episode(self, target_audio: np.ndarray, target_known: bool) -> None:  # noqa: B027
        """A new episode starts with this target sound (recorded, rendered or given)."""

    @abc.abstractmethod
    def score(
        self,
        fenv: FunctionalDDSPEnv,
        params: EnvParams,
        state: EnvState,
        knobs: np.ndarray,
        audio: np.ndarray,
    ) -> Scored:
        """Score ``audio``, played at unit ``knobs`` (d,) in ``state``."""

    def close(self) -> None:  # noqa: B027
        """Release what the source holds (a stream, a server); called by ``env.close()``."""


@dataclass
class TaskReward(RewardSource):
    """The task's distance to the target (the env's default reward source)."""

    fused: ClassVar[bool] = True

    def score(self, fenv, params, state, knobs, audio) -> Scored:
        reward, obs, info = _task_score(fenv, state, jnp.asarray(knobs), jnp.asarray(audio), params)
        return Scored(
            reward=float(reward),
            obs=np.asarray(obs),
            distance=float(info.distance),
            success=bool(info.success),
            param_error=float(info.param_error),
            penalty=float(info.penalty),
        )


class Rating(NamedTuple):
    """What an :class:`ExternalReward` says of one sound."""

    reward: float
    success: bool = False
    distance: float = math.nan  # in the source's own unit, where it has one
    info: Mapping[str, Any] = {}
    # The source cannot rate further sounds (a lost stream, a listener gone): the env
    # reports the step as truncated, so the episode ends without an error.
    truncate: bool = False


@dataclass
class ExternalReward(RewardSource):
    """A reward from outside the sound's features: implement :meth:`rate`.

    The env's observation, knob reporting and ``param_error`` stay as for the task
    reward; ``reward``, ``success`` and ``distance`` are the rating's, and
    ``info["reward_source"]`` carries the rating's ``info``; a rating with ``truncate``
    set makes the step's ``truncated`` True (the episode ends; the env does not raise).
    """

    @abc.abstractmethod
    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        """Rate ``audio`` (n,), played at physical ``knobs`` {name: value}."""

    def score(self, fenv, params, state, knobs, audio) -> Scored:
        obs, physical, param_error = _observe(fenv, state, jnp.asarray(knobs), jnp.asarray(audio))
        values = np.asarray(physical).tolist()
        rating = self.rate(np.asarray(audio), dict(zip(fenv.plant.knob_names, values, strict=True)))
        return Scored(
            reward=float(rating.reward),
            obs=np.asarray(obs),
            distance=float(rating.distance),
            success=bool(rating.success),
            param_error=float(param_error),
            penalty=0.0,
            extra=dict(rating.info),
            truncate=bool(rating.truncate),
        )


# Reward sources a registry entry (or gym.make) may name instead of passing an object:
# ``reward: {source: NAME, ...options}``. Imported on first use, so an optional extra's
# packages are needed only by the envs that ask for its source.
REWARD_SOURCES: dict[str, str] = {
    "task": "ddsp_gym.rewards:TaskReward",
    "preference": "ddsp_gym.preference.reward:PreferenceReward",
    "physiology": "ddsp_gym.physiology.reward:PhysiologyReward",
    "embedding": "ddsp_gym.embedding.reward:EmbeddingReward",
}

RewardSpec = RewardSource | str | Mapping[str, Any] | None


def make_reward_source(spec: RewardSpec) -> RewardSource | None:
    """The reward source ``spec`` names: an instance (returned as is), None (the task's
    distance), a name of :data:`REWARD_SOURCES`, or ``{"source": name, **options}``
    (the options go to the source's constructor)."""
    if spec is None or isinstance(spec, RewardSource):
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("source"), str):
        options = {k: v for k, v in spec.items() if k != "source"}
        name = spec["source"]
    else:
        raise TypeError(
            f"reward must be a ddsp_gym.rewards.RewardSource, a source name "
            f"{sorted(REWARD_SOURCES)} or {{'source': name, ...options}}, not {spec!r}"
        )
    if name not in REWARD_SOURCES:
        raise ValueError(f"unknown reward source {name!r}; known: {sorted(REWARD_SOURCES)}")
    module, _, attr = REWARD_SOURCES[name].partition(":")
    return getattr(importlib.import_module(module), attr)(**options)


@functools.partial(jax.jit, static_argnums=0)
def _task_score(fenv, state, knobs, audio, params):
    reward, (obs, info) = fenv.score(state, knobs, audio, params)
    return reward, obs, info


@functools.partial(jax.jit, static_argnums=0)
def _observe(fenv, state, knobs, audio):
    obs = fenv.observe(knobs, audio, state.target_summary)
    controls = fenv.plant.controls(knobs)
    physical = jnp.stack([controls[name] for name in fenv.plant.knob_names])
    error = jnp.where(state.target_known, jnp.max(jnp.abs(knobs - state.target_knobs)), jnp.nan)
    return obs, physical, error
