"""DSP blocks against references: scipy.signal, closed forms, known spectra."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from ddsp_gym import dsp

SR = 16_000


def _noise(n: int = 2048, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)


@pytest.mark.parametrize(
    "design",
    [
        lambda: dsp.lowpass_coeffs(1200.0, 0.707, SR),
        lambda: dsp.highpass_coeffs(300.0, 2.0, SR),
        lambda: dsp.bandpass_coeffs(2000.0, 5.0, SR),
        lambda: dsp.peaking_coeffs(1000.0, 1.5, 9.0, SR),
    ],
    ids=["lowpass", "highpass", "bandpass", "peaking"],
)
def test_biquad_matches_scipy_lfilter(design):
    b, a = design()
    x = _noise()
    ours = np.asarray(dsp.biquad(jnp.asarray(x), b, a))
    reference = signal.lfilter(np.asarray(b, np.float64), np.asarray(a, np.float64), x)
    np.testing.assert_allclose(ours, reference, atol=2e-4)


@pytest.mark.parametrize("coefficient", [0.97, 1.0])
def test_pre_emphasis_matches_scipy_lfilter(coefficient):
    x = _noise()
    ours = np.asarray(dsp.pre_emphasis(jnp.asarray(x), coefficient))
    np.testing.assert_allclose(ours, signal.lfilter([1.0, -coefficient], [1.0], x), atol=1e-6)
    if coefficient == 1.0:  # lip radiation is the plain first difference
        np.testing.assert_array_equal(np.asarray(dsp.radiate(jnp.asarray(x))), ours)


def test_time_varying_biquad_equals_constant_when_coefficients_repeat():
    x = _noise(512)
    b, a = dsp.lowpass_coeffs(900.0, 3.0, SR)
    per_sample = dsp.lowpass_coeffs(jnp.full(512, 900.0), 3.0, SR)
    np.testing.assert_allclose(
        dsp.biquad(jnp.asarray(x), *per_sample), dsp.biquad(jnp.asarray(x), b, a), atol=1e-5
    )


def test_rbj_lowpass_frequency_response_matches_design():
    b, a = dsp.lowpass_coeffs(1000.0, 0.707, SR)
    w, h = signal.freqz(np.asarray(b), np.asarray(a), worN=[0.0, 1000.0, 6000.0], fs=SR)
    gains_db = 20 * np.log10(np.abs(h))
    assert gains_db[0] == pytest.approx(0.0, abs=0.01)  # unity at DC
    assert gains_db[1] == pytest.approx(-3.01, abs=0.05)  # -3 dB at cutoff for Q = 1/sqrt(2)
    assert gains_db[2] < -30.0  # 12 dB/octave roll-off


def test_peaking_gain_at_centre_frequency():
    b, a = dsp.peaking_coeffs(2000.0, 2.0, -6.0, SR)
    _, h = signal.freqz(np.asarray(b), np.asarray(a), worN=[2000.0], fs=SR)
    assert 20 * np.log10(np.abs(h[0])) == pytest.approx(-6.0, abs=0.01)


@pytest.mark.parametrize("design", [dsp.lowpass_coeffs, dsp.highpass_coeffs, dsp.bandpass_coeffs])
def test_filters_stay_stable_for_any_knob_value(design):
    # Far beyond any knob range, including zero, negative and above-Nyquist values.
    freqs = jnp.array([-100.0, 0.0, 1.0, 50.0, 7999.0, 8000.0, 20000.0, 1e9])
    qs = jnp.array([-1.0, 0.0, 1e-3, 0.7, 30.0, 1e6])
    f, q = jnp.meshgrid(freqs, qs)
    _, a = design(f.ravel(), q.ravel(), SR)
    assert float(jnp.max(dsp.pole_radius(a))) < 1.0
    # And the filtered output stays finite (and bounded) for a long input.
    for i in range(a.shape[0]):
        b_i, a_i = design(f.ravel()[i], q.ravel()[i], SR)
        y = dsp.biquad(jnp.asarray(_noise(4096)), b_i, a_i)
        assert bool(jnp.all(jnp.isfinite(y)))


def test_pole_radius_matches_numpy_roots():
    _, a = dsp.lowpass_coeffs(3000.0, 8.0, SR)
    expected = np.max(np.abs(np.roots(np.asarray(a, np.float64))))
    assert float(dsp.pole_radius(a)) == pytest.approx(expected, rel=1e-4)


def test_phase_accumulator_and_sine_frequency():
    n = 16_000
    phase = dsp.phase_accumulator(441.0, SR, n)
    assert float(phase[0]) == 0.0
    assert bool(jnp.all((phase >= 0) & (phase < 1)))
    spectrum = np.abs(np.fft.rfft(np.asarray(dsp.sine(phase))))
    assert np.argmax(spectrum) == 441  # 1 s at 16 kHz: bin k is k Hz


@pytest.mark.parametrize("freq", [110.0, 1760.0, 4321.0])
def test_phase_stays_accurate_over_a_long_note(freq):
    # 3 s. Rounding the increment to float32 is a ~6e-8 relative frequency error
    # (1e-4 cents), worth up to ~1e-3 cycles here; a plain float32 cumsum drifts by 0.5.
    n = 48_000
    reference = (np.arange(n) * np.float64(freq) / SR) % 1.0

    def error(phase):
        return np.max(np.abs((np.asarray(phase, np.float64) - reference + 0.5) % 1.0 - 0.5))

    assert error(dsp.phase_accumulator(freq, SR, n)) < 2e-3  # constant pitch
    assert error(dsp.phase_accumulator(jnp.full(n, freq), SR, n)) < 2e-3  # per-sample pitch


def test_per_sample_frequency_integrates_a_glide():
    n = 16_000
    freq = jnp.linspace(100.0, 300.0, n)
    phase = np.asarray(dsp.phase_accumulator(freq, SR, n), np.float64)
    cycles = np.cumsum(np.asarray(freq, np.float64) / SR) - np.asarray(freq, np.float64) / SR
    np.testing.assert_allclose(np.cos(2 * np.pi * phase), np.cos(2 * np.pi * cycles), atol=1e-3)


def _alias_energy(wave: np.ndarray, f0: float) -> float:
    """Fraction of energy not on harmonics of f0 (aliases fall between them)."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / SR)
    harmonic = np.abs(((freqs / f0 + 0.5) % 1.0) - 0.5) * f0 < 8.0
    return spectrum[~harmonic].sum() / spectrum.sum()


def test_polyblep_saw_aliases_less_than_naive_saw():
    f0, n = 1234.5, 1 << 14
    phase = dsp.phase_accumulator(f0, SR, n)
    inc = dsp.phase_increment(f0, SR, n)
    blep = _alias_energy(np.asarray(dsp.saw_polyblep(phase, inc)), f0)
    naive = _alias_energy(np.asarray(dsp.saw_naive(phase)), f0)
    assert blep < 0.5 * naive


def test_polyblep_square_aliases_less_than_naive_square():
    f0, n = 987.0, 1 << 14
    phase = dsp.phase_accumulator(f0, SR, n)
    inc = dsp.phase_increment(f0, SR, n)
    naive = np.where(np.asarray(phase) < 0.5, 1.0, -1.0)
    blep = _alias_energy(np.asarray(dsp.square_polyblep(phase, inc)), f0)
    assert blep < 0.5 * _alias_energy(naive, f0)


@pytest.mark.parametrize("n", [1, 4001, 16000])
def test_white_noise_is_uniform_white_and_reproducible(n):
    key = jax.random.PRNGKey(7)
    noise = np.asarray(dsp.white_noise(key, n), np.float64)
    assert noise.shape == (n,) and noise.dtype == np.float64
    np.testing.assert_array_equal(noise, np.asarray(dsp.white_noise(key, n)))
    assert np.all(np.abs(noise) < 1.0)
    if n < 4000:
        return
    assert not np.array_equal(noise, np.asarray(dsp.white_noise(jax.random.PRNGKey(8), n)))
    # Uniform on (-1, 1): mean 0, variance 1/3, flat histogram; white: no lag correlation.
    sem = np.sqrt(1 / 3 / n)
    assert abs(noise.mean()) < 4 * sem
    assert abs(noise.var() - 1 / 3) < 0.02
    counts, _ = np.histogram(noise, bins=8, range=(-1, 1))
    assert counts.min() > 0.8 * n / 8 and counts.max() < 1.2 * n / 8
    for lag in (1, 2, n // 2):
        assert abs(np.corrcoef(noise[:-lag], noise[lag:])[0, 1]) < 4 / np.sqrt(n - lag)


def test_adsr_segments_match_knobs():
    sr, n = 1000, 1000  # 1 ms per sample makes the arithmetic exact
    env = np.asarray(dsp.adsr(n, sr, 0.1, 0.2, 0.5, 0.3, 0.6))
    assert env[0] == 0.0
    assert env[50] == pytest.approx(0.5, abs=1e-5)  # halfway up the attack
    assert env[100] == pytest.approx(1.0, abs=1e-5)  # peak at the end of the attack
    assert env[200] == pytest.approx(0.75, abs=1e-5)  # halfway down the decay
    assert np.allclose(env[300:600], 0.5)  # sustain level while the gate is open
    assert env[750] == pytest.approx(0.25, abs=1e-5)  # halfway through the release
    assert np.allclose(env[900:], 0.0)  # silent after the release
    assert env.max() <= 1.0 and env.min() >= 0.0


def test_adsr_release_starts_from_current_level_when_gate_closes_early():
    sr = 1000
    env = np.asarray(dsp.adsr(500, sr, 0.2, 0.1, 0.5, 0.1, 0.1))  # gate closes mid-attack
    assert env[100] == pytest.approx(0.5, abs=1e-5)
    assert env[150] == pytest.approx(0.25, abs=1e-5)
    assert np.allclose(env[200:], 0.0)


def test_adsr_is_differentiable_in_every_knob():
    def energy(knobs):
        return jnp.sum(dsp.adsr(2000, SR, knobs[0], knobs[1], knobs[2], knobs[3], 0.06) ** 2)

    grad = jax.grad(energy)(jnp.array([0.01, 0.02, 0.5, 0.03]))
    assert bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.all(grad != 0))


def test_unit_conversions():
    assert float(dsp.midi_to_hz(69)) == pytest.approx(440.0)
    assert float(dsp.hz_to_midi(dsp.midi_to_hz(60.5))) == pytest.approx(60.5, abs=1e-4)
    assert float(dsp.cents(880.0, 440.0)) == pytest.approx(1200.0)
    assert float(dsp.db_to_amp(-6.0206)) == pytest.approx(0.5, rel=1e-4)
    assert float(dsp.amp_to_db(0.0)) == -120.0  # floored, finite
    x = jnp.ones(4)
    np.testing.assert_allclose(dsp.gain(x, 20.0), 10.0 * x, rtol=1e-6)
    np.testing.assert_allclose(dsp.mix(jnp.stack([x, 2 * x]), jnp.array([0.5, 0.25])), x)


@pytest.mark.parametrize("n,hop", [(100, 1), (100, 16), (8000, 16), (33, 32)])
def test_upsample_linear_interpolates_between_control_points(n, hop):
    t = dsp.control_times(n, SR, hop)
    assert t.shape == (-(-n // hop) + 1,) and float(t[-1]) * SR >= n - 1
    values = jnp.asarray(np.random.default_rng(0).normal(size=t.shape[0]).astype(np.float32))
    upsampled = np.asarray(dsp.upsample_linear(values, hop, n))
    expected = np.interp(np.arange(n), np.arange(t.shape[0]) * hop, np.asarray(values))
    np.testing.assert_allclose(upsampled, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(upsampled[::hop], np.asarray(values)[: len(upsampled[::hop])])


def test_end_fade_is_a_raised_cosine_over_the_last_release():
    sr, n, release = 1000, 1000, 0.1
    fade = np.asarray(dsp.end_fade(n, sr, release))
    t = np.arange(n) / sr
    to_end = np.clip((n / sr - t) / release, 0.0, 1.0)
    np.testing.assert_allclose(fade, 0.5 - 0.5 * np.cos(np.pi * to_end), atol=1e-5)
    assert np.all(fade[: n - 100] == 1.0) and fade[-1] < 1e-3
    assert np.all(np.diff(fade[n - 100 :]) <= 0)
