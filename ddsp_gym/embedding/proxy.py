"""A differentiable JAX stand-in for the embedding distance: multi-scale log-mel
statistics.

The pretrained embeddings (:mod:`ddsp_gym.embedding.models`) run in torch on the host,
so they give no gradient to a JAX agent. This proxy summarises a sound as the mean over
time of its log-mel bands at several frame sizes (a timbre summary much like the
embeddings' own mel front ends, but fixed), on a level-normalised signal (both
embeddings ignore level). How well it ranks sounds like the
embedding does is measured, not assumed: :mod:`ddsp_gym.embedding.agreement`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym import features as F

# Frame sizes (samples at 16 kHz: 16, 32, 64 ms): short frames see the onset and
# the formant motion, long ones resolve the harmonics.
DEFAULT_SCALES: tuple[int, ...] = (256, 512, 1024)
N_MELS = 40
FLOOR_DB = -60.0  # power floor relative to a unit-RMS signal: silence counts alike


def proxy_features(
    audio: Array, sample_rate: int, scales: tuple[int, ...] = DEFAULT_SCALES
) -> dict[str, Array]:
    """Per scale, the mean over time of the log-mel spectrum (dB) of ``audio``.

    Only the means: adding the time spread (log-mel and MFCC standard deviations) and
    MFCC means made the proxy rank held-out formant-plant patches less like the aiSFX
    embedding does, so it keeps the long-term spectral shape at three resolutions.
    """
    x = jnp.asarray(audio, jnp.float32)
    x = x / jnp.sqrt(jnp.mean(x * x) + 1e-8)  # level-invariant, like both embeddings
    out: dict[str, Array] = {}
    for n_fft in scales:
        mel = F.power_spectrogram(x, n_fft, n_fft // 4) @ F.mel_filterbank(
            sample_rate, n_fft, N_MELS, 40.0
        )
        # Per-band power normalised by the FFT size, so scales share one dB scale.
        log_mel = 10.0 * jnp.log10(mel / n_fft + 10.0 ** (FLOOR_DB / 10.0))
        out[f"mel{n_fft}_mean"] = jnp.mean(log_mel, axis=0)
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
