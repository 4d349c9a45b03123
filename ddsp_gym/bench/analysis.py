"""The MR-STFT alone, no plant: the floor under every spectrum-scored env's step.

Its spectra are what such an env computes at every step (in the vector env's chunks),
so their rate over the env's seconds of audio is about the most steps/s that env can
reach; their FFTs alone (in the same chunks, from frames made outside the timing) bound
it whatever else of the spectra gets faster. The distance's value + gradient is the
loss's share of every plant's render + MR-STFT gradient at the same batch and duration.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.batching import chunked_vmap
from ddsp_gym.bench.plants import mean_mrstft
from ddsp_gym.bench.settings import PerfSettings
from ddsp_gym.bench.timing import audio_rates, blocking, time_calls
from ddsp_gym.features.distances import DEFAULT_FFT_SIZES, multi_resolution_spectra
from ddsp_gym.features.spectral import windowed_frames


def mrstft_frames(audio: Array) -> list[Array]:
    """The STFT frames of one sound (n,) at each of the MR-STFT's FFT sizes."""
    return [windowed_frames(audio, n_fft) for n_fft in DEFAULT_FFT_SIZES]


def rffts(*frames: Array) -> list[Array]:
    """The MR-STFT's FFTs alone: one rfft per resolution's frames."""
    return [jnp.fft.rfft(f, axis=-1) for f in frames]


def bench_analysis(settings: PerfSettings) -> list[dict[str, Any]]:
    """Rates of the MR-STFT's spectra, its FFTs alone and its distance's value + gradient,
    for each (batch, seconds) of ``settings.analysis_shapes``, at the first sample rate."""
    rows = []
    sr = settings.sample_rates[0]
    for batch, seconds in settings.analysis_shapes:
        n = int(round(seconds * sr))
        rng = np.random.default_rng(0)
        audio = jnp.asarray(rng.uniform(-0.5, 0.5, (batch, n)), jnp.float32)
        # Chunked on CPU as the vector env's step computes them (ddsp_gym.batching).
        spectra = jax.jit(chunked_vmap(multi_resolution_spectra, (0,))).lower(audio).compile()
        target = spectra(audio[::-1])
        value_and_grad = jax.jit(jax.value_and_grad(mean_mrstft)).lower(audio, target).compile()
        frames = jax.jit(jax.vmap(mrstft_frames))(audio)
        ffts = jax.jit(chunked_vmap(rffts, (0,) * len(frames))).lower(*frames).compile()
        calls = {
            "spectra": blocking(spectra, audio),
            "ffts": blocking(ffts, *frames),
            "value_and_grad": blocking(value_and_grad, audio, target),
        }
        row: dict[str, Any] = {"batch": batch, "duration_s": seconds, "sample_rate": sr}
        for key, call in calls.items():
            timing = time_calls(call, settings.min_time, settings.rounds)
            row[key] = audio_rates(timing, batch * seconds)
        rows.append(row)
    return rows
