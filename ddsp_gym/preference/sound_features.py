"""Where a patch lies in *sound*: a small generic descriptor of each candidate's render.

A listener judges sounds, not knob positions, and the way sound changes with a knob is
far from uniform (a cutoff knob moves the sound much more in one part of its travel
than in another; two knobs can trade off). A preference model whose kernel measures
distance between *sounds* can therefore share what one vote teaches across patches
that sound alike, however far apart their knobs are.

:class:`SoundFeatures` renders unit knob vectors on a sim plant (JAX, jitted, vmapped in
batches) and describes each render by two generic things a listener hears:

* the log-mel spectrogram (32 mel bands, 512-point frames, in tens of dB, floored 60 dB
  below the loudest patch of a fixed probe set), pooled to 8 time segments: the
  spectral envelope and how it moves;
* the spectral-centroid trajectory in octaves, pooled the same way: the brightness
  sweep, weighted by the frame's loudness so silent frames do not count.

The vector is scaled so that the median distance between two random patches is 1, so
the model's length scales mean the same on every plant. Features are cached by exact
knob positions (a search asks about the same heard patches again and again).

These are deliberately *not* the simulated rater's task distance
(:mod:`ddsp_gym.preference.rater`: a target-energy-weighted centroid gap plus MR-STFT
spectral convergence and log-magnitude L1 at four FFT sizes), only features of the same
kind; docs/preference.md says what that means for the benchmark.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

N_MELS, N_FFT, N_SEGMENTS = 32, 512, 8
FLOOR_DB = 60.0  # below the loudest probe: quieter detail is not what a listener compares
_PROBES = 256  # random patches that set the scale (fixed seed: the same on every call)


class SoundFeatures:
    """Unit knobs (m, d) -> sound descriptors (m, k), float64; median random distance 1.

    Args:
        plant: a plant name of :func:`ddsp_gym.plants.make_plant`.
        plant_config: its options (the benchmark's synth: ``{"oscillator_knobs": False}``).
        batch: patches rendered per compiled call (shorter calls are padded).
        cache_size: descriptors kept by exact knob positions.
    """

    def __init__(
        self,
        plant: str = "subtractive",
        plant_config: Mapping[str, Any] | None = None,
        *,
        batch: int = 64,
        cache_size: int = 50_000,
        _describe: _Describer | None = None,
    ) -> None:
        config = dict(plant_config if plant_config is not None else {"oscillator_knobs": False})
        self.plant, self.plant_config = plant, config
        self._raw = _describe or _describer(plant, tuple(sorted(config.items())))
        self.n_knobs = self._raw.n_knobs
        self.batch = int(batch)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        probes = np.random.default_rng(12345).uniform(size=(_PROBES, self.n_knobs))
        raw = self._describe(probes)
        self._floor = float(np.max(raw[:, :-N_SEGMENTS])) - FLOOR_DB / 10.0
        described = self._finish(raw)
        gaps = np.linalg.norm(described[:, None] - described[None], axis=-1)
        self._scale = float(np.median(gaps[np.triu_indices(_PROBES, 1)]))

    @classmethod
    def of_plant(cls, plant: Any, **options: Any) -> SoundFeatures:
        """Describe the renders of a plant object (e.g. an env's ``plant``)."""
        return cls(type(plant).__name__, {}, _describe=_Describer(plant), **options)

    def _describe(self, knobs: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(knobs), self.batch):
            chunk = knobs[start : start + self.batch]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
            out.append(np.asarray(self._raw(padded.astype(np.float32)), np.float64)[: len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, N_MELS * N_SEGMENTS + N_SEGMENTS))

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        mel = np.maximum(raw[:, :-N_SEGMENTS], self._floor)
        # Per-element weights so the two parts count alike: the mel part has 32x the
        # elements, the centroid (octaves) about 3x the spread per element.
        return np.concatenate([mel / np.sqrt(N_MELS), raw[:, -N_SEGMENTS:]], axis=1)

    def __call__(self, knobs: np.ndarray) -> np.ndarray:
        knobs = np.atleast_2d(np.asarray(knobs, np.float64))
        if knobs.shape[1] != self.n_knobs:
            raise ValueError(f"knobs must be (m, {self.n_knobs}), got {knobs.shape}")
        if not np.all(np.isfinite(knobs)):
            raise ValueError("knob positions must be finite")
        knobs = np.clip(knobs, 0.0, 1.0)
        keys = [row.tobytes() for row in knobs]
        todo = list(dict.fromkeys(key for key in keys if key not in self._cache))
        found = {key: self._cache[key] for key in keys if key in self._cache}
        if todo:
            rows = np.array([np.frombuffer(key, np.float64) for key in todo])
            found.update(zip(todo, self._finish(self._describe(rows)) / self._scale, strict=True))
            self._cache.update((key, found[key]) for key in todo)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.array([found[key] for key in keys])


class _Describer:
    """Jitted render + raw descriptor of one plant (mel in tens of dB, then centroid)."""

    def __init__(self, plant_obj: Any) -> None:
        import jax
        import jax.numpy as jnp

        from ddsp_gym import features as F

        self.n_knobs = plant_obj.num_knobs
        sr = plant_obj.sample_rate
        key = jax.random.PRNGKey(0)  # noise sources: the same noise every time
        freqs = jnp.asarray(F.fft_frequencies(sr, N_FFT))

        def pool(frames):  # (t, ...) -> (N_SEGMENTS, ...) means over equal time segments
            edges = np.linspace(0, frames.shape[0], N_SEGMENTS + 1).round().astype(int)
            edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
            return jnp.stack(
                [frames[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:], strict=True)]
            )

        def describe(knobs):
            audio = plant_obj.render(knobs, key)
            mel_db = F.log_mel_spectrogram(audio, sr, N_FFT, N_FFT // 4, N_MELS) / 10.0
            mag = F.magnitude_spectrogram(audio, N_FFT, N_FFT // 4)
            energy = jnp.sum(mag * mag, axis=-1)
            centroid = jnp.log2((F.spectral_centroid(mag, freqs) + 20.0) / 1000.0)
            weight = pool(energy[:, None])[:, 0] + 1e-12
            return jnp.concatenate(
                [pool(mel_db).reshape(-1), pool((energy * centroid)[:, None])[:, 0] / weight]
            )

        self._describe = jax.jit(jax.vmap(describe))

    def __call__(self, knobs: np.ndarray) -> Any:
        return self._describe(knobs)


@functools.lru_cache(maxsize=4)
def _describer(plant: str, plant_config: tuple) -> _Describer:
    from ddsp_gym.plants import make_plant

    return _Describer(make_plant(plant, **dict(plant_config)))
