"""Unit conversions and simple gain/mix blocks (pure JAX, unbatched)."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array

# Floor used wherever a level is converted to dB, so silence maps to a finite value.
DB_FLOOR = -120.0


def db_to_amp(db: Array | float) -> Array:
    """Decibels -> linear amplitude: 10 ** (db / 20)."""
    # exp(x ln 10 / 20): XLA's CPU pow is much slower than exp, and this runs per sample.
    return jnp.exp(jnp.asarray(db) * (math.log(10.0) / 20.0))


def amp_to_db(amp: Array | float, floor_db: float = DB_FLOOR) -> Array:
    """Linear amplitude -> decibels, floored at ``floor_db`` (finite for silence)."""
    floor = 10.0 ** (floor_db / 20.0)
    return 20.0 * jnp.log10(jnp.maximum(jnp.abs(jnp.asarray(amp)), floor))


def power_to_db(power: Array | float, floor_db: float = DB_FLOOR) -> Array:
    """Power (amplitude squared) -> decibels, floored at ``floor_db``."""
    floor = 10.0 ** (floor_db / 10.0)
    return 10.0 * jnp.log10(jnp.maximum(jnp.asarray(power), floor))


def midi_to_hz(note: Array | float) -> Array:
    """MIDI note number -> frequency in Hz (A4 = note 69 = 440 Hz)."""
    return 440.0 * jnp.exp((jnp.asarray(note) - 69.0) * (math.log(2.0) / 12.0))


def hz_to_midi(freq_hz: Array | float) -> Array:
    """Frequency in Hz -> (fractional) MIDI note number."""
    return 69.0 + 12.0 * jnp.log2(jnp.maximum(jnp.asarray(freq_hz), 1e-6) / 440.0)


def cents(freq_hz: Array | float, ref_hz: Array | float) -> Array:
    """Interval from ``ref_hz`` to ``freq_hz`` in cents (1200 per octave)."""
    safe = lambda f: jnp.maximum(jnp.asarray(f), 1e-6)  # noqa: E731
    return 1200.0 * jnp.log2(safe(freq_hz) / safe(ref_hz))


def gain(x: Array, gain_db: Array | float) -> Array:
    """Scale a signal ``x`` (any shape) by ``gain_db`` decibels."""
    return x * db_to_amp(gain_db)


def mix(signals: Array, weights: Array) -> Array:
    """Weighted sum of signals.

    Args:
        signals: (k, n) stacked signals.
        weights: (k,) linear weights.
    Returns:
        (n,) the mix ``sum_k weights[k] * signals[k]``.
    """
    return jnp.tensordot(weights, signals, axes=1)
