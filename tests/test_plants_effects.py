"""Effect plants and their DSP blocks, each against a closed form or a scipy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal as sps

from ddsp_gym import dsp
from ddsp_gym.envs.gym_env import DDSPEnv
from ddsp_gym.features.decay import schroeder_edc_db
from ddsp_gym.plants import PLANTS, make_plant
from ddsp_gym.program import program_signal

SR = 16_000
EFFECTS = ("compressor", "delay", "reverb", "distortion", "guitar_amp")
KEY = jax.random.PRNGKey(0)


def sine(freq_hz: float, amp: float, n: int) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq_hz * np.arange(n) / SR)).astype(np.float32)


def render(plant, knobs: dict[str, float], audio_in=None) -> np.ndarray:
    unit = plant.knobs_from_physical(knobs)
    return np.asarray(plant.render(unit, KEY, None if audio_in is None else jnp.asarray(audio_in)))


# ---- registry, default program, finiteness -------------------------------------------


@pytest.mark.parametrize("name", EFFECTS)
def test_registered_effect_with_default_program(name):
    plant = make_plant(name)
    assert PLANTS[name] is type(plant) and plant.needs_input
    np.testing.assert_array_equal(
        plant.default_input(), program_signal(plant.program, SR, plant.n_samples, 0)
    )
    # No input: the plant processes its program, the same as when given it explicitly.
    u = jnp.full(plant.num_knobs, 0.4)
    np.testing.assert_allclose(
        plant.render(u, KEY), plant.render(u, KEY, jnp.asarray(plant.default_input())), atol=1e-6
    )


def test_unknown_program_is_refused():
    with pytest.raises(ValueError, match="unknown program"):
        make_plant("delay", program="violin")


@pytest.mark.parametrize("name", EFFECTS)
def test_finite_everywhere_in_range(name):
    plant = make_plant(name)
    render_fn = jax.jit(lambda u, x: plant.render(u, KEY, x))
    rng = np.random.default_rng(0)
    n = plant.n_samples
    inputs = [
        jnp.asarray(plant.default_input()),
        jnp.zeros(n),  # silence
        jnp.asarray(rng.uniform(-1, 1, n), jnp.float32),  # full-scale noise
    ]
    knob_sets = [np.zeros(plant.num_knobs), np.ones(plant.num_knobs)]
    knob_sets += [rng.uniform(size=plant.num_knobs) for _ in range(20)]
    for x in inputs:
        for u in knob_sets:
            y = np.asarray(render_fn(jnp.asarray(u, jnp.float32), x))
            assert y.shape == (n,) and np.all(np.isfinite(y)), (name, u)
            assert np.max(np.abs(y)) < 4.0


@pytest.mark.parametrize("name", EFFECTS)
def test_gradients_finite_at_extremes(name):
    plant = make_plant(name)
    x = jnp.asarray(plant.default_input())
    grad = jax.jit(jax.grad(lambda u: jnp.sum(plant.render(u, KEY, x) ** 2)))
    for u in (np.zeros(plant.num_knobs), np.ones(plant.num_knobs)):
        assert np.all(np.isfinite(np.asarray(grad(jnp.asarray(u, jnp.float32)))))


def test_env_feeds_the_default_program_and_input_overrides_it():
    env = DDSPEnv(plant="delay", task="echo")
    np.testing.assert_array_equal(env.input_audio, env.plant.default_input())
    assert env.params.input_audio is None  # the default program is a constant of the step
    custom = sine(440.0, 0.5, env.plant.n_samples)
    env = DDSPEnv(plant="delay", task="echo", input=custom)
    np.testing.assert_array_equal(env.input_audio, custom)
    np.testing.assert_array_equal(env.params.input_audio, custom)
    assert DDSPEnv(plant="sine", task="centroid").input_audio is None


# ---- compressor -----------------------------------------------------------------------


def textbook_gain_computer(x_db, threshold, ratio, knee):
    """Giannoulis, Massberg & Reiss (JAES 2012), eq. 4, written independently in numpy."""
    x_db = np.asarray(x_db, np.float64)
    y = np.empty_like(x_db)
    for i, x in enumerate(x_db):
        if 2 * (x - threshold) < -knee:
            y[i] = x
        elif 2 * abs(x - threshold) <= knee:
            y[i] = x + (1 / ratio - 1) * (x - threshold + knee / 2) ** 2 / (2 * knee)
        else:
            y[i] = threshold + (x - threshold) / ratio
    return y


@pytest.mark.parametrize("threshold, ratio, knee", [(-30, 4, 10), (-20, 10, 2), (-40, 2, 18)])
def test_gain_computer_matches_textbook(threshold, ratio, knee):
    x_db = np.linspace(-80, 0, 401)
    ours = np.asarray(dsp.gain_computer_db(jnp.asarray(x_db, jnp.float32), threshold, ratio, knee))
    np.testing.assert_allclose(
        ours, textbook_gain_computer(x_db, threshold, ratio, knee), atol=1e-3
    )


def test_hard_knee_is_the_limit_of_the_soft_one():
    x_db = jnp.linspace(-60.0, 0.0, 121)
    hard = np.asarray(dsp.gain_computer_db(x_db, -30.0, 4.0, 0.0))
    np.testing.assert_allclose(hard, np.where(x_db < -30, x_db, -30 + (x_db + 30) / 4), atol=1e-3)


def test_one_pole_smoothers_match_their_recursions():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 12, 3000).astype(np.float32)
    ka, kr = float(dsp.one_pole_step(0.002, SR)), float(dsp.one_pole_step(0.05, SR))
    y, ref = np.asarray(dsp.smooth_branching(jnp.asarray(x), ka, kr)), np.zeros_like(x)
    prev = 0.0
    for i, xi in enumerate(x):
        k = ka if xi > prev else kr
        prev = prev + k * (xi - prev)
        ref[i] = prev
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    m = np.asarray(dsp.mean_square(jnp.asarray(x), ka))
    np.testing.assert_allclose(
        m, sps.lfilter([ka], [1, -(1 - ka)], x.astype(np.float64) ** 2), rtol=1e-4
    )


def test_attack_and_release_time_constants():
    n = int(0.5 * SR)
    step = np.zeros(n, np.float32)
    step[: n // 2] = 10.0  # 10 dB of gain reduction asked for, then none
    ka, kr = dsp.one_pole_step(0.01, SR), dsp.one_pole_step(0.1, SR)
    y = np.asarray(dsp.smooth_branching(jnp.asarray(step), ka, kr))
    # 63% of the way after one time constant (Giannoulis sec. 3.1), rising and falling.
    assert y[int(0.01 * SR) - 1] == pytest.approx(10 * (1 - np.exp(-1)), rel=0.01)
    released = y[n // 2 - 1 + int(0.1 * SR)]
    assert released == pytest.approx(y[n // 2 - 1] * np.exp(-1), rel=0.01)


@pytest.mark.parametrize("level_db", [-60.0, -42.0, -38.0, -34.0, -25.0, -12.0])
def test_compressor_static_curve_on_steady_sines(level_db):
    """A steady sine's output RMS follows the textbook curve of its input RMS (+ make-up)."""
    plant = make_plant("compressor", duration=1.0)
    knobs = dict(threshold=-38.0, ratio=4.0, knee=8.0, attack=0.002, release=0.1, makeup=3.0)
    # The plant trims its input by input_trim_db before the detector; aim the sine so that
    # its RMS after the trim is level_db (a sine's RMS is its peak / sqrt(2)).
    peak = np.sqrt(2) * 10 ** ((level_db - plant.input_trim_db) / 20)
    x = sine(1000.0, peak, plant.n_samples)
    y = render(plant, knobs, x)
    tail = slice(plant.n_samples // 2, None)  # after the detector has settled
    in_db = 20 * np.log10(np.sqrt(np.mean(x[tail] ** 2))) + plant.input_trim_db
    out_db = 20 * np.log10(np.sqrt(np.mean(y[tail] ** 2)))
    expected = textbook_gain_computer([in_db], -38.0, 4.0, 8.0)[0] + 3.0
    assert out_db == pytest.approx(expected, abs=0.1)


# ---- delay ----------------------------------------------------------------------------


def impulse(n: int, at: int = 0) -> np.ndarray:
    x = np.zeros(n, np.float32)
    x[at] = 1.0
    return x


@pytest.mark.parametrize("feedback", [0.0, 0.5, 0.8])
def test_delay_impulse_response_integer_time(feedback):
    plant = make_plant("delay", duration=1.0)
    t_samples, mix = 1600, 0.6  # 100 ms
    y = render(plant, dict(time=t_samples / SR, feedback=feedback, mix=mix), impulse(SR))
    assert y[0] == pytest.approx(1 - mix, abs=1e-5)
    for k in range(1, 5):
        echo = y[k * t_samples - 12 : k * t_samples + 13]
        # Echo k: area mix * g^(k-1), centred on k * T (Gaussian fractional-delay taps).
        assert echo.sum() == pytest.approx(mix * feedback ** (k - 1), abs=1e-5)
        if feedback > 0 or k == 1:
            centroid = np.sum(np.arange(-12, 13) * echo) / echo.sum()
            assert centroid == pytest.approx(0.0, abs=1e-3)  # float32 knob round trip
    between = np.concatenate([y[20 : t_samples - 20], y[t_samples + 20 : 2 * t_samples - 20]])
    assert np.max(np.abs(between)) < 1e-6


@pytest.mark.parametrize("t_ms", [10.37, 123.456, 480.9])
def test_delay_fractional_time_lands_between_samples(t_ms):
    plant = make_plant("delay", duration=1.0)
    t_samples = t_ms * SR / 1000
    y = render(plant, dict(time=t_ms / 1000, feedback=0.5, mix=0.5), impulse(SR, at=100))
    for k in (1, 2):
        centre = 100 + k * t_samples
        idx = np.arange(int(centre) - 12, int(centre) + 13)
        echo = y[idx]
        assert np.sum(idx * echo) / echo.sum() == pytest.approx(centre, abs=2e-3)
        assert idx[np.argmax(echo)] == round(centre)  # the response peaks at the set time
        assert echo.sum() == pytest.approx(0.5 * 0.5 ** (k - 1), rel=1e-4)


def test_delay_wet_path_equals_a_feedback_comb():
    """Integer delay: the wet path is the comb y[t] = x[t - T] + g y[t - T] (scipy lfilter),
    low-passed by the Gaussian kernel, which at integer delays is a fixed symmetric FIR."""
    rng = np.random.default_rng(0)
    n, t_samples, g = 6000, 700, 0.7
    x = rng.standard_normal(n).astype(np.float32)
    wet = np.asarray(dsp.feedback_delay(jnp.asarray(x), float(t_samples), g, 1.0, 10))
    a = np.zeros(t_samples + 1)
    a[0], a[-1] = 1.0, -g
    comb = sps.lfilter(np.r_[np.zeros(t_samples), 1.0], a, x)
    kernel = np.asarray(dsp.fractional_delay_kernel(jnp.zeros(())))
    reference = np.convolve(comb, kernel)[11 : 11 + n]  # taps j = -11 .. 12
    # (The last taps of echoes running past the end are dropped, so stop 12 samples short.)
    np.testing.assert_allclose(wet[:-12], reference[:-12], atol=2e-4)


def test_fft_convolve_matches_numpy():
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal(1000), rng.standard_normal(333)
    np.testing.assert_allclose(
        dsp.fft_convolve(jnp.asarray(x), jnp.asarray(h)), np.convolve(x, h)[:1000], atol=1e-4
    )
    # A spectrum known in advance (a fixed input's) gives the same convolution.
    x32, h32 = jnp.asarray(x, jnp.float32), jnp.asarray(h, jnp.float32)
    spectrum = jnp.fft.rfft(x32, 2048)
    np.testing.assert_allclose(
        dsp.fft_convolve(x32, h32, spectrum), dsp.fft_convolve(x32, h32), rtol=0, atol=1e-6
    )
    with pytest.raises(ValueError, match="expected \\(1025,\\)"):
        dsp.fft_convolve(x32, h32, jnp.fft.rfft(x32, 1024))


def test_gaussian_smooth_matches_a_sampled_gaussian_fir():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000)
    sigma = 6.0
    taps = np.exp(-0.5 * (np.arange(-48, 49) / sigma) ** 2)
    reference = np.convolve(x, taps / taps.sum())[48 : 48 + 2000]
    np.testing.assert_allclose(dsp.gaussian_smooth(jnp.asarray(x), sigma), reference, atol=1e-4)


# ---- reverb ---------------------------------------------------------------------------


def decay_time(ir: np.ndarray) -> float:
    """RT60 from the Schroeder curve: slope of a line fit between -5 and -35 dB (T30 x 2)."""
    edc = np.asarray(schroeder_edc_db(jnp.asarray(ir)))
    t = np.arange(ir.size) / SR
    span = (edc <= -5) & (edc >= -35)
    slope = np.polyfit(t[span], edc[span], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.2, 0.6, 1.5])
def test_reverb_decays_60_db_in_rt60(rt60):
    plant = make_plant("reverb", duration=3.0)
    ir = render(plant, dict(rt60=rt60, damping=0.0, mix=1.0), impulse(plant.n_samples))
    assert decay_time(ir) == pytest.approx(rt60, rel=0.1)
    assert np.sum(ir**2) == pytest.approx(1.0, rel=1e-3)  # unit-energy wet path


def test_reverb_damping_shortens_the_treble_decay():
    plant = make_plant("reverb", duration=3.0)
    ir = render(plant, dict(rt60=1.2, damping=1.0, mix=1.0), impulse(plant.n_samples))
    # Analyse one band inside each of the reverb's four bands, clear of its crossovers
    # (0.5 octave wide around 0.5, 1.5 and 4 kHz), where only that band's noise decays.
    # Zero-padded: the masks are zero-phase filters, whose ringing before t = 0 must not
    # wrap onto the tail.
    size = 2 * ir.size
    edges = (100.0, 330.0, 720.0, 1050.0, 2150.0, 2800.0, 5700.0, 7200.0)
    masks = dsp.reverb.crossover_masks(np.fft.rfftfreq(size, 1 / SR), edges)[1::2]
    spectrum = np.fft.rfft(ir, size)
    bands = [np.fft.irfft(m * spectrum, size)[: ir.size] for m in masks]
    expected = np.asarray(dsp.band_rt60(1.2, 1.0, len(dsp.reverb.BAND_EDGES_HZ) + 1))
    measured = np.array([decay_time(b) for b in bands])
    np.testing.assert_allclose(measured, expected, rtol=0.1)
    assert measured[-1] < 0.2 * measured[0]


def test_crossover_masks_sum_to_one():
    freqs = np.linspace(0, 8000, 1001)
    masks = dsp.reverb.crossover_masks(freqs, dsp.reverb.BAND_EDGES_HZ)
    np.testing.assert_allclose(masks.sum(0), 1.0, atol=1e-12)
    assert np.all(masks >= -1e-12)


# ---- distortion and amp ---------------------------------------------------------------


def harmonic_levels(y: np.ndarray, f0: float, count: int) -> np.ndarray:
    """Levels in dB re. the fundamental of harmonics 1..count of a steady tone."""
    n = 8000  # 250 Hz: exactly 125 periods, every harmonic on a bin
    spectrum = np.abs(np.fft.rfft(y[-n:]))
    bins = (np.arange(1, count + 1) * f0 * n / SR).astype(int)
    return 20 * np.log10(spectrum[bins] / spectrum[bins[0]] + 1e-12)


def test_distortion_makes_odd_harmonics_that_grow_with_drive():
    plant = make_plant("distortion", duration=1.0)
    x = sine(250.0, 0.5, plant.n_samples)
    levels = [
        harmonic_levels(render(plant, dict(drive=d, tone=0.0, level=-6.0), x), 250.0, 6)
        for d in (6.0, 18.0, 30.0)
    ]
    third = [lv[2] for lv in levels]
    fifth = [lv[4] for lv in levels]
    assert third[0] < third[1] < third[2] and fifth[0] < fifth[1] < fifth[2]
    assert third[2] > -15.0  # heavy drive: a near-square wave, 3rd at about -9.5 dB
    for lv in levels:
        assert max(lv[1], lv[3], lv[5]) < -80.0  # symmetric shaper: no even harmonics


def test_tanh_drive_small_signal_gain():
    x = jnp.linspace(-1e-3, 1e-3, 11)
    np.testing.assert_allclose(dsp.tanh_drive(x, 20.0), 10 * x, rtol=1e-4)


def test_shelves_and_tilt_reach_their_gains():
    for coeffs, dc, nyquist in (
        (dsp.lowshelf_coeffs(300.0, 9.0, SR), 9.0, 0.0),
        (dsp.highshelf_coeffs(3000.0, -7.0, SR), 0.0, -7.0),
    ):
        b, a = (np.asarray(c, np.float64) for c in coeffs)
        _, h = sps.freqz(b, a, worN=[1e-3, SR / 2 - 1e-3], fs=SR)
        np.testing.assert_allclose(20 * np.log10(np.abs(h)), [dc, nyquist], atol=0.05)
        assert float(dsp.pole_radius(jnp.asarray(a))) < 1.0
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    tilted = np.asarray(dsp.tilt_eq(jnp.asarray(noise), 12.0, 800.0, SR))
    f, p_in = sps.welch(noise, SR, nperseg=1024)
    _, p_out = sps.welch(tilted, SR, nperseg=1024)
    gain = 10 * np.log10(p_out / p_in)
    assert gain[np.argmin(np.abs(f - 50))] == pytest.approx(-6.0, abs=0.5)
    assert gain[np.argmin(np.abs(f - 7000))] == pytest.approx(6.0, abs=0.5)


@pytest.mark.parametrize(
    "response, coeffs",
    [
        (lambda f: dsp.lowshelf_response(f, 200.0, 9.0, SR), dsp.lowshelf_coeffs(200.0, 9.0, SR)),
        (
            lambda f: dsp.peaking_response(f, 800.0, 0.7, -6.0, SR),
            dsp.peaking_coeffs(800.0, 0.7, -6.0, SR),
        ),
        (
            lambda f: dsp.highshelf_response(f, 3000.0, 12.0, SR),
            dsp.highshelf_coeffs(3000.0, 12.0, SR),
        ),
    ],
)
def test_fft_eq_equals_the_rbj_recursion(response, coeffs):
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    y = np.asarray(dsp.apply_response(jnp.asarray(x), response(dsp.eq_frequencies(8000, SR))))
    b, a = (np.asarray(c, np.float64) for c in coeffs)
    np.testing.assert_allclose(y, sps.lfilter(b, a, x), atol=1e-4 * np.max(np.abs(y)))


def test_guitar_amp_is_the_distortion_shaper_then_eq():
    plant = make_plant("guitar_amp")
    x = plant.default_input()
    flat = render(plant, dict(bass=0.0, mid=0.0, treble=0.0, drive=20.0, level=-18.0), x)
    expected = np.asarray(dsp.gain(dsp.tanh_drive(jnp.asarray(x), 20.0), -18.0))
    np.testing.assert_allclose(flat, expected, atol=1e-5)
    bright = render(plant, dict(bass=0.0, mid=0.0, treble=12.0, drive=20.0, level=-18.0), x)
    f, p_flat = sps.welch(flat, SR, nperseg=512)
    _, p_bright = sps.welch(bright, SR, nperseg=512)
    boost = 10 * np.log10(p_bright / p_flat)
    assert boost[np.argmin(np.abs(f - 7000))] == pytest.approx(12.0, abs=1.0)
    assert abs(boost[np.argmin(np.abs(f - 200))]) < 0.5
