"""Evaluators: play a batch of unit knob settings and describe each sound.

An evaluator turns knob settings (n, d) in [0, 1] into rows (n, k + 1): the
:data:`~ddsp_gym.explore.descriptors.DESCRIPTOR_NAMES` descriptors and the objective.
Every setting it plays counts as one sound heard, the budget the explorer and the
random baseline share.

* :class:`SimEvaluator`: the plant's JAX render and :func:`describe`, vmapped over the
  batch in one jitted call (fixed-size chunks, so one compilation serves every batch).
* :class:`EnvEvaluator`: any backend through the env API (``gym.make(id,
  backend="hardware" | "plugin", control="absolute")``): each setting is one step, whose
  action is ``2 u - 1``, so each is one take on a device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_gym.batching import chunked_vmap
from ddsp_gym.explore.descriptors import OBJECTIVE_INDEX, describe
from ddsp_gym.plants.base import AbstractPlant

# Settings per jitted sim call: one compilation serves every batch (shorter ones padded).
SIM_CHUNK = 64


class EvaluationStopped(Exception):
    """A device failed mid-batch (after its own retries): ``rows`` holds the settings
    of the batch played before it (n, k + 1), ``cause`` the device's error. The search
    keeps everything heard so far and stops."""

    def __init__(self, rows: np.ndarray, cause: Exception):
        super().__init__(str(cause))
        self.rows = rows
        self.cause = cause


class Evaluator(Protocol):
    """Plays unit knob settings and describes the sounds (see the module docstring)."""

    plant: AbstractPlant  # the knobs' names and laws (a device's twin on hardware)
    backend: str
    takes: int  # sounds actually played, overheads included (a device's reset takes)

    def evaluate(self, unit: np.ndarray, first_index: int) -> np.ndarray:
        """Settings (n, d) in [0, 1] -> rows (n, len(DESCRIPTOR_NAMES) + 1).

        ``first_index`` numbers the settings (0, 1, ... over a run): a sim seeds each
        render's noise with its number, so :meth:`audio` plays it again identically.
        """

    def audio(self, unit: np.ndarray, index: int) -> np.ndarray:
        """The sound of setting number ``index`` (the one played, or the same render)."""

    def close(self) -> None:
        """Release a device (safe to call twice)."""


@functools.lru_cache(maxsize=16)
def _sim_describer(plant: AbstractPlant) -> Callable:
    """The jitted (knobs (n, d), keys (n, 2), audio_in) -> rows (n, k + 1) of ``plant``."""

    def one(knobs: jax.Array, key: jax.Array, audio_in: Any) -> jax.Array:
        return describe(plant.render(knobs, key, audio_in), plant.sample_rate)

    return jax.jit(chunked_vmap(one, (0, 0, None)))


@functools.lru_cache(maxsize=16)
def _sim_render(plant: AbstractPlant) -> Callable:
    """The jitted one-voice render of ``plant`` (replaying elites one by one)."""
    return jax.jit(plant.render)


class SimEvaluator:
    """The plant's batched JAX render (see the module docstring). Deterministic per seed."""

    backend = "sim"

    def __init__(self, plant: AbstractPlant, seed: int, audio_in: np.ndarray | None = None):
        self.plant = plant
        self.audio_in = plant.input_or_default(audio_in)
        self.key = jax.random.PRNGKey(seed)
        self.takes = 0

    def keys(self, indices: np.ndarray) -> jax.Array:
        """Setting number -> its render key (the run's key folded with the number)."""
        return jax.vmap(lambda i: jax.random.fold_in(self.key, i))(jnp.asarray(indices))

    def evaluate(self, unit: np.ndarray, first_index: int) -> np.ndarray:
        unit = np.asarray(unit, np.float32)
        n = len(unit)
        describer = _sim_describer(self.plant)
        rows = []
        for start in range(0, n, SIM_CHUNK):
            chunk = unit[start : start + SIM_CHUNK]
            pad = SIM_CHUNK - len(chunk)
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            indices = first_index + start + np.arange(SIM_CHUNK)
            out = describer(jnp.asarray(padded), self.keys(indices), self.audio_in)
            rows.append(np.asarray(out)[: len(chunk)])
        self.takes += n
        return np.concatenate(rows) if rows else np.zeros((0, OBJECTIVE_INDEX + 1), np.float32)

    def audio(self, unit: np.ndarray, index: int) -> np.ndarray:
        key = self.keys(np.array([index]))[0]
        render = _sim_render(self.plant)
        return np.asarray(render(jnp.asarray(unit, jnp.float32), key, self.audio_in))

    def close(self) -> None:
        pass


class EnvEvaluator:
    """A registered env's backend through the env API: one step (one take) per setting.

    ``gym.make(env_id, backend=backend, control="absolute", **make_kwargs)``; reset once
    (a device plays the task's target and the start: two takes of overhead, counted in
    :attr:`takes`), then every setting is one step of the action ``2 u - 1``, so a run
    of n settings plays exactly n + 2 takes (times ``takes_per_query``). A take the backend calls
    silent (``SilentTakeError``) is a sound like any other: it scores 0 and is not mapped.
    """

    def __init__(self, env_id: str, backend: str, seed: int, **make_kwargs: Any):
        import gymnasium as gym

        import ddsp_gym  # noqa: F401  (registers the envs)

        self.backend = backend
        self.env = gym.make(
            env_id,
            backend=backend,
            control="absolute",
            disable_env_checker=True,
            **make_kwargs,
        )
        self.core = self.env.unwrapped
        self.plant = self.core.plant
        self.sample_rate = self.plant.sample_rate
        self.seed = seed
        self.takes = 0
        self.silent = 0
        self._audio: dict[int, np.ndarray] = {}
        self._reset()
        self._describe = jax.jit(functools.partial(describe, sample_rate=self.sample_rate))

    def _reset(self, attempts: int = 3) -> None:
        """Reset the env: the target and the start, two takes (counted as two per
        attempt). A silent take there (a device's first note after starting up can be
        one) is retried; the third raises."""
        from ddsp_gym.backends.errors import SilentTakeError

        for attempt in range(attempts):
            self.takes += self._takes_per_play() * 2
            try:
                self.env.reset(seed=self.seed)
                return
            except SilentTakeError:
                if attempt == attempts - 1:
                    raise

    def _takes_per_play(self) -> int:
        # A hardware backend may play each query N times and average (takes_per_query).
        config = getattr(self.core.backend, "config", None)
        return int(getattr(config, "takes_per_query", 1) or 1)

    def evaluate(self, unit: np.ndarray, first_index: int) -> np.ndarray:
        from ddsp_gym.backends.errors import (
            HardwareError,
            PluginError,
            SilentRenderError,
            SilentTakeError,
        )

        rows = []
        for offset, u in enumerate(np.asarray(unit, np.float32)):
            index = first_index + offset
            action = 2.0 * np.clip(u, 0.0, 1.0) - 1.0
            self.takes += self._takes_per_play()
            try:
                # The bare env, past the wrappers: the explorer has no episodes, so a step
                # that happens to match the task's target (terminated) plays on instead of
                # spending two takes on a reset, and no time limit applies.
                self.core.step(action)
                audio = np.asarray(self.core.current_audio(), np.float32)
            except (SilentTakeError, SilentRenderError):
                self.silent += 1
                audio = np.zeros(self.plant.n_samples, np.float32)
            except (HardwareError, PluginError) as err:  # retried by the backend already
                return_rows = np.stack(rows) if rows else np.zeros((0, OBJECTIVE_INDEX + 1))
                raise EvaluationStopped(return_rows, err) from err
            self._audio[index] = audio
            rows.append(np.asarray(self._describe(audio)))
        return np.stack(rows) if rows else np.zeros((0, OBJECTIVE_INDEX + 1), np.float32)

    def audio(self, unit: np.ndarray, index: int) -> np.ndarray:
        return self._audio[index]

    def close(self) -> None:
        self.env.close()
