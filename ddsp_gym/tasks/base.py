"""The task interface: what to measure in a sound and how far it is from the target."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
from jax import Array

if TYPE_CHECKING:
    from ddsp_gym.plants.base import AbstractPlant


class RewardSettings(NamedTuple):
    """A task's numeric reward settings: defaults of the env's traced ``EnvParams``.

    They are numbers, not configuration: an env takes them as params, so a sweep or a
    curriculum changes them without recompiling (``envs/functional.py``).

    ``reward = -distance / distance_scale - penalties``; ``distance_scale`` is the
    mean distance of a uniformly random knob setting from a random target (measured
    by ``scripts/calibrate_rewards.py``), so a random policy scores near -1 on every env.

    Success is ``distance <= success_threshold`` (in the task's ``distance_unit``).
    Where a task's criterion is stated in knob space (``param_tolerance``, unit
    travel), it applies whenever the target's knobs are known, and the distance
    threshold is the fallback for targets loaded from audio files.

    Sensitivity penalty (``grad_penalty`` 0: off), charged on top of the distance:
    grad_penalty * log(1 + e^2), e = max(|d(distance / distance_scale) / d knobs|
    / grad_norm_limit - 1, 0): settings where the sound explodes under small knob
    moves cost reward (the reward's gradient then needs second derivatives).
    """

    distance_scale: float = 1.0
    success_threshold: float = 0.0
    param_tolerance: float | None = None
    grad_penalty: float = 0.0
    grad_norm_limit: float = 1.0


@dataclass(frozen=True)
class AbstractTask(abc.ABC):
    """A matching task: features of a sound, a distance to the target's, success.

    A task's fields are static configuration (what to measure and how); its numeric
    reward settings (scale, thresholds, penalties) are :class:`RewardSettings`, whose
    class-level ``settings`` are the defaults an env's ``task_config`` overrides.
    """

    settings: ClassVar[RewardSettings] = RewardSettings()
    distance_unit: str = ""
    # Goal tasks (maximise brightness, hold a resonance) ignore the target sound;
    # their hidden target knobs are one reference setting that meets the goal, so
    # param_error measures the distance to that reference, not an error.
    is_goal: ClassVar[bool] = False
    # True when scaling a sound leaves its distance from the target unchanged: then
    # `match` need not fit a recording's level (tests/test_analysis.py checks it).
    level_invariant: ClassVar[bool] = False

    def sample_target_knobs(
        self, key: Array, plant: AbstractPlant, render_key: Array, success_threshold: Array
    ) -> Array:
        """Hidden target knobs (d,) in unit space for a new episode; pure and jittable.

        Uniform over the knob box by default; tasks with a target distribution of
        their own (a table of vowels, a family of presets) override this.
        ``render_key`` is the episode's plant key (its noise) and ``success_threshold``
        the episode's, for goal tasks that listen to candidate settings until one
        meets the goal.
        """
        del render_key, success_threshold
        return jax.random.uniform(key, (plant.num_knobs,))

    @abc.abstractmethod
    def features(self, audio: Array, sample_rate: int) -> Any:
        """Task features of (n,) audio: any pytree of arrays."""

    @abc.abstractmethod
    def distance(self, features: Any, target_features: Any) -> Array:
        """Scalar distance >= 0 from the target's features, in ``distance_unit``."""
