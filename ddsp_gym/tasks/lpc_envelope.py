"""An all-pole (LPC) spectral-envelope match: formants compared with the source removed.

Why (issue 25): matching recordings made by other software (espeak-ng vowels) with the
``formant`` task failed: the plant's glottal source (its pitch, its spectral tilt) cannot
be the speaker's, and a distance that compares smoothed power spectra charges that
difference everywhere, so its minimum lay hundreds of cents from the file's formants.
An LPC envelope describes the vocal tract, not the source: it fits the spectrum's
overall shape with a few poles and passes between the harmonics, and what tilt is left
is removed here by a straight-line fit in octaves. Distances then compare where the
resonances are, which is what a formant synthesizer's knobs set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym import features as F
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


def autocorrelation(x: Array, max_lag: int) -> Array:
    """Autocorrelation of the Hann-windowed whole signal at lags 0..max_lag, (max_lag + 1,).

    ``x`` (n,). One long window (the long-term spectrum) rather than averaged short
    frames: a sustained vowel is stationary, and a long window gives LPC the
    spectrum's shape without frame-edge effects. Computed by FFT; the rfft length
    (at least n) makes the circular lags up to ``max_lag`` equal the linear ones as
    long as ``max_lag`` < n_fft - n + 1, which :func:`lpc_padded_length` guarantees.
    """
    n = x.shape[0]
    n_fft = lpc_padded_length(n, max_lag)
    spec = jnp.fft.rfft(x * F.hann_window(n), n_fft)
    power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    return jnp.fft.irfft(power, n_fft)[: max_lag + 1]


def lpc_padded_length(n: int, max_lag: int) -> int:
    """A power of two >= n + max_lag: no circular wrap reaches lags <= max_lag."""
    return 1 << max(n + max_lag - 1, 1).bit_length()


def levinson_durbin(r: Array) -> tuple[Array, Array]:
    """Predictor coefficients of order p = len(r) - 1 from autocorrelation ``r`` (p + 1,).

    Returns (a (p,), prediction error power ()): x[k] ~ sum_i a[i] x[k - 1 - i], i.e.
    A(z) = 1 - sum_i a[i] z^-(i+1); ``a`` solves the Yule-Walker Toeplitz system
    (``scipy.linalg.solve_toeplitz(r[:p], r[1:])``). The recursion is unrolled
    (p is static and small): plain, differentiable jnp, O(p^2).
    """
    p = r.shape[0] - 1
    a = jnp.zeros((0,), r.dtype)
    error = r[0]
    for m in range(p):
        # Reflection coefficient of order m + 1.
        k = (r[m + 1] - jnp.dot(a, r[m:0:-1])) / error
        a = jnp.concatenate([a - k * a[::-1], k[None]])
        error = error * (1.0 - k * k)
    return a, error


@functools.lru_cache(maxsize=16)
def _grid_matrices(
    sample_rate: int, order: int, grid_hz: tuple[float, ...], remove_tilt: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static matrices: (cos, sin) each (n_grid, order) of w_f * (i + 1), and the
    (n_grid, n_grid) projection that removes an envelope's mean (and, with
    ``remove_tilt``, its least-squares slope in octaves)."""
    grid = np.asarray(grid_hz, np.float64)
    phase = 2.0 * np.pi * grid[:, None] / sample_rate * np.arange(1, order + 1)[None, :]
    octaves = np.log2(grid)
    basis = (
        np.stack([np.ones_like(octaves), octaves - octaves.mean()], 1)
        if remove_tilt
        else np.ones((grid.size, 1))
    )
    projection = np.eye(grid.size) - basis @ np.linalg.pinv(basis)
    return (
        np.cos(phase).astype(np.float32),
        np.sin(phase).astype(np.float32),
        projection.astype(np.float32),
    )


def all_pole_db(a: Array, cos: Array, sin: Array) -> Array:
    """-10 log10 |A(e^jw)|^2 at the grid (dB, unit gain), (n_grid,).

    ``a`` (p,) predictor coefficients; ``cos``/``sin`` (n_grid, p) of w * (i + 1).
    Equals 20 log10 |freqz([1], [1, -a])| at those frequencies.
    """
    real = 1.0 - cos @ a
    imag = sin @ a
    return -10.0 * jnp.log10(real * real + imag * imag)


@dataclass(frozen=True)
class LPCEnvelopeMatch(AbstractTask):
    """Mean |dB difference| of LPC spectral envelopes, level and tilt removed.

    Features: the sound is pre-emphasised (``pre_emphasis``, +6 dB/octave, as before
    LPC formant analysis); the autocorrelation of the whole Hann-windowed sound, at
    lags up to the order p = 2 + sample_rate / 1000 (the usual rule), gets an optional
    Gaussian lag window (``lag_window_hz``: the power spectrum smoothed by a Gaussian
    of that width; 0 by default, as in the LPC analysis that measures a recording's
    formants: on the espeak-ng vowels a 60-100 Hz window moved the fitted F1 of the
    higher voices away from it) and a tiny white-noise correction (``noise_floor``:
    keeps the float32 recursion well-conditioned); Levinson-Durbin gives the
    all-pole model, whose log-magnitude is read on a log-frequency grid (``n_grid``
    points, ``fmin_hz`` to ``fmax_hz``). The grid stops at 3 kHz: the formant plant's
    F4 is fixed (3.5 kHz) and it has no F5, so a recording's envelope above 3 kHz is
    out of its reach, and there (grid to 4 kHz) the fit bent F2 and F3 to make up
    for it (6 of the 10 espeak-ng vowels within 10 % instead of 8). Its mean and its
    straight-line slope in octaves are removed (``remove_tilt``): the recording's
    level, the source's spectral tilt and the model's gain then do not count.

    Distance: weighted mean of smooth|E - E*| (dB, rounded within ``round_db``). The
    weights favour the target's peaks: exp((E* - max E*) / ``peak_db``) on a floor of
    ``floor_weight`` (as a share of the mean weight): formant regions are where the
    envelope is well-measured, valleys are where a different source (its zeros, its
    noise) moves the LPC fit most.

    Reward settings: ``distance_scale`` 13.3 dB is the mean distance between two
    uniformly random settings of the formant plant (256 pairs, seed 0);
    ``success_threshold`` 1.5 dB lies between what a 2 % and a 10 % shift of F2 costs
    (tests/test_formant_envelope.py).
    """

    settings: ClassVar[RewardSettings] = RewardSettings(13.3, 1.5)
    distance_unit: str = "dB"
    level_invariant: ClassVar[bool] = True  # the envelope's mean is removed
    fmin_hz: float = 200.0
    fmax_hz: float = 3000.0
    n_grid: int = 128
    pre_emphasis: float = 0.97
    order: int | None = None  # None: 2 + sample_rate // 1000
    lag_window_hz: float = 0.0
    noise_floor: float = 1e-5
    remove_tilt: bool = True
    peak_db: float = 6.0
    floor_weight: float = 0.25
    round_db: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 < self.fmin_hz < self.fmax_hz:
            raise ValueError(f"need 0 < fmin_hz < fmax_hz, got {self.fmin_hz}, {self.fmax_hz}")
        if self.n_grid < 3:
            raise ValueError(f"n_grid must be at least 3, got {self.n_grid}")
        if self.order is not None and self.order < 1:
            raise ValueError(f"order must be at least 1, got {self.order}")
        if self.lag_window_hz < 0.0 or self.noise_floor < 0.0:
            raise ValueError("lag_window_hz and noise_floor must be >= 0")

    def lpc_order(self, sample_rate: int) -> int:
        return self.order if self.order is not None else 2 + sample_rate // 1000

    def grid(self) -> np.ndarray:
        """Envelope grid frequencies in Hz, (n_grid,), log-spaced."""
        return np.geomspace(self.fmin_hz, self.fmax_hz, self.n_grid).astype(np.float32)

    def lpc(self, audio: Array, sample_rate: int) -> tuple[Array, Array]:
        """(predictor coefficients (p,), prediction error power) of ``audio`` (n,)."""
        if self.fmax_hz >= sample_rate / 2:
            raise ValueError(f"fmax_hz {self.fmax_hz} must be below Nyquist ({sample_rate / 2})")
        p = self.lpc_order(sample_rate)
        r = autocorrelation(dsp.pre_emphasis(audio, self.pre_emphasis), p)
        lags = np.arange(p + 1)
        lag_window = np.exp(-0.5 * (2.0 * np.pi * self.lag_window_hz * lags / sample_rate) ** 2)
        lag_window[0] += self.noise_floor
        # The small constant keeps a silent sound's r (all zero) from dividing 0 by 0.
        return levinson_durbin(r * lag_window.astype(np.float32) + jnp.float32(1e-12) * (lags == 0))

    def envelope_db(self, audio: Array, sample_rate: int) -> Array:
        """The LPC envelope in dB on :meth:`grid`, mean (and slope) removed, (n_grid,)."""
        a, _ = self.lpc(audio, sample_rate)
        cos, sin, projection = _grid_matrices(
            sample_rate, a.shape[0], tuple(self.grid().tolist()), self.remove_tilt
        )
        return projection @ all_pole_db(a, cos, sin)

    def features(self, audio: Array, sample_rate: int) -> Array:
        return self.envelope_db(audio, sample_rate)

    def distance(self, features: Array, target_features: Array) -> Array:
        peaks = jnp.exp((target_features - jnp.max(target_features)) / self.peak_db)
        weight = peaks / jnp.mean(peaks) + self.floor_weight
        gap = F.smooth_abs(features - target_features, self.round_db)
        return jnp.sum(weight * gap) / jnp.sum(weight)
