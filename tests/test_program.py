"""The program signals effects process: deterministic, well-formed, and what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from ddsp_gym import program as P

SR = 16_000


@pytest.mark.parametrize("kind", P.PROGRAM_KINDS)
def test_shape_peak_and_determinism(kind):
    x = P.program_signal(kind, SR, 12_345, seed=3)
    assert x.shape == (12_345,) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert np.max(np.abs(x)) == pytest.approx(P.PEAK, rel=1e-5)
    np.testing.assert_array_equal(x, P.program_signal(kind, SR, 12_345, seed=3))


@pytest.mark.parametrize("kind", ["pluck", "drums", "speech", "mix"])
def test_seed_changes_random_programs(kind):
    a, b = P.program_signal(kind, SR, SR, seed=0), P.program_signal(kind, SR, SR, seed=1)
    assert np.max(np.abs(a - b)) > 0.1


def test_returns_a_copy_not_the_cache():
    x = P.program_signal("drums", SR, SR, seed=0)
    x[:] = 0.0
    assert np.max(np.abs(P.program_signal("drums", SR, SR, seed=0))) > 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown program kind"):
        P.program_signal("violin", SR, SR)
    with pytest.raises(ValueError, match="positive"):
        P.program_signal("drums", SR, 0)


def test_karplus_strong_matches_the_sample_recursion():
    rng = np.random.default_rng(0)
    period, n = 37, 500
    burst = rng.uniform(-1, 1, period)
    fast = P.karplus_strong(burst, period, n, loss=0.99)
    x = np.zeros(n)
    x[:period] = burst
    y = np.zeros(n)
    for t in range(n):
        one = y[t - period] if t >= period else 0.0
        two = y[t - period - 1] if t >= period + 1 else 0.0
        y[t] = x[t] + 0.99 * 0.5 * (one + two)
    np.testing.assert_allclose(fast, y, atol=1e-12)


def test_pluck_pitch_is_the_string_period():
    rng = np.random.default_rng(1)
    period = 100  # 160 Hz at 16 kHz
    note = P.karplus_strong(rng.uniform(-1, 1, period), period, 8000)[2000:]
    acf = np.correlate(note, note, "full")[note.size - 1 :]
    lag = 50 + int(np.argmax(acf[50:200]))
    # Parabolic interpolation of the peak.
    a, b, c = acf[lag - 1], acf[lag], acf[lag + 1]
    period_est = lag + 0.5 * (a - c) / (a - 2 * b + c)
    # The two-point average adds half a sample: pitch = sr / (P + 0.5) (Karplus & Strong 1983).
    assert period_est == pytest.approx(period + 0.5, abs=0.15)


def test_formant_filter_peaks_at_the_formant():
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    response = P.formant_filter(impulse, (730.0,), SR)
    freqs, h = sps.freqz(response, worN=4096, fs=SR)
    assert freqs[np.argmax(np.abs(h))] == pytest.approx(730.0, abs=10.0)


def test_sine_steps_levels():
    n = 50_000
    x = P.program_signal("sine_steps", SR, n)
    steps = len(P.SINE_STEP_LEVELS_DB)
    rms = [np.sqrt(np.mean(seg[1000:-1000] ** 2)) for seg in np.array_split(x, steps)]
    levels = 20 * np.log10(np.asarray(rms) / rms[-1])
    np.testing.assert_allclose(levels, P.SINE_STEP_LEVELS_DB, atol=0.05)
    spectrum = np.abs(np.fft.rfft(x[-8000:]))
    assert np.argmax(spectrum) * SR / 8000 == pytest.approx(P.PROBE_HZ, abs=2.0)


def test_impulses_one_click_per_second():
    x = P.program_signal("impulses", SR, SR)
    active = np.flatnonzero(np.abs(x) > 1e-6)
    # One band-limited click (a CLICK_SAMPLES Hann pulse) 20 ms in, then silence.
    assert active.min() == int(0.02 * SR)
    assert active.max() - active.min() < P.CLICK_SAMPLES
    three = P.program_signal("impulses", SR, 3 * SR)
    onsets = np.flatnonzero(np.diff((np.abs(three) > 1e-6).astype(int)) == 1)
    assert len(onsets) >= 2 and np.all(np.diff(onsets) >= SR)


def test_mix_spans_a_wide_level_range():
    x = P.program_signal("mix", SR, SR)
    frames = x[: SR // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = level[level > -70]
    assert np.percentile(active, 95) - np.percentile(active, 5) > 25.0


def test_swell_rises_36_db():
    rng = np.random.default_rng(0)
    swell = P.swell_event(rng, SR, 8000)
    first, last = swell[400:1200], swell[-1200:-400]
    rise = 20 * np.log10(np.sqrt(np.mean(last**2)) / np.sqrt(np.mean(first**2)))
    assert rise == pytest.approx(36.0 * (8000 - 1600) / 8000, abs=1.5)
