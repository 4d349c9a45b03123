"""Spectral analysis and spectral shape features (pure JAX, unbatched).

Every function is safe at silence: magnitudes use sqrt(power + eps) and every
ratio has an epsilon in its denominator, so an all-zero signal yields finite
values and finite gradients.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax import Array

EPS = 1e-10


@functools.lru_cache(maxsize=64)
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (the STFT convention)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def frame_signal(x: Array, frame_length: int, hop: int) -> Array:
    """Slice (n,) into overlapping frames (n_frames, frame_length), centred.

    The signal is zero-padded by ``frame_length // 2`` on both sides so frame k
    is centred on sample ``k * hop``.
    """
    pad = frame_length // 2
    padded = jnp.pad(x, (pad, pad))
    n_frames = 1 + (padded.shape[0] - frame_length) // hop
    if frame_length % hop:
        index = np.arange(frame_length)[None, :] + hop * np.arange(n_frames)[:, None]
        return padded[index]
    # hop divides the frame (the STFTs here use hop = n_fft / 4): frames are runs of
    # whole hop-sized chunks, so slices stacked side by side build them. A gather would
    # do the same, but its gradient is a scatter-add, slow on CPU. The runs are stacked
    # on a new axis and merged, not concatenated along the last axis: the same copy, but
    # XLA:CPU emits a concatenation element by element once it fuses the window's
    # product into it.
    chunks_per_frame = frame_length // hop
    n_chunks = n_frames + chunks_per_frame - 1
    padded = jnp.pad(padded, (0, max(0, n_chunks * hop - padded.shape[0])))
    chunks = padded[: n_chunks * hop].reshape(n_chunks, hop)
    runs = [chunks[i : i + n_frames] for i in range(chunks_per_frame)]
    return jnp.stack(runs, axis=1).reshape(n_frames, frame_length)


def windowed_frames(x: Array, n_fft: int, hop: int | None = None) -> Array:
    """The STFT's Hann-windowed frames (n_frames, n_fft); hop defaults to n_fft / 4."""
    return frame_signal(x, n_fft, hop or n_fft // 4) * hann_window(n_fft)


def stft(x: Array, n_fft: int, hop: int | None = None) -> Array:
    """Complex STFT with a Hann window, shape (n_frames, n_fft // 2 + 1)."""
    return jnp.fft.rfft(windowed_frames(x, n_fft, hop), axis=-1)


def power_spectrogram(x: Array, n_fft: int, hop: int | None = None) -> Array:
    """|STFT|^2, shape (n_frames, n_fft // 2 + 1)."""
    spec = stft(x, n_fft, hop)
    return jnp.real(spec) ** 2 + jnp.imag(spec) ** 2


def magnitude_spectrogram(x: Array, n_fft: int, hop: int | None = None) -> Array:
    """|STFT| with a gradient-safe square root, shape (n_frames, n_fft // 2 + 1)."""
    return jnp.sqrt(power_spectrogram(x, n_fft, hop) + EPS)


def long_term_power_spectrum(x: Array) -> tuple[Array, np.ndarray]:
    """Power spectrum of the whole signal under one Hann window -> (power, freqs / sample_rate).

    One window over the entire sound (zero-padded to a power of two) resolves a
    steady tone far better than averaged short frames: the centroid of a pure
    sine lands within 0.01 cents of its frequency.
    """
    n = x.shape[0]
    n_fft = 1 << max(n - 1, 1).bit_length()
    spec = jnp.fft.rfft(x * hann_window(n), n_fft)
    freqs = np.fft.rfftfreq(n_fft).astype(np.float32)  # cycles per sample
    return jnp.real(spec) ** 2 + jnp.imag(spec) ** 2, freqs


def fft_frequencies(sample_rate: int, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each rfft bin, shape (n_fft // 2 + 1,)."""
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)


def hz_to_mel(freq_hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(freq_hz) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=64)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular mel filterbank, shape (n_fft // 2 + 1, n_mels), peak 1 per filter.

    Filter m rises from mel edge m to a peak at edge m + 1 and falls to edge m + 2,
    with n_mels + 2 edges equally spaced in mel between ``fmin`` and ``fmax``.
    """
    fmax = fmax or sample_rate / 2.0
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = fft_frequencies(sample_rate, n_fft)[:, None]
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (freqs - lower) / np.maximum(centre - lower, 1e-6)
    falling = (upper - freqs) / np.maximum(upper - centre, 1e-6)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel_spectrogram(
    x: Array, sample_rate: int, n_fft: int = 1024, hop: int | None = None, n_mels: int = 64
) -> Array:
    """Log-mel power spectrogram in dB (floored at -100 dB), shape (n_frames, n_mels)."""
    mel_power = power_spectrogram(x, n_fft, hop) @ mel_filterbank(sample_rate, n_fft, n_mels)
    return 10.0 * jnp.log10(mel_power + 1e-10)


def spectral_centroid(spectrum: Array, freqs: Array) -> Array:
    """Centre of mass of a spectrum in Hz.

    Args:
        spectrum: (..., n_bins) non-negative weights (magnitude or power).
        freqs: (n_bins,) bin frequencies in Hz.
    Returns:
        (...,) centroid; 0 Hz for an all-zero spectrum.
    """
    return (spectrum * freqs).sum(-1) / (spectrum.sum(-1) + EPS)


def spectral_spread(spectrum: Array, freqs: Array) -> Array:
    """Standard deviation in Hz of a spectrum's frequencies about its centroid.

    Args:
        spectrum: (..., n_bins) non-negative weights.
        freqs: (n_bins,) bin frequencies in Hz.
    Returns:
        (...,) spread (Peeters 2004, CUIDADO audio features report, sec. 6.1.2);
        finite with a finite gradient for an all-zero spectrum.
    """
    centroid = spectral_centroid(spectrum, freqs)
    variance = (spectrum * (freqs - centroid[..., None]) ** 2).sum(-1) / (spectrum.sum(-1) + EPS)
    return jnp.sqrt(variance + 1e-6)


def spectral_rolloff(spectrum: Array, freqs: Array, fraction: float = 0.85) -> Array:
    """Frequency in Hz below which ``fraction`` of the spectrum's total lies.

    Linearly interpolated between bins, so it moves continuously (and has a
    gradient) as energy shifts. Shape (...,) for a spectrum (..., n_bins).
    """
    cumulative = jnp.cumsum(spectrum, axis=-1) / (spectrum.sum(-1, keepdims=True) + EPS)
    n_bins = spectrum.shape[-1]
    # Index of the first bin whose cumulative share reaches ``fraction``.
    k = jnp.clip((cumulative < fraction).sum(-1), 1, n_bins - 1)
    below = jnp.take_along_axis(cumulative, (k - 1)[..., None], -1)[..., 0]
    above = jnp.take_along_axis(cumulative, k[..., None], -1)[..., 0]
    share = jnp.clip((fraction - below) / (above - below + EPS), 0.0, 1.0)
    freqs = jnp.asarray(freqs)
    return freqs[k - 1] + share * (freqs[k] - freqs[k - 1])


def spectral_flatness(power: Array) -> Array:
    """Geometric over arithmetic mean of a power spectrum (..., n_bins), in (0, 1]."""
    log_power = jnp.log(power + EPS)
    return jnp.exp(log_power.mean(-1)) / (power.mean(-1) + EPS)


def spectral_peakiness(power: Array) -> Array:
    """Spectral crest in dB: 10 log10(max / mean) of a power spectrum (..., n_bins)."""
    return 10.0 * jnp.log10((power.max(-1) + EPS) / (power.mean(-1) + EPS))
