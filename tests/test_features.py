"""Features: known values on known signals, and finiteness (with gradients) at silence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym import dsp
from ddsp_gym import features as F
from ddsp_gym.features.loudness import gaussian_rms_envelope

SR = 16_000


def _sine(freq: float, n: int = 4000, amp: float = 0.5) -> jnp.ndarray:
    return amp * dsp.sine(dsp.phase_accumulator(freq, SR, n))


def test_stft_shape_and_parseval_for_frames():
    x = jnp.asarray(np.random.default_rng(0).normal(size=4000).astype(np.float32))
    spec = F.stft(x, 512, 128)
    assert spec.shape == (1 + 4000 // 128, 257)
    frames = F.frame_signal(x, 512, 128) * F.hann_window(512)
    # Parseval on one frame: sum |X_k|^2 over the full spectrum == N * sum |x|^2.
    full = np.abs(np.fft.fft(np.asarray(frames[5]))) ** 2
    assert full.sum() == pytest.approx(512 * float(jnp.sum(frames[5] ** 2)), rel=1e-4)
    np.testing.assert_allclose(np.abs(spec[5]) ** 2, full[:257], rtol=1e-3, atol=1e-3)


def test_long_term_centroid_of_a_sine_is_its_frequency():
    for freq in (110.0, 440.0, 1234.0):
        power, freqs = F.long_term_power_spectrum(_sine(freq))
        centroid = float(F.spectral_centroid(power, freqs * SR))
        assert abs(1200 * np.log2(centroid / freq)) < 0.1  # cents


def test_rolloff_of_a_flat_spectrum_is_proportional():
    spectrum = jnp.ones(101)
    freqs = jnp.linspace(0.0, 1000.0, 101)
    # 85% of a flat spectrum's energy lies below about 85% of the band.
    assert float(F.spectral_rolloff(spectrum, freqs, 0.85)) == pytest.approx(850.0, abs=10.0)


def test_flatness_and_peakiness_tell_noise_from_tone():
    noise = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, 8192).astype(np.float32))
    p_noise = F.power_spectrogram(noise, 1024).mean(0)
    p_tone = F.power_spectrogram(_sine(1000.0, 8192), 1024).mean(0)
    assert float(F.spectral_flatness(p_noise)) > 0.5
    assert float(F.spectral_flatness(p_tone)) < 0.01
    assert float(F.spectral_peakiness(p_tone)) > float(F.spectral_peakiness(p_noise)) + 15.0


def test_loudness_of_a_full_scale_sine_is_minus_3_db():
    assert float(F.loudness_db(_sine(1000.0, 16000, amp=1.0))) == pytest.approx(-3.01, abs=0.01)
    assert float(F.loudness_db(jnp.zeros(100))) == -120.0


def test_energy_envelope_follows_amplitude():
    x = jnp.concatenate([_sine(500.0, 4000, 1.0), jnp.zeros(4000)])
    env = F.energy_envelope(x, 256, 128)
    assert float(env[10]) == pytest.approx(1 / np.sqrt(2), rel=0.02)
    assert float(env[-5]) < 1e-5


def test_mel_filterbank_triangles_peak_at_their_centres():
    bank = F.mel_filterbank(SR, 1024, 32)
    assert bank.shape == (513, 32)
    assert np.all(bank >= 0) and np.all(bank.max(axis=0) > 0.8)
    peaks = bank.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)  # filters ordered by frequency
    edges = F.mel_to_hz(np.linspace(0, F.hz_to_mel(SR / 2), 34))
    freqs = F.fft_frequencies(SR, 1024)
    assert np.all(np.abs(freqs[peaks] - edges[1:-1]) <= SR / 1024)


def test_mrstft_distance_is_zero_for_identical_and_grows_with_difference():
    a = _sine(440.0)
    assert float(F.mrstft_distance(a, a)) == pytest.approx(0.0, abs=1e-6)
    near = float(F.mrstft_distance(_sine(450.0), a))
    far = float(F.mrstft_distance(_sine(900.0), a))
    assert 0.0 < near < far


def test_log_mel_distance_in_db():
    a = _sine(440.0)
    assert float(F.log_mel_distance(a, a, SR)) == pytest.approx(0.0, abs=1e-5)
    # Halving the amplitude lowers every mel band by 6.02 dB wherever it is above the floor.
    loud, quiet = F.log_mel_spectrogram(a, SR), F.log_mel_spectrogram(0.5 * a, SR)
    audible = np.asarray(loud) > -60.0  # well above the 1e-10 power epsilon
    np.testing.assert_allclose(np.asarray(loud - quiet)[audible], 6.02, atol=0.02)
    assert 0.0 < float(F.log_mel_distance(0.5 * a, a, SR)) <= 6.03


SILENCE_FEATURES = {
    "centroid": lambda x: F.spectral_centroid(
        F.power_spectrogram(x, 512), F.fft_frequencies(SR, 512)
    ).mean(),
    "rolloff": lambda x: F.spectral_rolloff(
        F.power_spectrogram(x, 512), F.fft_frequencies(SR, 512)
    ).mean(),
    "flatness": lambda x: F.spectral_flatness(F.power_spectrogram(x, 512)).mean(),
    "peakiness": lambda x: F.spectral_peakiness(F.power_spectrogram(x, 512)).mean(),
    "log_mel": lambda x: F.log_mel_spectrogram(x, SR).mean(),
    "mrstft": lambda x: F.mrstft_distance(x, jnp.zeros_like(x)),
    "mrstft_vs_tone": lambda x: F.mrstft_distance(x, _sine(440.0, x.shape[0])),
    "loudness": F.loudness_db,
    "rms": F.rms,
    "envelope_db": lambda x: F.energy_envelope_db(x).mean(),
    "summary": lambda x: F.summary_features(x, SR).sum(),
}


@pytest.mark.parametrize("name", sorted(SILENCE_FEATURES))
def test_features_and_their_gradients_are_finite_at_silence(name):
    fn = SILENCE_FEATURES[name]
    silence = jnp.zeros(4000)
    value, grad = jax.value_and_grad(fn)(silence)
    assert bool(jnp.isfinite(value)), name
    assert bool(jnp.all(jnp.isfinite(grad))), name


def test_summary_features_have_fixed_size_and_moderate_scale():
    for x in (_sine(220.0), jnp.zeros(4000), _sine(3000.0, amp=1.0)):
        s = F.summary_features(x, SR)
        assert s.shape == (F.SUMMARY_SIZE,)
        assert bool(jnp.all(jnp.abs(s) < 3.0))


def test_gaussian_rms_envelope_matches_a_direct_weighted_rms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000) * np.exp(-np.arange(4000) / 800.0)
    sigma, hop = 40.0, 50
    ours = np.asarray(gaussian_rms_envelope(jnp.asarray(x, jnp.float32), sigma, hop))
    n = np.arange(x.size)
    reference = []
    for centre in range(0, x.size + 1, hop):
        w = np.exp(-0.5 * ((n - centre) / sigma) ** 2)
        full = np.exp(-0.5 * ((np.arange(-240, 240)) / sigma) ** 2).sum()  # window's sum
        reference.append(np.sqrt(np.sum(w * x * x) / full))
    assert ours.shape == (x.size // hop + 1,)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)
    silent = np.asarray(gaussian_rms_envelope(jnp.zeros(1000), sigma, hop))
    assert np.all(np.isfinite(silent)) and np.max(silent) < 1e-5
