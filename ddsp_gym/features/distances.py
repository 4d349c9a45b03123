"""Distances between sounds or their features (pure JAX, unbatched, >= 0)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ddsp_gym.features.spectral import EPS, log_mel_spectrogram, magnitude_spectrogram

DEFAULT_FFT_SIZES: tuple[int, ...] = (1024, 512, 256, 128)


def smooth_abs(x: Array, width: float) -> Array:
    """|x| rounded off within ``width`` of 0: sqrt(x^2 + w^2) - w (differentiable at 0)."""
    return jnp.sqrt(x * x + width * width) - width


def frobenius_norm(x: Array) -> Array:
    """sqrt(sum of squares + eps): ``jnp.linalg.norm`` has a NaN gradient at exactly zero."""
    return jnp.sqrt(jnp.sum(x**2) + EPS)


def spectral_convergence(mag: Array, target_mag: Array, target_norm: Array | None = None) -> Array:
    """||target - mag||_F / ||target||_F (Arik et al., 2019).

    Norms are :func:`frobenius_norm` (finite gradients where the difference is
    exactly zero: a perfect match, or silence vs silence). ``target_norm``: the
    target's, when taken in advance (:class:`Spectrum` keeps it).
    """
    norm = frobenius_norm(target_mag) if target_norm is None else target_norm
    return frobenius_norm(target_mag - mag) / (norm + EPS)


LOG_MAG_OFFSET = 1e-5  # log(magnitude + offset): finite at silence


def log_magnitude_distance(mag: Array, target_mag: Array) -> Array:
    """Mean |log(target) - log(mag)| over the spectrogram."""
    return jnp.mean(jnp.abs(jnp.log(target_mag + LOG_MAG_OFFSET) - jnp.log(mag + LOG_MAG_OFFSET)))


class Spectrum(NamedTuple):
    """One resolution of :func:`multi_resolution_spectra`, with what distances take of it."""

    magnitude: Array  # (n_frames, n_fft // 2 + 1)
    log_magnitude: Array  # log(magnitude + LOG_MAG_OFFSET), same shape
    norm: Array  # () frobenius_norm(magnitude), the spectral convergence's denominator

    @classmethod
    def of(cls, magnitude: Array) -> Spectrum:
        """The spectrum of ``magnitude``, its log and its norm taken."""
        return cls(magnitude, jnp.log(magnitude + LOG_MAG_OFFSET), frobenius_norm(magnitude))

    def convergence_to(self, target: Spectrum) -> Array:
        """:func:`spectral_convergence` of this spectrum to ``target``, by its stored norm."""
        return spectral_convergence(self.magnitude, target.magnitude, target.norm)


def multi_resolution_spectra(
    x: Array, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES
) -> tuple[Spectrum, ...]:
    """Magnitude spectrograms of ``x`` at each FFT size (hop = n_fft / 4), with their logs.

    Keeping the logs and the norms in the features means a target's are taken once
    (when an episode starts), not at every step that compares a sound with it; a
    sound's own go unused there, and XLA drops them.

    On XLA:CPU an FFT uses both cores only when the calling thread runs it; after any
    multi-threaded kernel a computation goes on in XLA's pool, where each FFT runs on
    one core. A vector env's step runs its resolutions' FFTs two at a time instead.
    """
    return tuple(Spectrum.of(magnitude_spectrogram(x, n_fft)) for n_fft in fft_sizes)


def mrstft_distance_from_spectra(
    spectra: tuple[Spectrum, ...], target_spectra: tuple[Spectrum, ...]
) -> Array:
    """Multi-resolution STFT distance: mean over resolutions of SC + log-magnitude L1."""
    terms = [
        s.convergence_to(t) + jnp.mean(jnp.abs(t.log_magnitude - s.log_magnitude))
        for s, t in zip(spectra, target_spectra, strict=True)
    ]
    return sum(terms) / len(terms)


def mrstft_distance(x: Array, y: Array, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES) -> Array:
    """Multi-resolution STFT distance of ``x`` from the reference ``y`` (both (n,))."""
    return mrstft_distance_from_spectra(
        multi_resolution_spectra(x, fft_sizes), multi_resolution_spectra(y, fft_sizes)
    )


def log_mel_distance(x: Array, y: Array, sample_rate: int, n_fft: int = 1024) -> Array:
    """Mean absolute difference of log-mel spectrograms, in dB."""
    return jnp.mean(
        jnp.abs(
            log_mel_spectrogram(x, sample_rate, n_fft) - log_mel_spectrogram(y, sample_rate, n_fft)
        )
    )
