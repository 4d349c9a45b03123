"""A streaming env's configuration: the keyword arguments ``gym.make`` takes for the
streaming ids, and the functional env and params they build."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.audio_io import load_audio
from ddsp_gym.streaming.functional import StreamingEnv, StreamParams, make_stream_params

AudioSource = str | Path | np.ndarray | None


def _registries() -> tuple[dict[str, type], dict[str, type]]:
    # Imported here: the plant and task modules import this package's base modules.
    from ddsp_gym.streaming import STREAM_PLANTS, STREAM_TASKS

    return STREAM_PLANTS, STREAM_TASKS


@dataclass(frozen=True, eq=False)
class StreamConfig:
    """Everything a streaming env is made of (``envs_registry.yaml`` kwargs, overridable).

    Not :class:`ddsp_gym.envs.config.EnvConfig`: its target, success, observation-shape
    and backend fields mean nothing for a stream, and a stream's reward weights mean
    nothing there. The names it shares (plant, task, plant_config, task_config, control,
    max_delta, slew_penalty, random_start, input, expose_grad) mean the same.

    Args:
        plant, task: names in :data:`ddsp_gym.streaming.STREAM_PLANTS` / ``STREAM_TASKS``.
        plant_config: the plant's static config (sample_rate, block_size).
        task_config: the task's static config (archive size, bands, tempo range...).
        control: "delta" or "absolute" (:class:`~ddsp_gym.streaming.functional.StreamingEnv`).
        history: summaries of the last H blocks in the observation.
        random_start: start at random knobs (else mid travel).
        input: a recorded performance (WAV path or 1-D array, looped) for an effect;
            None: the task generates one per episode.
        expose_grad: add ``info["reward_grad"]`` (d reward / d action of the block).
        params: any :class:`~ddsp_gym.streaming.functional.StreamParams` number by name
            (``novelty_weight``, ``slew_penalty``, ``latency_s``...), given as plain
            keyword arguments to ``gym.make``.
        render_mode: None only (live playback is the live mode's job: docs/streaming.md).
    """

    plant: str
    task: str
    plant_config: Mapping[str, Any] = field(default_factory=dict)
    task_config: Mapping[str, Any] = field(default_factory=dict)
    control: str = "delta"
    history: int = 2
    random_start: bool = True
    input: AudioSource = None
    expose_grad: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    render_mode: str | None = None

    def __post_init__(self) -> None:
        if self.render_mode is not None:
            raise ValueError(
                f"render_mode must be None for a streaming env, got {self.render_mode!r}"
            )
        plants, tasks = _registries()
        if self.plant not in plants:
            raise ValueError(f"unknown streaming plant {self.plant!r}; one of {sorted(plants)}")
        if self.task not in tasks:
            raise ValueError(f"unknown streaming task {self.task!r}; one of {sorted(tasks)}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> StreamConfig:
        """Split ``gym.make``'s keyword arguments into fields and params; unknown names
        are a TypeError naming both lists."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"params"}
        param_names = set(StreamParams._fields) - {"input_audio", "max_steps_in_episode"}
        unknown = sorted(set(kwargs) - fields - param_names)
        if unknown:
            raise TypeError(
                f"unknown keyword argument(s) {unknown}; a streaming env takes {sorted(fields)} "
                f"and the params {sorted(param_names)}"
            )
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in param_names}
        return cls(params=params, **kwargs)


def build_streaming(config: StreamConfig) -> tuple[StreamingEnv, StreamParams]:
    """The functional streaming env and its params of ``config``."""
    plants, tasks = _registries()
    plant = plants[config.plant](**dict(config.plant_config))
    task = tasks[config.task](**dict(config.task_config))
    if config.input is not None and not plant.needs_input:
        raise ValueError(f"plant {config.plant!r} is an instrument: it takes no input")
    params = make_stream_params(
        **dict(config.params), input_audio=_input_audio(config.input, plant.sample_rate)
    )
    fenv = StreamingEnv(
        plant=plant,
        task=task,
        control=config.control,
        history=config.history,
        random_start=config.random_start,
    )
    return fenv, params


def _input_audio(source: AudioSource, sample_rate: int) -> np.ndarray | None:
    if source is None:
        return None
    if isinstance(source, str | Path):
        audio = load_audio(source, sample_rate)
    else:
        audio = np.asarray(source, np.float32)
    if audio.ndim != 1 or audio.size == 0 or not np.all(np.isfinite(audio)):
        raise ValueError("input must be a non-empty 1-D array of finite samples")
    return audio
