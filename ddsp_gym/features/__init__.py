"""Spectral and perceptual features and distances (pure JAX, safe at silence)."""

from ddsp_gym.features.distances import (
    log_magnitude_distance,
    log_mel_distance,
    mrstft_distance,
    mrstft_distance_from_spectra,
    multi_resolution_spectra,
    smooth_abs,
    spectral_convergence,
)
from ddsp_gym.features.loudness import energy_envelope, energy_envelope_db, loudness_db, rms
from ddsp_gym.features.spectral import (
    fft_frequencies,
    frame_signal,
    hann_window,
    log_mel_spectrogram,
    long_term_power_spectrum,
    magnitude_spectrogram,
    mel_filterbank,
    power_spectrogram,
    spectral_centroid,
    spectral_flatness,
    spectral_peakiness,
    spectral_rolloff,
    spectral_spread,
    stft,
)
from ddsp_gym.features.summary import SUMMARY_SIZE, summary_features

__all__ = [
    "SUMMARY_SIZE",
    "energy_envelope",
    "energy_envelope_db",
    "fft_frequencies",
    "frame_signal",
    "hann_window",
    "log_magnitude_distance",
    "log_mel_distance",
    "log_mel_spectrogram",
    "long_term_power_spectrum",
    "loudness_db",
    "magnitude_spectrogram",
    "mel_filterbank",
    "mrstft_distance",
    "mrstft_distance_from_spectra",
    "multi_resolution_spectra",
    "power_spectrogram",
    "rms",
    "smooth_abs",
    "spectral_centroid",
    "spectral_convergence",
    "spectral_flatness",
    "spectral_peakiness",
    "spectral_rolloff",
    "spectral_spread",
    "stft",
    "summary_features",
]
