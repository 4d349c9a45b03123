"""Noise-based artificial reverberation (pure JAX, unbatched).

A diffuse room's late impulse response is well modelled as Gaussian noise under
an exponential envelope whose decay rate depends on frequency (J.-M. Jot & A.
Chaigne, "Digital delay networks for designing artificial reverberators", AES
90th Convention, 1991; used as a differentiable reverb in J. Engel et al., "DDSP:
Differentiable Digital Signal Processing", ICLR 2020). Here a fixed, seeded noise
is split into frequency bands once (numpy, static); each band decays with its own
RT60 and the bands are summed, so the response is smooth in every control.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import Array

DECAY_60DB = 3.0 * math.log(10.0)  # an amplitude exp(-6.91 t / RT60) falls 60 dB at t = RT60
BAND_EDGES_HZ: tuple[float, ...] = (500.0, 1500.0, 4000.0)
CROSSOVER_OCTAVES = 0.5  # width of each raised-cosine crossover between bands


def crossover_masks(freqs_hz: np.ndarray, edges_hz: tuple[float, ...]) -> np.ndarray:
    """Complementary band masks (n_bands, n_freqs): raised-cosine crossovers in log frequency.

    Mask b is 1 inside band b and crosses over to its neighbours over
    ``CROSSOVER_OCTAVES`` around each edge; the masks sum to exactly 1 at every
    frequency (each transition is a rising step s and its complement 1 - s).
    """
    log_f = np.log2(np.maximum(freqs_hz, 1e-3))
    steps = []
    for edge in edges_hz:
        u = np.clip((log_f - np.log2(edge)) / CROSSOVER_OCTAVES + 0.5, 0.0, 1.0)
        steps.append(0.5 - 0.5 * np.cos(np.pi * u))  # 0 below the edge, 1 above
    rising = [np.ones_like(log_f), *steps]
    falling = [*steps, np.zeros_like(log_f)]
    return np.stack([r - f for r, f in zip(rising, falling, strict=True)])


@functools.lru_cache(maxsize=16)
def band_noise(n: int, sample_rate: int, seed: int, edges_hz: tuple[float, ...] = BAND_EDGES_HZ):
    """Seeded Gaussian noise split into len(edges_hz) + 1 bands, float32 (n_bands, n).

    The bands sum back to the full-band noise (complementary masks).
    """
    noise = np.random.default_rng(seed).standard_normal(n)
    spectrum = np.fft.rfft(noise)
    masks = crossover_masks(np.fft.rfftfreq(n, 1.0 / sample_rate), edges_hz)
    bands = np.fft.irfft(masks * spectrum[None, :], n, axis=-1).astype(np.float32)
    bands.setflags(write=False)
    return bands


def band_rt60(rt60_s: Array | float, damping: Array | float, n_bands: int) -> Array:
    """Per-band decay times (n_bands,): band 0 decays in ``rt60_s``, higher bands faster.

    Band b's RT60 is rt60 * (1 - 0.9 * damping) ** (b / (n_bands - 1)), so damping 0
    is a frequency-independent decay and damping 1 makes the top band decay 10x
    faster, as air and soft surfaces absorb high frequencies.
    """
    share = np.arange(n_bands, dtype=np.float32) / max(n_bands - 1, 1)
    ratio = jnp.power(1.0 - 0.9 * jnp.clip(damping, 0.0, 1.0), share)
    return jnp.maximum(rt60_s, 1e-3) * ratio


def noise_reverb_ir(bands: Array, rt60s: Array, sample_rate: int) -> Array:
    """Impulse response (n,) from band noises (n_bands, n) and their RT60s (n_bands,).

    Each band is enveloped by exp(-6.91 t / RT60_b) and the sum is scaled to unit
    energy, so the wet signal keeps about the level of a broadband input.
    """
    t = np.arange(bands.shape[-1], dtype=np.float32) / sample_rate
    # A sum of per-band products, written out: as one multiply-and-reduce over the band
    # axis, XLA makes it a batched dot of tiny matrices once vmapped, far slower than
    # this elementwise form.
    ir = sum(bands[b] * jnp.exp(-DECAY_60DB * t / rt60s[b]) for b in range(bands.shape[0]))
    return ir / jnp.sqrt(jnp.sum(ir * ir) + 1e-12)
