"""Source-filter voice blocks: a glottal pulse source and formant resonators (pure JAX).

The source-filter model of vowels (G. Fant, "Acoustic Theory of Speech
Production", 1960): a periodic glottal flow, differentiated by the lips'
radiation, excites a chain of vocal-tract resonances (formants).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.filters import MAX_FREQ_RATIO
from ddsp_gym.dsp.oscillators import cosine

MIN_BANDWIDTH_HZ = 10.0


def rosenberg_pulse(
    phase: Array, open_fraction: float = 0.4, close_fraction: float = 0.16
) -> Array:
    """Rosenberg's trigonometric glottal flow pulse, in [0, 1], shape of ``phase``.

    Per period (``phase`` in cycles, [0, 1)): 0.5 (1 - cos(pi p / Tp)) while the
    glottis opens (p < Tp), cos(pi (p - Tp) / (2 Tn)) while it closes, 0 while
    closed. Tp = ``open_fraction``, Tn = ``close_fraction`` of the period; the
    defaults are close to the values listeners preferred in A. E. Rosenberg,
    "Effect of glottal pulse shape on the quality of natural vowels", JASA
    49(2B), 1971 (pulse "B", Tp about 40 %, Tn about 16 %).
    """
    # cos(pi x) = cos(2 pi (x / 2)): the cycle-based cosine, cheaper than jnp.cos on CPU.
    opening = 0.5 * (1.0 - cosine(phase / (2.0 * open_fraction)))
    closing = cosine((phase - open_fraction) / (4.0 * close_fraction))
    return jnp.where(
        phase < open_fraction,
        opening,
        jnp.where(phase < open_fraction + close_fraction, closing, 0.0),
    )


def pre_emphasis(x: Array, coefficient: Array | float) -> Array:
    """x[k] - c x[k-1] (x[-1] = 0), shape (n,): +6 dB/octave above a low corner for c near 1."""
    return x - coefficient * jnp.pad(x[:-1], (1, 0))  # a pad fuses better than a concatenation


def radiate(flow: Array) -> Array:
    """Lip radiation as a first difference, x[k] - x[k-1] (x[-1] = 0), shape (n,)."""
    return pre_emphasis(flow, 1.0)


def resonator_coeffs(
    freq_hz: Array | float, bandwidth_hz: Array | float, sample_rate: int
) -> tuple[Array, Array]:
    """Two-pole formant resonator with unity gain at 0 Hz -> (b, a), each (..., 3).

    D. H. Klatt, "Software for a cascade/parallel formant synthesizer", JASA
    67(3), 1980: y[k] = A x[k] + B y[k-1] + C y[k-2] with C = -exp(-2 pi BW T),
    B = 2 exp(-pi BW T) cos(2 pi F T), A = 1 - B - C. The poles sit at radius
    exp(-pi BW T) < 1, angle 2 pi F T; the frequency is clamped to
    [0, 0.45 * sample_rate] and the bandwidth to >= 10 Hz, so the filter is
    stable for any input. Layout as :func:`ddsp_gym.dsp.lowpass_coeffs` (a[0] = 1).
    """
    freq = jnp.clip(jnp.asarray(freq_hz, jnp.float32), 0.0, MAX_FREQ_RATIO * sample_rate)
    bandwidth = jnp.maximum(jnp.asarray(bandwidth_hz, jnp.float32), MIN_BANDWIDTH_HZ)
    radius = jnp.exp(-jnp.pi * bandwidth / sample_rate)
    c = -radius * radius
    b = 2.0 * radius * jnp.cos(2.0 * jnp.pi * freq / sample_rate)
    gain = 1.0 - b - c
    zero = jnp.zeros_like(gain)
    one = jnp.ones_like(gain)
    return jnp.stack([gain, zero, zero], -1), jnp.stack([one, -b, -c], -1)
