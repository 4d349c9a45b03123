"""Oscillators (pure JAX, unbatched).

Phases are in cycles (0..1), frequencies in Hz, sample rates in Hz, lengths in
samples. Frequencies may be scalars or per-sample arrays of shape (n,).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

# Taylor coefficients of sin(2 pi r) = r * sum_k c_k r^(2k) for r in cycles. On the reduced
# range |r| <= 1/4 (|2 pi r| <= pi/2) the first omitted term is below (pi/2)^15 / 15! < 1e-9,
# far under float32 resolution (Abramowitz & Stegun 4.3.65 gives the series).
_SIN_CYCLE_COEFFS: tuple[float, ...] = tuple(
    (-1) ** k * (2.0 * math.pi) ** (2 * k + 1) / math.factorial(2 * k + 1) for k in range(7)
)


def phase_increment(freq_hz: Array | float, sample_rate: int, n: int) -> Array:
    """Per-sample phase increment in cycles, shape (n,), clamped to [0, 0.5)."""
    inc = jnp.broadcast_to(jnp.asarray(freq_hz, dtype=jnp.float32) / sample_rate, (n,))
    # Above Nyquist an oscillator only aliases; clamping keeps every block finite.
    return jnp.clip(inc, 0.0, 0.499)


def phase_accumulator(
    freq_hz: Array | float, sample_rate: int, n: int, phase0: Array | float = 0.0
) -> Array:
    """Running phase in cycles, wrapped to [0, 1), shape (n,).

    The first sample has phase ``phase0``; each following sample adds
    ``freq_hz / sample_rate``. A scalar frequency takes a closed form; a
    per-sample frequency (n,) is integrated with a cumulative sum.
    """
    freq = jnp.asarray(freq_hz, dtype=jnp.float32)
    if freq.ndim == 0:
        return _constant_phase(freq, sample_rate, n, phase0)
    return _integrated_phase(phase_increment(freq, sample_rate, n), phase0)


def running_phase(inc: Array, phase0: Array | float) -> tuple[Array, Array]:
    """A block of running phase from per-sample increments, and the next block's start phase.

    Streaming renders carry an oscillator's phase across blocks: block k + 1 starts where
    block k left off, so a block edge is no discontinuity.

    Args:
        inc: (n,) per-sample phase increments in cycles (:func:`phase_increment`).
        phase0: the phase of the first sample, in cycles.
    Returns:
        (phase (n,) wrapped to [0, 1), the phase one sample past the block's end).
    """
    phase = _integrated_phase(inc, phase0)
    return phase, _frac(phase[-1] + inc[-1])


def _frac(x: Array) -> Array:
    return x - jnp.floor(x)


def _integrated_phase(inc: Array, phase0: Array | float, block: int = 64) -> Array:
    """Exclusive cumulative sum of per-sample increments (n,), wrapped to [0, 1).

    Summed in blocks of ``block`` samples whose totals are wrapped before they
    are accumulated, so no partial sum grows past ~n / block cycles; a plain
    float32 cumsum over one second at 16 kHz drifts by up to 0.2 cycles.
    """
    n = inc.shape[0]
    padded = jnp.pad(inc, (0, (-n) % block)).reshape(-1, block)
    within = jnp.cumsum(padded, axis=1) - padded  # exclusive, < block / 2 cycles
    totals = _frac(within[:, -1] + padded[:, -1])
    offsets = _frac(jnp.cumsum(totals) - totals)  # each block's start phase
    return _frac(offsets[:, None] + within + phase0).reshape(-1)[:n]


def _constant_phase(freq: Array, sample_rate: int, n: int, phase0: Array | float) -> Array:
    """frac(phase0 + k * inc) for k = 0..n-1, without float32 error growing with k.

    Writing k = 64 a + b keeps every product small: frac(64 inc) * a stays below
    n / 64 and inc * b below 32, so the phase error stays near 1e-5 cycles over a
    whole second (a plain k * inc reaches thousands of cycles, where float32
    resolution is 1e-3 cycles). It also keeps XLA from constant-folding a long
    cumulative sum when the pitch is a static constant.
    """
    inc = jnp.clip(freq / sample_rate, 0.0, 0.499)
    k = np.arange(n)
    coarse, fine = (k // 64).astype(np.float32), (k % 64).astype(np.float32)
    return _frac(_frac(_frac(64.0 * inc) * coarse) + inc * fine + phase0)


@jax.custom_jvp
def sine(phase: Array) -> Array:
    """Sine of a phase in cycles: sin(2 pi phase), any shape.

    Reduced exactly in cycles (r = phase - round(phase), folded onto |r| <= 1/4
    by sin(pi - x) = sin(x)), then a degree-13 odd polynomial: accurate to about
    2e-7, and on CPU much faster than ``jnp.sin`` (whose argument reduction in
    radians dominates its cost). Its derivative is declared as 2 pi cos(2 pi phase)
    (:func:`_sine_jvp`): autodiff through the Horner chain would keep every partial
    product for the backward pass.
    """
    phase = jnp.asarray(phase)
    r = phase - jnp.round(phase)
    r = jnp.where(r > 0.25, 0.5 - r, jnp.where(r < -0.25, -0.5 - r, r))
    r2 = r * r
    poly = jnp.full_like(r, _SIN_CYCLE_COEFFS[-1])
    for coeff in reversed(_SIN_CYCLE_COEFFS[:-1]):
        poly = poly * r2 + coeff
    return r * poly


@sine.defjvp
def _sine_jvp(primals, tangents):
    (phase,), (phase_dot,) = primals, tangents
    return sine(phase), (2.0 * math.pi) * sine(phase + 0.25) * phase_dot


def cosine(phase: Array) -> Array:
    """Cosine of a phase in cycles: cos(2 pi phase) = sin(2 pi (phase + 1/4))."""
    return sine(jnp.asarray(phase) + 0.25)


def saw_naive(phase: Array) -> Array:
    """Trivial (aliasing) rising saw in [-1, 1): 2 * phase - 1."""
    return 2.0 * phase - 1.0


def _polyblep(t: Array, dt: Array) -> Array:
    """Polynomial band-limited step residual (Valimaki & Huovilainen, 2007).

    ``t`` is the phase in cycles, ``dt`` the phase increment; the residual is
    non-zero only within one sample of a discontinuity at phase 0/1.
    """
    dt = jnp.maximum(dt, 1e-6)
    after = t / dt  # just after the wrap, in samples
    before = (t - 1.0) / dt  # just before the wrap
    return jnp.where(
        t < dt,
        2.0 * after - after * after - 1.0,
        jnp.where(t > 1.0 - dt, before * before + 2.0 * before + 1.0, 0.0),
    )


def saw_polyblep(phase: Array, increment: Array) -> Array:
    """Band-limited (PolyBLEP) rising saw in about [-1, 1].

    Args:
        phase: (n,) phase in cycles from :func:`phase_accumulator`.
        increment: (n,) or scalar phase increment from :func:`phase_increment`.
    """
    return saw_naive(phase) - _polyblep(phase, increment)


def square_polyblep(phase: Array, increment: Array, duty: Array | float = 0.5) -> Array:
    """Band-limited (PolyBLEP) square/pulse wave in [-1, 1] with duty cycle ``duty``."""
    duty = jnp.clip(duty, 0.05, 0.95)
    naive = jnp.where(phase < duty, 1.0, -1.0)
    falling = phase - duty
    falling = falling - jnp.floor(falling)
    return naive + _polyblep(phase, increment) - _polyblep(falling, increment)
