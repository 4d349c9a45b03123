"""A differentiable JAX stand-in for the embedding distance: multi-scale log-mel and
MFCC statistics.

The pretrained embeddings (:mod:`ddsp_gym.embedding.models`) run in torch on the host,
so they give no gradient to a JAX agent. This proxy summarises a sound as the mean and
standard deviation over time of its log-mel bands and MFCCs at several frame sizes (a
timbre summary much like the embeddings' own mel front ends, but fixed), on a level-
normalised signal (both embeddings ignore level). How well it ranks sounds like the
embedding does is measured, not assumed: :mod:`ddsp_gym.embedding.agreement`.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import scipy.fft
from jax import Array

from ddsp_gym import features as F

# Frame sizes (samples at 16 kHz: 16, 32, 64 ms): short frames see the onset and
# the formant motion, long ones resolve the harmonics.
DEFAULT_SCALES: tuple[int, ...] = (256, 512, 1024)
N_MELS = 40
N_MFCC = 13
FLOOR_DB = -60.0  # power floor relative to a unit-RMS signal: silence counts alike


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II (n_mels, n_mfcc): log-mel frames @ it = MFCCs."""
    return scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:, :n_mfcc].astype(
        np.float32
    )


def proxy_features(
    audio: Array, sample_rate: int, scales: tuple[int, ...] = DEFAULT_SCALES
) -> dict[str, Array]:
    """Per scale: mean and std over time of the log-mel (dB) and MFCCs of ``audio``."""
    x = jnp.asarray(audio, jnp.float32)
    x = x / jnp.sqrt(jnp.mean(x * x) + 1e-8)  # level-invariant, like both embeddings
    out: dict[str, Array] = {}
    for n_fft in scales:
        mel = F.power_spectrogram(x, n_fft, n_fft // 4) @ F.mel_filterbank(
            sample_rate, n_fft, N_MELS, 40.0
        )
        # Per-band power normalised by the FFT size, so scales share one dB scale.
        log_mel = 10.0 * jnp.log10(mel / n_fft + 10.0 ** (FLOOR_DB / 10.0))
        mfcc = log_mel @ _dct_matrix(N_MELS, N_MFCC)
        for name, value in (("mel", log_mel), ("mfcc", mfcc)):
            out[f"{name}{n_fft}_mean"] = jnp.mean(value, axis=0)
            # sqrt(var + 1): a smooth std whose gradient stays finite at a steady sound.
            out[f"{name}{n_fft}_std"] = jnp.sqrt(jnp.var(value, axis=0) + 1.0)
    return out


def proxy_distance_of_features(features: dict[str, Array], target: dict[str, Array]) -> Array:
    """Mean over the statistics of the mean |difference| (dB, rounded off within 0.5)."""
    terms = [jnp.mean(F.smooth_abs(features[k] - target[k], 0.5)) for k in sorted(features)]
    return jnp.mean(jnp.stack(terms))


def proxy_distance(audio: Array, target: Array, sample_rate: int) -> Array:
    """The proxy distance (dB) between two sounds; differentiable in both."""
    return proxy_distance_of_features(
        proxy_features(audio, sample_rate), proxy_features(target, sample_rate)
    )
