"""Small pure reward terms of the streaming envs (differentiable; no task state)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.features.loudness import frame_mean_square
from ddsp_gym.features.summary import N_MEL_BANDS

# Layout of ddsp_gym.features.summary.summary_features.
CENTROID, ROLLOFF, FLATNESS, LOUDNESS = 0, 1, 2, 3
MEL = slice(4, 4 + N_MEL_BANDS)
# Soft-min temperature of the novelty's nearest-neighbour distance (summary units: 0.01 is
# about 3 % of centroid or 0.8 dB of a band level): below it the soft-min is the minimum.
NOVELTY_TEMPERATURE = 0.01
MEL_RANGE_DB = 48.0
DENSITY_FLOOR = 0.003  # frame RMS, about -50 dBFS


def timbre_vector(summary: Array) -> Array:
    """The timbre part of a block's summary (..., 18): centroid, flatness and the mel-band
    levels relative to their mean (floored MEL_RANGE_DB below the loudest band), so a
    level change alone is no novelty.

    The rolloff is left out: it interpolates between FFT bins, so its derivative jumps
    wherever the rolloff crosses a bin, and a reward with such kinks has per-block
    gradients that finite differences (and an optimizer) cannot trust.
    """
    mel = summary[..., MEL]
    # Bands more than MEL_RANGE_DB below the loudest sit on a soft floor: their levels
    # are float32 rounding noise that the log scale enlarges, not timbre.
    floor = jnp.max(mel, axis=-1, keepdims=True) - MEL_RANGE_DB / 80.0
    mel = floor + jax.nn.softplus(40.0 * (mel - floor)) / 40.0
    return jnp.concatenate(
        [
            summary[..., CENTROID : CENTROID + 1],
            summary[..., FLATNESS : FLATNESS + 1],
            mel - jnp.mean(mel, axis=-1, keepdims=True),
        ],
        axis=-1,
    )


def soft_nearest_distance(
    x: Array, archive: Array, temperature: float = NOVELTY_TEMPERATURE
) -> Array:
    """Soft minimum over the archive (A, F) of the Euclidean distance to ``x`` (F,).

    -t logsumexp(-d / t) lies within t log A below the true nearest distance and, unlike
    the minimum, has a gradient toward every close neighbour (differentiable per block).
    """
    d = jnp.sqrt(jnp.sum((archive - x[None, :]) ** 2, axis=-1) + 1e-12)
    return -temperature * jax.nn.logsumexp(-d / temperature)


def clipping(audio: Array) -> Array:
    """Mean squared excess of |sample| over full scale (0 dBFS): 0 for a sound that fits."""
    return jnp.mean(jax.nn.relu(jnp.abs(audio) - 1.0) ** 2) * 100.0


def slew(knobs_prev: Array, knobs_next: Array) -> Array:
    """Sum of squared knob moves in unit travel: the abrupt-move charge."""
    return jnp.sum((knobs_next - knobs_prev) ** 2)


def band_violation(value: Array, low: Array, high: Array, width: Array) -> Array:
    """Squared distance outside [low, high] in units of ``width``: 0 inside the band."""
    return (jax.nn.relu(low - value) + jax.nn.relu(value - high)) ** 2 / width**2


def temporal_density(audio: Array) -> Array:
    """How evenly and audibly the block's energy fills it: the mean of its 256-sample frame
    levels over their RMS plus DENSITY_FLOOR.

    About 1 for a steady sound well above the floor, about 1 / sqrt(k) for a sound whose
    energy sits in one of k frames (a sparse stab), 0 for silence (which the floor keeps
    from counting as perfectly even); echoes and sustain raise it. Smooth in the audio.
    """
    level = jnp.sqrt(frame_mean_square(audio, 256, 128) + 1e-10)
    return jnp.mean(level) / (jnp.sqrt(jnp.mean(level**2)) + DENSITY_FLOOR)
