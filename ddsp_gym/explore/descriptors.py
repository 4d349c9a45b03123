"""Timbre descriptors and the "clean and audible" quality of a rendered sound (pure JAX).

:func:`describe` maps one mono sound to a vector: the descriptors of :data:`DESCRIPTORS`
in their order, then the sound's objective (:func:`objective`). It is unbatched and
jit-able; ``jax.vmap`` (or :func:`ddsp_gym.batching.chunked_vmap`) batches it together with
a plant's ``render``, so a batch of knob settings is rendered and described in one call.

The spectral descriptors read the Welch spectrum (the mean of short-frame power spectra)
rather than one long periodogram: a periodogram of noise scatters bin by bin (its
flatness is about 0.56, not 1), while averaging frames gives a steady estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.features.loudness import energy_envelope, loudness_db
from ddsp_gym.features.spectral import (
    EPS,
    fft_frequencies,
    power_spectrogram,
    spectral_centroid,
    spectral_flatness,
    spectral_rolloff,
)

# Quality ("clean and audible"): below LEVEL_FLOOR_DB a sound scores 0, is not admitted to
# the map, and its descriptors (of near-silence) say nothing; the score ramps up to 1 over
# LEVEL_RAMP_DB. A sample at or above CLIP_LEVEL counts as clipped; CLIP_TOLERANCE of
# clipped samples take the whole score away.
LEVEL_FLOOR_DB = -50.0
LEVEL_RAMP_DB = 20.0
CLIP_LEVEL = 0.999
CLIP_TOLERANCE = 0.01

# Attack time: from the first envelope frame at ATTACK_LOW of the peak to the first at
# ATTACK_HIGH (the usual 10-90 % rise), envelope frames of ENVELOPE_HOP samples.
ATTACK_LOW, ATTACK_HIGH = 0.1, 0.9
ENVELOPE_FRAME, ENVELOPE_HOP = 256, 64


@dataclass(frozen=True)
class Descriptor:
    """One timbre descriptor: its name, what it measures, its unit, and its map scale.

    ``log``: the map's axis is log10 of the value (a centroid's octaves are equal steps).
    """

    name: str
    label: str
    unit: str
    log: bool

    def to_measure(self, value: np.ndarray | float) -> np.ndarray:
        """Descriptor value(s) -> the map axis' coordinate (log10 where ``log``)."""
        value = np.asarray(value, np.float64)
        return np.log10(np.maximum(value, 1e-12)) if self.log else value

    def from_measure(self, measure: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`to_measure`."""
        measure = np.asarray(measure, np.float64)
        return 10.0**measure if self.log else measure

    def axis_label(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit}" + (", log scale" if self.log else "")


DESCRIPTORS: dict[str, Descriptor] = {
    d.name: d
    for d in (
        Descriptor("centroid", "spectral centroid", "Hz", log=True),
        Descriptor("flatness", "spectral flatness (noisiness)", "", log=True),
        Descriptor("rolloff", "85 % spectral rolloff", "Hz", log=True),
        Descriptor("loudness", "RMS level", "dBFS", log=False),
        Descriptor("attack", "attack time (10-90 % rise)", "s", log=False),
    )
}
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(DESCRIPTORS)
OBJECTIVE_INDEX = len(DESCRIPTOR_NAMES)  # the objective follows the descriptors in a row
DEFAULT_AXES: tuple[str, str] = ("centroid", "flatness")

OBJECTIVE_TEXT = (
    f"clean and audible, in [0, 1]: 0 at or below {LEVEL_FLOOR_DB:g} dBFS RMS, rising "
    f"linearly to 1 at {LEVEL_FLOOR_DB + LEVEL_RAMP_DB:g} dBFS, times 1 - (fraction of "
    f"samples at or above {CLIP_LEVEL:g} full scale) / {CLIP_TOLERANCE:g} (floored at 0); "
    "a sound scoring 0 is not admitted to the map"
)


def check_axes(axes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The axes as a tuple; ValueError for an unknown or repeated name, or not 2 of them."""
    axes = tuple(axes)
    unknown = [a for a in axes if a not in DESCRIPTORS]
    if unknown:
        raise ValueError(f"unknown descriptor {unknown}; known: {', '.join(DESCRIPTOR_NAMES)}")
    if len(axes) != 2 or axes[0] == axes[1]:
        raise ValueError(f"--axes takes two different descriptors, got {list(axes)}")
    return axes


def welch_n_fft(sample_rate: int) -> int:
    """Frame length of the Welch spectrum: the power of two nearest 64 ms."""
    return 1 << int(round(np.log2(0.064 * sample_rate)))


def welch_power(x: Array, n_fft: int) -> Array:
    """Mean power spectrum over Hann frames of ``n_fft`` (hop n_fft / 4), (n_fft // 2 + 1,)."""
    return power_spectrogram(x, n_fft).mean(0)


def attack_time(x: Array, sample_rate: int) -> Array:
    """Seconds from the RMS envelope's first ATTACK_LOW crossing to its first ATTACK_HIGH one.

    Frames of ENVELOPE_FRAME samples every ENVELOPE_HOP, so the resolution is one hop
    (4 ms at 16 kHz). A sound that starts at full level has attack 0.
    """
    env = energy_envelope(x, ENVELOPE_FRAME, ENVELOPE_HOP)
    peak = env.max() + EPS
    low = jnp.argmax(env >= ATTACK_LOW * peak)  # first True
    high = jnp.argmax(env >= ATTACK_HIGH * peak)
    return (high - low).astype(jnp.float32) * (ENVELOPE_HOP / sample_rate)


def objective(x: Array) -> Array:
    """The quality of a sound, "clean and audible" (:data:`OBJECTIVE_TEXT`), in [0, 1]."""
    finite = jnp.all(jnp.isfinite(x))  # a broken take scores 0
    x = jnp.nan_to_num(x)
    level = jnp.clip((loudness_db(x) - LEVEL_FLOOR_DB) / LEVEL_RAMP_DB, 0.0, 1.0)
    clipped = jnp.mean(jnp.abs(x) >= CLIP_LEVEL)
    clean = jnp.clip(1.0 - clipped / CLIP_TOLERANCE, 0.0, 1.0)
    return jnp.where(finite, level * clean, 0.0)


def describe(x: Array, sample_rate: int) -> Array:
    """One mono sound (n,) -> [descriptors in DESCRIPTOR_NAMES order..., objective], float32.

    Units as :data:`DESCRIPTORS` states them (values, not the log10 map coordinates).
    """
    raw = jnp.asarray(x, jnp.float32)
    x = jnp.nan_to_num(raw)
    n_fft = welch_n_fft(sample_rate)
    power = welch_power(x, n_fft)
    freqs = fft_frequencies(sample_rate, n_fft)
    values = {
        # Power-weighted: with magnitude weights the broadband splatter of the edge frames
        # (the sound starting and stopping) pulls a 220 Hz sine's centroid to 260 Hz;
        # with power weights it lands within 0.1 % (the Hann main lobe is symmetric).
        "centroid": spectral_centroid(power, freqs),
        "flatness": spectral_flatness(power),
        "rolloff": spectral_rolloff(power, freqs, 0.85),
        "loudness": loudness_db(x),
        "attack": attack_time(x, sample_rate),
    }
    row = [values[name] for name in DESCRIPTOR_NAMES] + [objective(raw)]
    return jnp.stack([jnp.asarray(v, jnp.float32) for v in row])
