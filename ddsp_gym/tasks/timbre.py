"""The Level-2 timbre-matching tasks (seed demos: FM Operator Learner, Subtractive
Synth Learner, Formant Matching)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym import features as F
from ddsp_gym.features.spectral import EPS
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.tasks.base import AbstractTask, RewardSettings
from ddsp_gym.tasks.vowels import vowel_table


@dataclass(frozen=True)
class FMBellMatch(AbstractTask):
    """Log-mel distance plus spectral-flatness distance, both in dB.

    Features: from one power spectrogram (``n_fft`` = 512, hop 128, i.e. 32 ms
    frames every 8 ms at 16 kHz), a ``n_mels``-band log-mel spectrogram from
    ``fmin_hz`` up and each frame's spectral flatness above ``fmin_hz``, both in
    dB over a floor of ``floor_power`` (31 dB below the peak bin of a sine at
    the FM plant's level), so the quiet tail of a decayed note does not count
    with the same weight as the strike.
    Distance: mean |log-mel difference| + ``flatness_weight`` * mean
    |flatness difference| (each rounded off within 0.5 dB, for a gradient at 0).
    The log-mel term matches the partials' positions and their decay; the
    flatness term is a compact measure of how far the sidebands have spread,
    which the modulation index and its decay control.

    Smoothness, why these settings: the reward must be smooth on the scale of
    a 1e-3 knob move. Narrow bands (a few FFT bins) at low frequencies, a low
    floor (a band ruled by sidelobe leakage dips at every window null the
    partials sweep past) and the bins below ``fmin_hz`` (where sidebands folded
    around 0 Hz meet their own images) each made the distance ripple faster
    than that; 32 bands from 80 Hz, a 31 dB range and short frames do not. The
    largest source of ripple, slowly beating near-coincident sidebands, is kept
    out by the plant's ratio range (see :class:`ddsp_gym.plants.FM2`).
    """

    settings: ClassVar[RewardSettings] = RewardSettings(6.11, 0.7)
    distance_unit: str = "dB"
    n_fft: int = 512
    n_mels: int = 32
    fmin_hz: float = 80.0
    floor_power: float = 3.0
    flatness_weight: float = 1.0

    def features(self, audio: Array, sample_rate: int) -> dict[str, Array]:
        power = F.power_spectrogram(audio, self.n_fft)
        mel = power @ F.mel_filterbank(sample_rate, self.n_fft, self.n_mels, self.fmin_hz)
        lowest = int(np.ceil(self.fmin_hz * self.n_fft / sample_rate))
        return {
            "log_mel": 10.0 * jnp.log10(mel + self.floor_power),
            "flatness_db": 10.0
            * jnp.log10(F.spectral_flatness(power[:, lowest:] + self.floor_power)),
        }

    def distance(self, features: dict[str, Array], target_features: dict[str, Array]) -> Array:
        mel = F.smooth_abs(features["log_mel"] - target_features["log_mel"], 0.5)
        flat = F.smooth_abs(features["flatness_db"] - target_features["flatness_db"], 0.5)
        return jnp.mean(mel) + self.flatness_weight * jnp.mean(flat)


def _floored(spectrum: F.Spectrum, floor: float) -> F.Spectrum:
    """A spectrum with ``floor`` added to its magnitudes (and its log recomputed)."""
    return F.Spectrum.of(spectrum.magnitude + floor)


@dataclass(frozen=True)
class SubtractiveMatch(AbstractTask):
    """Spectral-centroid trajectory distance (octaves) plus MR-STFT distance.

    Features: multi-resolution magnitude spectrograms (``fft_sizes``) and,
    from the 512-point one (hop 8 ms at 16 kHz), each frame's spectral centroid
    in octaves and its energy. Distance: the target-energy-weighted mean
    |centroid difference| in octaves (so the filter sweep is followed where the
    note sounds, not in silent frames whose centroid is meaningless) times
    ``centroid_weight``, plus the MR-STFT distance (spectral convergence + log
    magnitude L1), which pins the rest of the timbre (resonance, waveform).

    The MR-STFT magnitudes get ``magnitude_floor`` added (60-80 dB below a
    full-level partial, depending on the FFT size): without it the log-magnitude
    term counts bins 100+ dB down, where the swept filter's float32 round-off
    is as large as the change a 1e-3 knob move makes, and the reward's
    gradient would not match its finite differences.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(2.65, 0.1)
    distance_unit: str = "oct + MR-STFT"
    fft_sizes: tuple[int, ...] = (1024, 512, 256, 128)
    centroid_fft: int = 512
    centroid_weight: float = 1.0
    magnitude_floor: float = 1e-2

    def features(self, audio: Array, sample_rate: int) -> dict:
        raw = F.multi_resolution_spectra(audio, self.fft_sizes)
        spectra = tuple(_floored(spectrum, self.magnitude_floor) for spectrum in raw)
        if self.centroid_fft in self.fft_sizes:
            mag = raw[self.fft_sizes.index(self.centroid_fft)].magnitude
        else:
            mag = F.magnitude_spectrogram(audio, self.centroid_fft)
        centroid = F.spectral_centroid(mag, F.fft_frequencies(sample_rate, self.centroid_fft))
        # 20 Hz offset: a silent frame's centroid (0 Hz) stays a finite log.
        return {
            "spectra": spectra,
            "centroid_oct": jnp.log2((centroid + 20.0) / 1000.0),
            "energy": jnp.sum(mag * mag, axis=-1),
        }

    def distance(self, features: dict, target_features: dict) -> Array:
        weight = target_features["energy"] / (jnp.sum(target_features["energy"]) + EPS)
        gap = F.smooth_abs(features["centroid_oct"] - target_features["centroid_oct"], 0.01)
        trajectory = jnp.sum(weight * gap)
        spectral = F.mrstft_distance_from_spectra(features["spectra"], target_features["spectra"])
        return self.centroid_weight * trajectory + spectral


@functools.lru_cache(maxsize=16)
def _envelope_matrices(
    sample_rate: int, n_fft: int, grid_hz: tuple[float, ...], sigma_hz: float, contrast_oct: float
) -> tuple[F.BandedBlocks, np.ndarray]:
    """Static matrices of :class:`FormantMatch`.

    Returns (smooth, local_mean): ``smooth`` (n_fft // 2 + 1, n_grid) Gaussian
    kernels of width ``sigma_hz`` mapping a power spectrum onto the grid, as
    :func:`~ddsp_gym.features.banded_blocks` for :func:`~ddsp_gym.features.banded_matmul`;
    ``local_mean`` (n_grid, n_grid) Gaussian averaging over ``contrast_oct``
    octaves along the grid, columns summing to 1.

    Each Gaussian is kept out to 7.4 sigma (weights above 1e-12 of its peak, ~520 Hz
    at 70 Hz), in blocks of 64 grid points: the envelope moves by < 1e-6 relative
    (float32 round-off) and the product reads a fifth of the dense matrix. Blocks of
    64 suit XLA:CPU's batched dot better than smaller or larger ones.
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)[:, None]
    grid = np.asarray(grid_hz)
    smooth = np.exp(-0.5 * ((freqs - grid[None, :]) / sigma_hz) ** 2).astype(np.float32)
    octaves = np.log2(grid)
    # Gaussian in octaves; the 1 / f factor weights each grid point by the octaves it
    # covers, so the denser (in octaves) high end of a linear grid does not dominate.
    local = np.exp(-0.5 * ((octaves[:, None] - octaves[None, :]) / contrast_oct) ** 2)
    local = local / grid[:, None]
    local_mean = (local / local.sum(0, keepdims=True)).astype(np.float32)
    return F.banded_blocks(smooth, block=64, rel_floor=1e-12), local_mean


def _log_sigmoid(x: Array) -> Array:
    return -jnp.logaddexp(0.0, -x)


@dataclass(frozen=True)
class FormantMatch(AbstractTask):
    """Distance between formant (spectral peak) positions in cents, plus an envelope term.

    Spectral envelope: the long-term power spectrum of the pre-emphasised sound
    (+6 dB/octave, as before LPC formant analysis) smoothed by Gaussian kernels
    (``sigma_hz`` = 70 Hz: wide enough that a 125 Hz voice's harmonic comb
    leaves almost no ripple) onto a grid every ``grid_step_hz``, in dB re the
    total power (level does not matter), floored at ``floor_db``. Local contrast
    C(f) = E(f) - (E averaged over about ``contrast_oct`` octaves) removes the
    spectral tilt, so a weak F3 counts as a peak as much as a strong F1.

    Differentiable peak positions: a hard argmax would make the reward
    piecewise constant in the knobs, and fixed formant bands do not work
    either (F1 and F2 of /ɔ/, F2 and F3 of /ɝ/ lie in each other's ranges). But
    only the *candidate's* peaks need a gradient: the target is a constant.
    So the target's ``n_peaks`` most prominent local maxima of C are picked
    hard (stop_gradient) and each gets a window, its cell between the
    neighbouring peaks (midpoints in octaves, at most ``window_oct`` octaves
    either side, logistic edges ``window_edge_oct`` wide). A sound's peak
    position in a window is the soft-argmax sum_f log2(f) softmax(C(f) /
    ``temperature_db`` + log window(f)): a weighted mean of the frequencies
    within a few dB of the window's top, smooth in the spectrum and hence in
    the knobs. The candidate's and the target's soft-argmax in the *target's*
    windows are compared, so the estimator's bias (smoothing pulls close peaks
    together) cancels and the distance is exactly 0 at the target.

    Distance = mean over peaks of smooth|cents| (rounded off within
    ``peak_round_cents``, so the minimum is a smooth bowl) + ``envelope_weight``
    (cents per dB) * weighted mean |E - E*| (dB), the weights being Gaussian
    bumps (``bump_oct`` wide) at the target's peaks on a 20 % uniform floor.
    The envelope term carries the bandwidths, which peak positions do not pin,
    and gives a gradient where a candidate's formant lies outside the window it
    should be in.

    Targets: with ``targets="vowels"`` (default), each episode draws one of
    Peterson & Barney's ten adult male vowels (tasks/vowels.py) with rule-of-
    thumb bandwidths, for the ``formant`` plant (knobs f1..f3, b1..b3); with
    "uniform", uniform knobs of any plant.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(580.0, 15.0)
    distance_unit: str = "cents"
    grid_min_hz: float = 180.0
    grid_max_hz: float = 4000.0
    grid_step_hz: float = 10.0
    pre_emphasis: float = 0.97
    sigma_hz: float = 70.0
    contrast_oct: float = 0.33
    floor_db: float = -60.0
    n_peaks: int = 3
    window_oct: float = 0.5
    temperature_db: float = 2.0
    bump_oct: float = 0.15
    window_edge_oct: float = 0.05
    envelope_round_db: float = 0.5
    peak_round_cents: float = 20.0
    envelope_weight: float = 30.0
    targets: Literal["vowels", "uniform"] = "vowels"

    def __post_init__(self) -> None:
        if self.targets not in ("vowels", "uniform"):
            raise ValueError(f"targets must be 'vowels' or 'uniform', not {self.targets!r}")

    def sample_target_knobs(
        self, key: Array, plant: AbstractPlant, render_key: Array, success_threshold: Array
    ) -> Array:
        if self.targets == "uniform":
            return super().sample_target_knobs(key, plant, render_key, success_threshold)
        table = jnp.asarray(vowel_table())
        row = table[jax.random.randint(key, (), 0, table.shape[0])]
        names = ("f1", "f2", "f3", "b1", "b2", "b3")
        return plant.knobs_from_physical(dict(zip(names, row, strict=True)))

    def grid(self) -> np.ndarray:
        """Envelope grid frequencies in Hz, (n_grid,), every ``grid_step_hz``.

        Linear in Hz so that every formant peak (at least ``sigma_hz`` wide after
        smoothing) spans several grid points: on a log grid, high peaks fell
        between two points and the soft-argmax moved in steps.
        """
        return np.arange(self.grid_min_hz, self.grid_max_hz + 0.5, self.grid_step_hz).astype(
            np.float32
        )

    def envelope_db(self, audio: Array, sample_rate: int) -> tuple[Array, Array]:
        """(E, C): envelope in dB re total power and its local contrast, each (n_grid,)."""
        # Pre-emphasis (+6 dB/octave), as before LPC formant analysis: it lifts the
        # weak upper formants out of the float32 round-off of the FFT.
        emphasised = dsp.pre_emphasis(audio, self.pre_emphasis)
        power, _ = F.long_term_power_spectrum(emphasised)
        n_fft = 2 * (power.shape[0] - 1)
        smooth, local_mean = _envelope_matrices(
            sample_rate, n_fft, tuple(self.grid().tolist()), self.sigma_hz, self.contrast_oct
        )
        envelope = F.banded_matmul(power, smooth)
        envelope = envelope / (jnp.sum(envelope) + EPS)
        e_db = 10.0 * jnp.log10(envelope + 10.0 ** (self.floor_db / 10.0))
        return e_db, e_db - e_db @ local_mean

    def peak_windows(self, contrast: Array) -> tuple[Array, Array]:
        """Hard-picked peaks of ``contrast`` -> (log windows (n_peaks, G), peak octaves (n_peaks,)).

        Picks the ``n_peaks`` local maxima with the largest contrast (ties and
        missing maxima fall back to the largest remaining values), in frequency
        order. No gradient flows through the choice.
        """
        c = jax.lax.stop_gradient(contrast)
        is_max = jnp.concatenate(
            [jnp.zeros(1, bool), (c[1:-1] > c[:-2]) & (c[1:-1] >= c[2:]), jnp.zeros(1, bool)]
        )
        score = jnp.where(is_max, c, c - 1e3)
        _, idx = jax.lax.top_k(score, self.n_peaks)
        octaves = jnp.asarray(np.log2(self.grid()))
        peaks = jnp.sort(octaves[idx])
        mids = 0.5 * (peaks[1:] + peaks[:-1])
        lower = jnp.maximum(
            jnp.concatenate([peaks[:1] - self.window_oct, mids]), peaks - self.window_oct
        )
        upper = jnp.minimum(
            jnp.concatenate([mids, peaks[-1:] + self.window_oct]), peaks + self.window_oct
        )
        edge = self.window_edge_oct
        grid = octaves[None, :]
        log_window = _log_sigmoid((grid - lower[:, None]) / edge) + _log_sigmoid(
            (upper[:, None] - grid) / edge
        )
        return log_window, peaks

    def soft_offsets(self, contrast: Array, log_windows: Array, centres: Array) -> Array:
        """Soft-argmax peak position in each window, in octaves from ``centres``, (n_peaks,).

        Offsets rather than absolute log-frequencies: a weighted mean of values
        near 11 (log2 of 2 kHz) loses float32 digits that a difference of two
        nearby positions then needs.
        """
        weights = jax.nn.softmax(contrast[None, :] / self.temperature_db + log_windows, axis=-1)
        octaves = jnp.asarray(np.log2(self.grid()))
        return jnp.sum(weights * (octaves[None, :] - centres[:, None]), axis=-1)

    def features(self, audio: Array, sample_rate: int) -> dict[str, Array]:
        e_db, contrast = self.envelope_db(audio, sample_rate)
        log_windows, peaks = self.peak_windows(contrast)
        return {
            "envelope_db": e_db,
            "contrast_db": contrast,
            "log_windows": log_windows,
            "peaks_oct": peaks,
            "soft_offsets_oct": self.soft_offsets(contrast, log_windows, peaks),
        }

    def formants_hz(self, features: dict[str, Array]) -> Array:
        """The soft peak positions of a sound's own features, in Hz, (n_peaks,)."""
        return jnp.exp2(features["peaks_oct"] + features["soft_offsets_oct"])

    def distance(self, features: dict[str, Array], target_features: dict[str, Array]) -> Array:
        offsets = self.soft_offsets(
            features["contrast_db"], target_features["log_windows"], target_features["peaks_oct"]
        )
        cents = 1200.0 * (offsets - target_features["soft_offsets_oct"])
        peaks = jnp.mean(F.smooth_abs(cents, self.peak_round_cents))
        octaves = jnp.asarray(np.log2(self.grid()))
        bumps = jnp.exp(
            -0.5 * ((octaves[None, :] - target_features["peaks_oct"][:, None]) / self.bump_oct) ** 2
        ).sum(0)
        weight = 0.8 * bumps / (jnp.sum(bumps) + EPS) + 0.2 / octaves.shape[0]
        gap = F.smooth_abs(
            features["envelope_db"] - target_features["envelope_db"], self.envelope_round_db
        )
        return peaks + self.envelope_weight * jnp.sum(weight * gap)
