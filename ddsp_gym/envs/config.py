"""One env's configuration: the keyword arguments ``gym.make`` takes for every ddsp_gym id."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.audio_io import fit_length, load_audio
from ddsp_gym.envs.functional import EnvParams, FunctionalDDSPEnv, make_params
from ddsp_gym.plants import make_plant
from ddsp_gym.rewards import RewardSource, RewardSpec, TaskReward, make_reward_source
from ddsp_gym.tasks import make_task_with_settings

AudioSource = str | Path | np.ndarray | Mapping[str, Any] | None


@dataclass(frozen=True, eq=False)
class EnvConfig:
    """Everything one env is made of. ``gym.make(id, **kwargs)`` builds one from the
    registry's kwargs (``envs_registry.yaml``) updated by the caller's.

    Args:
        plant, task: registry names (``ddsp_gym/plants``, ``ddsp_gym/tasks``).
        plant_config, task_config: their configuration; ``task_config`` may also set the
            task's reward settings (``distance_scale``, ``param_tolerance``,
            ``grad_penalty``, ``grad_norm_limit``: :class:`ddsp_gym.tasks.RewardSettings`).
        control: "absolute" (the action sets the knobs: u = (a + 1) / 2), "delta"
            (it nudges them: u <- clip(u + max_delta * a, 0, 1)) or "log_delta" (it
            nudges them by moves from about min_delta to max_delta on a log scale:
            :func:`ddsp_gym.envs.functional.log_delta_move`).
        max_delta: largest knob move per step with "delta"/"log_delta", unit travel in (0, 1].
        min_delta: scale of the finest moves with "log_delta" (> 0; below max_delta, or
            the moves are about linear in the action).
        observation: "summaries" (knobs, the sound's summary features, the target's),
            "difference" (knobs, sound's minus target's summary, the target's) or
            "log_difference" (that difference on a signed log scale).
        reward_shape: "linear" (-distance / distance_scale) or "log"
            (-log1p(distance / success_threshold)).
        slew_penalty: weight of the knob-slew penalty sum((u_t - u_{t-1})^2).
        success_bonus: added to the reward of a successful step.
        success_threshold: success when the distance is at most this (task units);
            None: the registry's.
        random_start: start episodes at random knobs (else all at mid travel).
        target: a fixed target sound (WAV path or 1-D array) instead of hidden knobs.
        input: an effect's dry signal (WAV path or array) instead of its default program.
        expose_grad: add ``info["reward_grad"]`` (d reward / d action) to every step;
            needs a differentiable backend (sim) and the task reward.
        backend: "sim" (the JAX plant), "hardware" (a real synth or effect over MIDI and
            audio) or "plugin" (a hosted VST rendered offline).
        hardware, plugin: that backend's options (``ddsp_gym/backends/README.md``),
            merged over the registry's ``hardware_defaults`` / ``plugin_defaults``.
        reward: where the reward comes from (:mod:`ddsp_gym.rewards`): a
            :class:`~ddsp_gym.rewards.RewardSource`, a source's name or ``{"source": name,
            **options}`` (:func:`~ddsp_gym.rewards.make_reward_source`); None: the task's
            distance to the target.
        render_mode: "rgb_array" (spectrograms) or "human" (plays the sound).
    """

    plant: str
    task: str
    plant_config: Mapping[str, Any] = field(default_factory=dict)
    task_config: Mapping[str, Any] = field(default_factory=dict)
    control: str = "absolute"
    max_delta: float = 0.1
    min_delta: float = 0.001
    observation: str = "summaries"
    reward_shape: str = "linear"
    slew_penalty: float = 0.0
    success_bonus: float = 0.0
    success_threshold: float | None = None
    random_start: bool = True
    target: AudioSource = None
    input: AudioSource = None
    expose_grad: bool = False
    backend: str = "sim"
    hardware: Mapping[str, Any] = field(default_factory=dict)
    plugin: Mapping[str, Any] = field(default_factory=dict)
    reward: RewardSpec = None
    render_mode: str | None = None

    def __post_init__(self) -> None:
        # control, observation and the deltas are checked where they are used
        # (FunctionalDDSPEnv, make_params).
        # A named source is built here, once per env (sources keep state: a stream, votes).
        object.__setattr__(self, "reward", make_reward_source(self.reward))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvConfig:
        """The config of ``gym.make``'s keyword arguments; unknown names are a TypeError."""
        hardware = {**(kwargs.pop("hardware_defaults", None) or {})}
        hardware.update(kwargs.pop("hardware", None) or {})
        plugin = {**(kwargs.pop("plugin_defaults", None) or {})}
        plugin.update(kwargs.pop("plugin", None) or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(
                f"unknown keyword argument(s) {unknown}; a ddsp_gym env takes "
                f"{sorted(known)} (see ddsp_gym.envs.config.EnvConfig)"
            )
        return cls(hardware=hardware, plugin=plugin, **kwargs)

    @property
    def reward_source(self) -> RewardSource:
        return TaskReward() if self.reward is None else self.reward


def build_functional(config: EnvConfig) -> tuple[FunctionalDDSPEnv, EnvParams]:
    """The functional env and its params of ``config`` (shared by every wrapper)."""
    task_config = dict(config.task_config)
    if config.success_threshold is not None:
        task_config["success_threshold"] = float(config.success_threshold)
    task, settings = make_task_with_settings(config.task, **task_config)
    plant = make_plant(config.plant, **dict(config.plant_config))
    n, sr = plant.n_samples, plant.sample_rate
    params = make_params(
        settings,
        max_delta=config.max_delta,
        min_delta=config.min_delta,
        slew_penalty=config.slew_penalty,
        success_bonus=config.success_bonus,
        target_audio=_as_audio(config.target, sr, n, "target"),
        input_audio=_as_audio(config.input, sr, n, "input"),
    )
    fenv = FunctionalDDSPEnv(
        plant=plant,
        task=task,
        control=config.control,
        observation=config.observation,
        reward_shape=config.reward_shape,
        random_start=config.random_start,
        sensitivity_penalty=settings.grad_penalty > 0.0,
        defaults=params,
    )
    return fenv, params


def _as_audio(source: AudioSource, sample_rate: int, n: int, what: str) -> np.ndarray | None:
    """(n,) audio of a WAV path or array; for a target also a (k, n) bank (each episode
    draws a row), from a 2-D array or ``{"spoken": [words], "voice": ...}`` (espeak-ng)."""
    if source is None:
        return None
    if isinstance(source, str | Path):
        return load_audio(source, sample_rate, n)
    if isinstance(source, Mapping):
        if what != "target" or set(source) - {"spoken", "voice"} or "spoken" not in source:
            raise ValueError(
                f"{what} as a mapping must be {{'spoken': [words], 'voice': name}} (targets only)"
            )
        from ddsp_gym.embedding.spoken import spoken_bank

        words = source["spoken"]
        words = words if isinstance(words, str) else list(words)
        return spoken_bank(words, sample_rate, n, source.get("voice", "en-us"))
    audio = np.asarray(source, np.float32)
    bank = what == "target" and audio.ndim == 2 and audio.shape[0] > 0
    if not (audio.ndim == 1 or bank) or audio.size == 0 or not np.all(np.isfinite(audio)):
        kinds = "a 1-D array (or a 2-D bank of rows)" if what == "target" else "a 1-D array"
        raise ValueError(f"{what} must be {kinds} of finite samples, non-empty")
    if bank:
        return np.stack([fit_length(row, n) for row in audio])
    return fit_length(audio, n)
