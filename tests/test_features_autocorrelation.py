"""Autocorrelation features vs direct numpy references."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.features.autocorrelation import (
    echo_heights,
    smoothed_autocorrelations,
    soft_argmax_lag,
)


def reference_acf(x: np.ndarray, max_lag: int, sigma: float) -> np.ndarray:
    """r(l) / r(0) by direct correlation, smoothed along lags by a sampled Gaussian FIR."""
    n = x.size
    full = np.correlate(x, x, "full")  # lags -(n-1) .. n-1, symmetric
    if sigma > 0:
        half = int(8 * sigma)
        taps = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        full = np.convolve(full, taps / taps.sum(), "same")
    r = full[n - 1 : n + max_lag]
    return r / r[0]


@pytest.mark.parametrize("sigma", [0.0, 8.0, 32.0, 128.0])
def test_smoothed_autocorrelation_matches_direct_correlation(sigma):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3000)
    x[1000:] += 0.6 * x[:2000]  # an echo 1000 samples later
    ours = smoothed_autocorrelations(jnp.asarray(x, jnp.float32), 2500, (sigma,))
    assert ours.shape == (1, 2501)
    np.testing.assert_allclose(np.asarray(ours[0]), reference_acf(x, 2500, sigma), atol=2e-4)


def test_each_width_curve_equals_its_own_single_width_call():
    """All widths share one inverse FFT call: each curve is the one-width result, bit for bit."""
    x = jnp.asarray(np.random.default_rng(1).standard_normal(4000), jnp.float32)
    sigmas = (0.0, 8.0, 32.0, 128.0)
    together = np.asarray(smoothed_autocorrelations(x, 3000, sigmas))
    for row, sigma in zip(together, sigmas, strict=True):
        alone = np.asarray(smoothed_autocorrelations(x, 3000, (sigma,)))[0]
        np.testing.assert_array_equal(row, alone)


def test_echo_spacing_and_heights_of_an_echo_train():
    """Soft argmax finds the echo spacing; heights fall off as the repeats' gain."""
    n, spacing, gain = 16000, 2400, 0.5
    x = np.zeros(n)
    for k in range(4):
        x[200 + k * spacing] = gain**k
    sigmas = (8.0, 128.0)
    fine, wide = smoothed_autocorrelations(jnp.asarray(x, jnp.float32), 15000, sigmas)
    lags = np.arange(fine.shape[0], dtype=np.float32)
    lag = float(soft_argmax_lag(fine[128:], lags[128:], 60.0))
    assert lag == pytest.approx(spacing, abs=1.0)
    heights = np.asarray(echo_heights(wide, lag, 3, width=32.0))
    # r(kT) / r(0) of impulses with amplitudes g^j is sum_j g^j g^(j+k) / sum_j g^2j. Both
    # r(0) and the peak at kT are smoothed by the std-128 Gaussian, which cancels; reading
    # under a unit-area Gaussian of std 32 lowers a peak by 128 / sqrt(128^2 + 32^2).
    energy = sum(gain ** (2 * j) for j in range(4))
    ratios = [sum(gain**j * gain ** (j + k) for j in range(4 - k)) / energy for k in (1, 2, 3)]
    expected = np.array(ratios) * 128.0 / np.hypot(128.0, 32.0)
    np.testing.assert_allclose(heights, expected, rtol=1e-3)
