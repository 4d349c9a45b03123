"""The MR-STFT distance and the reverb's decay curves against independent references.

The references are written from the definitions alone, in float64 numpy/scipy:
``scipy.signal.stft`` for the spectrograms, Butterworth band filters and a reversed
cumulative sum for the Schroeder curves, and the closed form of an exponentially
decaying noise's energy decay. The package's own pieces appear only as the thing
under test, so a wrong hop, window, padding, epsilon or average shows up here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal as sps

from ddsp_gym import dsp
from ddsp_gym import features as F
from ddsp_gym.features.decay import band_decay_curves_db, schroeder_edc_db
from ddsp_gym.plants import make_plant

SR = 16_000

# ---- the multi-resolution STFT distance --------------------------------------------------

# What the package documents for mrstft_distance: Hann (periodic) windows, hop n_fft / 4,
# frames centred by zero-padding n_fft / 2 on both ends, |X| = sqrt(|X|^2 + 1e-10),
# SC = ||Y - X||_F / ||Y||_F (each norm sqrt(sum + 1e-10), plus 1e-10 below the line),
# log term = mean |log(Y + 1e-5) - log(X + 1e-5)|, averaged over the FFT sizes.
POWER_EPS = 1e-10
LOG_OFFSET = 1e-5
# The package keeps its Hann window in float32 even for a float64 signal. Its rounding
# (3e-8 relative) moves the bins far below a tone's peak, whose logs the distance
# averages, by ~1e-6: the reference rounds scipy's window the same way, and then the
# float64 results agree to ~1e-12.
X64_RTOL = 1e-10


def reference_magnitude(x: np.ndarray, n_fft: int) -> np.ndarray:
    """|STFT| (n_frames, n_fft // 2 + 1) in float64 by scipy.signal.stft."""
    # Periodic (fftbins=True), as STFTs use; float32 values, as the package keeps.
    window = sps.get_window("hann", n_fft).astype(np.float32).astype(np.float64)
    _, _, z = sps.stft(
        np.asarray(x, np.float64),
        window=window,
        nperseg=n_fft,
        noverlap=n_fft - n_fft // 4,
        boundary="zeros",  # n_fft // 2 zeros on both ends: frame k centred on k * hop
        padded=False,
        detrend=False,
        return_onesided=True,
    )
    spectrum = z.T * window.sum()  # scipy scales by 1 / sum(window)
    return np.sqrt(np.abs(spectrum) ** 2 + POWER_EPS)


def reference_mrstft(x: np.ndarray, y: np.ndarray, fft_sizes: tuple[int, ...]) -> float:
    """Mean over FFT sizes of spectral convergence + log-magnitude L1, float64."""

    def norm(a: np.ndarray) -> float:
        return math.sqrt(float(np.sum(a * a)) + POWER_EPS)

    terms = []
    for n_fft in fft_sizes:
        mx, my = reference_magnitude(x, n_fft), reference_magnitude(y, n_fft)
        convergence = norm(my - mx) / (norm(my) + POWER_EPS)
        log_l1 = np.mean(np.abs(np.log(my + LOG_OFFSET) - np.log(mx + LOG_OFFSET)))
        terms.append(convergence + log_l1)
    return float(np.mean(terms))


def _signals(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A pair (sound, reference sound) of length n: random noises, or two tones."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    if kind == "random":
        return 0.3 * rng.standard_normal(n), 0.3 * rng.standard_normal(n)
    if kind == "tonal":  # harmonic tones a semitone apart, decaying differently
        x = sum(0.4 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 6)) * np.exp(-3 * t)
        y = sum(0.4 / k * np.sin(2 * np.pi * 233.08 * k * t) for k in range(1, 6)) * np.exp(-t)
        return x, y
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind, n, fft_sizes",
    [
        ("random", 4000, F.distances.DEFAULT_FFT_SIZES),
        ("tonal", 4000, F.distances.DEFAULT_FFT_SIZES),
        ("random", 3001, (2048, 96)),  # n not a multiple of any hop; hop not dividing 2048/4
        ("tonal", 1500, (64,)),
    ],
)
def test_mrstft_distance_equals_a_scipy_reference_in_float64(kind, n, fft_sizes):
    x, y = _signals(kind, n, seed=n)
    expected = reference_mrstft(x, y, fft_sizes)
    with jax.enable_x64(True):
        ours = float(F.mrstft_distance(jnp.asarray(x), jnp.asarray(y), fft_sizes))
    assert ours == pytest.approx(expected, rel=X64_RTOL)
    assert expected > 0.1  # a real difference, not two zeros agreeing


@pytest.mark.parametrize("kind, rtol", [("random", 1e-5), ("tonal", 5e-4)])
def test_mrstft_distance_in_float32_stays_near_the_float64_reference(kind, rtol):
    """The envs run in float32: the distance agents see is the reference's to 1e-5 for
    noise. For tones, bins 100 dB below the peak are float32 rounding noise of the FFT
    (~1e-7 of the peak, near the 1e-5 log offset), and the log term averages them: 5e-4
    (measured 1.4e-4)."""
    x, y = _signals(kind, 4000, seed=1)
    ours = float(F.mrstft_distance(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))
    expected = reference_mrstft(
        x.astype(np.float32), y.astype(np.float32), F.distances.DEFAULT_FFT_SIZES
    )
    assert ours == pytest.approx(expected, rel=rtol)


def test_mrstft_spectra_equal_scipys_stft_magnitudes():
    x, _ = _signals("tonal", 2500, seed=0)
    with jax.enable_x64(True):
        spectra = F.multi_resolution_spectra(jnp.asarray(x), (512, 128))
    for spectrum, n_fft in zip(spectra, (512, 128), strict=True):
        expected = reference_magnitude(x, n_fft)
        assert spectrum.magnitude.shape == expected.shape
        scale = expected.max()
        np.testing.assert_allclose(spectrum.magnitude, expected, rtol=X64_RTOL, atol=1e-12 * scale)
        norm = math.sqrt(float(np.sum(expected**2)) + POWER_EPS)
        assert float(spectrum.norm) == pytest.approx(norm, rel=X64_RTOL)


def test_mrstft_gradient_matches_finite_differences_of_the_reference():
    """d distance / d x along random directions: the package's autodiff gradient against
    central differences of the numpy reference (float64, step 1e-6)."""
    x, y = _signals("random", 1200, seed=5)
    sizes = (256, 64)
    with jax.enable_x64(True):
        grad = np.asarray(jax.grad(lambda a: F.mrstft_distance(a, jnp.asarray(y), sizes))(x))
    rng = np.random.default_rng(6)
    h = 1e-6
    for _ in range(4):
        v = rng.standard_normal(x.size)
        v /= np.linalg.norm(v)
        numeric = reference_mrstft(x + h * v, y, sizes) - reference_mrstft(x - h * v, y, sizes)
        numeric /= 2 * h
        assert float(grad @ v) == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert np.linalg.norm(grad) > 1e-3


# ---- energy decay curves ------------------------------------------------------------------

DECAY_60DB = 3.0 * math.log(10.0)  # amplitude exp(-6.91 t / RT60): -60 dB at t = RT60


def reference_edc_db(x: np.ndarray) -> np.ndarray:
    """Schroeder's backward integral of x^2 in dB re. its start, float64 numpy."""
    energy = np.asarray(x, np.float64) ** 2
    edc = np.cumsum(energy[::-1])[::-1]
    return 10.0 * np.log10(np.maximum(edc / edc[0], 1e-30))


def fitted_rt60(edc_db: np.ndarray, t: np.ndarray, top: float = -5.0, bottom: float = -35.0):
    """RT60 from a line fit to the decay curve between ``top`` and ``bottom`` dB re. its
    start (ISO 3382-1's T30 when -5..-35 dB, extrapolated to 60 dB)."""
    curve = edc_db - edc_db[0]
    span = (curve <= top) & (curve >= bottom)
    assert span.sum() >= 4, "too few points in the fitting range"
    slope = np.polyfit(t[span], curve[span], 1)[0]
    return -60.0 / slope


def decaying_noise(rt60: float, n: int, seed: int, start: int = 0) -> np.ndarray:
    """White noise under exp(-6.91 t / rt60), silent for ``start`` samples."""
    t = np.arange(n - start) / SR
    tail = np.random.default_rng(seed).standard_normal(n - start) * np.exp(-DECAY_60DB * t / rt60)
    return np.concatenate([np.zeros(start), tail])


def test_schroeder_edc_db_equals_numpy_backward_integration():
    x = decaying_noise(0.4, 8000, seed=0)
    ours = np.asarray(schroeder_edc_db(jnp.asarray(x, jnp.float32)))
    expected = reference_edc_db(x)
    audible = expected > -100.0  # above the float32 sum's resolution and the -120 dB floor
    np.testing.assert_allclose(ours[audible], expected[audible], atol=0.01)
    assert ours[0] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("rt60", [0.25, 0.6, 1.2])
def test_decay_of_exponential_noise_matches_its_closed_form(rt60):
    """For x = s * exp(-a n / sr) with a = 6.91 / RT60 and random signs s = +-1 (a white
    noise whose energy x^2 = r^n, r = exp(-2a / sr), is known exactly), the Schroeder
    curve is the geometric tail (r^n - r^N) / (1 - r^N). The package's curve follows it
    to 0.02 dB down to -60 dB, and a T30 fit returns the RT60 to 2 %."""
    n = int(SR * min(3.0, 1.5 * rt60 + 0.3))
    signs = np.random.default_rng(int(rt60 * 100)).choice([-1.0, 1.0], n)
    x = signs * np.exp(-DECAY_60DB * np.arange(n) / SR / rt60)
    r = np.exp(-2.0 * DECAY_60DB / rt60 / SR)
    closed = 10 * np.log10((r ** np.arange(n) - r**n) / (1.0 - r**n))
    ours = np.asarray(schroeder_edc_db(jnp.asarray(x, jnp.float32)))
    upper = closed > -60.0
    np.testing.assert_allclose(ours[upper], closed[upper], atol=0.02)
    assert fitted_rt60(ours, np.arange(n) / SR) == pytest.approx(rt60, rel=0.02)


@pytest.mark.parametrize("rt60", [0.25, 0.6, 1.2])
def test_t30_of_gaussian_exponential_noise_is_its_rt60(rt60):
    """A Gaussian noise under the same envelope fluctuates about it: T30 within 4 %."""
    n = int(SR * min(3.0, 1.5 * rt60 + 0.3))
    x = decaying_noise(rt60, n, seed=int(rt60 * 100))
    ours = np.asarray(schroeder_edc_db(jnp.asarray(x, jnp.float32)))
    assert fitted_rt60(ours, np.arange(n) / SR) == pytest.approx(rt60, rel=0.04)


def test_band_decay_curves_recover_the_rt60_of_exponential_noise_in_every_band():
    """White noise decays alike at every frequency: all four band curves give its RT60."""
    rt60 = 0.5
    x = decaying_noise(rt60, SR, seed=3, start=800)
    curves = np.asarray(band_decay_curves_db(jnp.asarray(x, jnp.float32), SR))
    frames_t = np.arange(curves.shape[1]) * 128 / SR
    measured = [fitted_rt60(c, frames_t) for c in curves]
    np.testing.assert_allclose(measured, rt60, rtol=0.05)


def test_band_decay_curves_start_at_half_the_signals_energy():
    """The level the curves carry: summed over bands (the crossover masks sum to 1), frame
    0 is the energy sum(x^2) / sr in dB, less 3.01 dB (a one-sided spectrum holds half of
    the power), for a sound clear of the signal's edges."""
    x = decaying_noise(0.5, SR, seed=4, start=800)
    curves = np.asarray(band_decay_curves_db(jnp.asarray(x, jnp.float32), SR))
    total_db = 10 * np.log10(np.sum(10.0 ** (curves[:, 0] / 10.0)))
    expected_db = 10 * np.log10(np.sum(x**2) / SR / 2)
    assert total_db == pytest.approx(expected_db, abs=0.05)


# Band-pass regions inside each of the reverb's four bands, clear of the half-octave
# crossovers at 0.5, 1.5 and 4 kHz, where only that band's noise is heard.
INTERIOR_BANDS_HZ = ((100.0, 330.0), (720.0, 1050.0), (2150.0, 2800.0), (5700.0, 7200.0))


def butterworth_band_edcs(ir: np.ndarray) -> list[np.ndarray]:
    """Schroeder curves (dB) of the IR through 4th-order Butterworth band-passes (causal)."""
    curves = []
    for low, high in INTERIOR_BANDS_HZ:
        sos = sps.butter(4, (low, high), btype="bandpass", fs=SR, output="sos")
        curves.append(reference_edc_db(sps.sosfilt(sos, ir)))
    return curves


def test_reverb_band_decays_match_a_butterworth_schroeder_reference():
    """The reverb's impulse response with damping: each band's RT60, read off a scipy
    band-filtered Schroeder curve, is the plant's documented rt60 (1 - 0.9 damping)^(b/3);
    the package's band curves (what ReverbSpace's task compares) give the same decay rates."""
    rt60, damping = 1.2, 0.8
    plant = make_plant("reverb", duration=1.5)
    controls = plant.controls(plant.knobs_from_physical(dict(rt60=rt60, damping=damping, mix=1)))
    ir = np.asarray(plant.impulse_response(controls), np.float64)
    truth = rt60 * (1.0 - 0.9 * damping) ** (np.arange(4) / 3)

    t = np.arange(ir.size) / SR
    reference = np.array([fitted_rt60(c, t) for c in butterworth_band_edcs(ir)])
    np.testing.assert_allclose(reference, truth, rtol=0.08)

    # The same IR, delayed clear of the STFT's zero-padded first frames.
    delayed = np.concatenate([np.zeros(800), ir])[: ir.size]
    curves = np.asarray(band_decay_curves_db(jnp.asarray(delayed, jnp.float32), SR))
    frames_t = np.arange(curves.shape[1]) * 128 / SR
    ours = np.array([fitted_rt60(c, frames_t) for c in curves])
    # The STFT's 32 ms frames and the crossovers' overlap (the top band hears some of the
    # slower band below it) bias the package's rates by up to ~9 % (four IR seeds).
    np.testing.assert_allclose(ours, truth, rtol=0.12)
    np.testing.assert_allclose(ours, reference, rtol=0.12)
    assert np.all(np.diff(ours) < 0)  # damping: every band decays faster than the one below
    np.testing.assert_allclose(dsp.band_rt60(rt60, damping, 4), truth, rtol=1e-6)
