"""Analysis before synthesis: what a recording says about itself, measured directly.

``ddsp-gym match`` analyses the target first (:func:`analyze`): where the sound starts
(leading silence), how loud it is, how long it sounds, and its fundamental frequency
(YIN, de Cheveigné & Kawahara 2002, JASA 111(4)). :func:`prepare_target` then fits the
recording to what the plant plays (onset at t = 0, the plant's length, the plant's
level where the plant has no level knob of its own), saying what it changed, so the
fit judges the sound rather than its silence or its recording level.

Host-side numpy: it runs once per file, not inside a jitted step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# A sound "sounds" where its short-time RMS is within this many dB of its loudest frame:
# 40 dB down is where a note's tail stops mattering to a spectral distance.
SOUNDING_DB = -40.0
# Short-time RMS frames for onset and duration (10 ms: finer than any attack we fit).
ENVELOPE_FRAME_S = 0.010
# Kept before the detected onset, so a soft attack's first rise is not cut off.
PREROLL_S = 0.002
# YIN: a frame is periodic when its cumulative-mean-normalised difference dips below
# this (the paper's 0.1-0.15); a file is pitched when most sounding frames are.
YIN_THRESHOLD = 0.15
PITCHED_FRACTION = 0.5
YIN_FMIN_HZ, YIN_FMAX_HZ = 40.0, 2000.0
# An echo this strong (its gain relative to the dry sound) is measured, not guessed:
# `match` holds a delay's time at it.
ECHO_HOLD_STRENGTH = 0.1
# Names of knobs that set a plant's output level: a plant with one fits level itself.
LEVEL_KNOBS = frozenset({"gain", "level", "makeup"})
# The first note ends where its level first falls this far below its peak so far: a
# gated note's release drops to silence or to its echo (sox's `echo 0.8 0.8 d 0.4`
# repeats it 6 dB down), while a held saw's level ripples by well under 1 dB.
NOTE_END_DROP_DB = 3.0
# The level envelope's window (centred; longer than a 55 Hz period) and hop.
NOTE_LEVEL_WINDOW_S = 0.020
NOTE_LEVEL_HOP_S = 0.001


@dataclass(frozen=True)
class RecordingAnalysis:
    """What :func:`analyze` measured (times in s, levels in dBFS, f0 in Hz)."""

    duration_s: float  # the whole file
    onset_s: float  # leading silence: where the sound first rises within SOUNDING_DB
    sounding_s: float  # from the onset to where it last is within SOUNDING_DB
    peak_dbfs: float
    rms_dbfs: float  # over the sounding part
    f0_hz: float | None  # YIN's (refined for a steady tone: refine_f0); None: not pitched
    periodic_fraction: float  # share of sounding frames YIN found periodic

    def lines(self) -> list[str]:
        """One line per measurement, for ``match``'s output."""
        pitch = (
            f"{self.f0_hz:.2f} Hz ({100 * self.periodic_fraction:.0f} % of frames periodic)"
            if self.f0_hz is not None
            else f"none (only {100 * self.periodic_fraction:.0f} % of frames periodic)"
        )
        return [
            f"length {self.duration_s:.3f} s, sound from {self.onset_s:.3f} s for "
            f"{self.sounding_s:.3f} s",
            f"level: peak {self.peak_dbfs:.1f} dBFS, RMS {self.rms_dbfs:.1f} dBFS",
            f"pitch: {pitch}",
        ]

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)


def _db(x: float | np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(x, 1e-12))


def frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS of consecutive, non-overlapping ``frame``-sample frames (the last one padded)."""
    n = -(-audio.size // frame) * frame
    padded = np.pad(np.asarray(audio, np.float64), (0, n - audio.size))
    return np.sqrt(np.mean(padded.reshape(-1, frame) ** 2, axis=1))


def sounding_span(audio: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """(first, end) samples of the part within :data:`SOUNDING_DB` of the loudest frame."""
    frame = max(1, round(ENVELOPE_FRAME_S * sample_rate))
    level = _db(frame_rms(audio, frame))
    loud = np.flatnonzero(level >= level.max() + SOUNDING_DB)
    first = int(loud[0]) * frame
    # Within the first loud frame, start where the samples first reach its level.
    block = np.abs(audio[first : first + frame])
    threshold = 10 ** ((level.max() + SOUNDING_DB) / 20.0)
    rise = np.flatnonzero(block >= threshold)
    first += int(rise[0]) if rise.size else 0
    end = min(audio.size, (int(loud[-1]) + 1) * frame)
    return first, end


def yin(
    audio: np.ndarray,
    sample_rate: int,
    fmin: float = YIN_FMIN_HZ,
    fmax: float = YIN_FMAX_HZ,
    frame_s: float = 0.064,
    hop_s: float = 0.016,
) -> tuple[np.ndarray, np.ndarray]:
    """YIN per frame: (f0 in Hz, nan where aperiodic; the dip's depth, 0 = periodic).

    Difference function by FFT, cumulative-mean normalisation, the first dip below
    :data:`YIN_THRESHOLD` (else the global minimum, reported aperiodic), parabolic
    interpolation of the lag on the difference function. Frames shorter than two
    periods of ``fmin`` cannot see it, so ``frame_s`` >= 2 / fmin.
    """
    w = int(round(frame_s * sample_rate)) // 2  # integration window
    lag_min = max(2, int(sample_rate / fmax))
    lag_max = min(w - 1, int(np.ceil(sample_rate / fmin)))
    hop = max(1, int(round(hop_s * sample_rate)))
    x = np.asarray(audio, np.float64)
    if x.size < 2 * w:
        x = np.pad(x, (0, 2 * w - x.size))
    starts = np.arange(0, x.size - 2 * w + 1, hop)
    f0 = np.full(starts.size, np.nan)
    depth = np.ones(starts.size)
    nfft = 1 << int(np.ceil(np.log2(3 * w)))
    for i, s in enumerate(starts):
        seg = x[s : s + 2 * w]
        # d(tau) = sum_{j<w} (x_j - x_{j+tau})^2 = e0 + e_tau - 2 r(tau)
        spec_full = np.fft.rfft(seg, nfft)
        spec_head = np.fft.rfft(seg[:w], nfft)
        r = np.fft.irfft(spec_full * np.conj(spec_head), nfft)[: w + 1]
        energy = np.concatenate([[0.0], np.cumsum(seg**2)])
        e0 = energy[w]
        e_tau = energy[np.arange(w + 1) + w] - energy[np.arange(w + 1)]
        d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
        cmnd = np.ones_like(d)
        running = np.cumsum(d[1:])
        cmnd[1:] = d[1:] * np.arange(1, w + 1) / np.maximum(running, 1e-20)
        window = cmnd[lag_min : lag_max + 1]
        below = np.flatnonzero(window < YIN_THRESHOLD)
        if below.size:
            tau = lag_min + int(below[0])
            while tau + 1 <= lag_max and cmnd[tau + 1] < cmnd[tau]:
                tau += 1  # slide down to the dip's bottom
        else:
            tau = lag_min + int(np.argmin(window))
        depth[i] = cmnd[tau]
        if below.size:
            # The lag is refined on the raw difference (as in the paper): the normalised
            # one is skewed by its running mean, by ~10 cents at 9-sample periods.
            a, b, c = d[tau - 1], d[tau], d[min(tau + 1, w)]
            curve = a - 2.0 * b + c
            shift = 0.5 * (a - c) / curve if curve > 0 else 0.0
            f0[i] = sample_rate / (tau + float(np.clip(shift, -1.0, 1.0)))
    return f0, depth


REFINE_MAX_FRAMES = 256


def refine_f0(
    audio: np.ndarray,
    sample_rate: int,
    f0: float,
    harmonics: int = 5,
    frame_s: float = 0.064,
    hop_s: float = 0.016,
) -> float:
    """A steady tone's f0, near YIN's ``f0``: the median over frames of the instantaneous
    frequency of its strongest partial (of the first ``harmonics``), divided by its number.

    YIN picks the period robustly (no octave errors) but a frame's lag is only as exact
    as a few samples allow: ~10 cents off at 1 kHz and 16 kHz sampling. Per Hann-windowed
    frame, the partial's frequency is the phase its DFT bin advances over a one-sample
    shift of the frame (exact for a steady sinusoid, with no bin-grid or window bias).
    Frame by frame rather than over one long spectrum: an echo or a second note of the
    same pitch comb-filters a long spectrum and moves its peaks (by 38 cents on a 110 Hz
    saw with a 250 ms echo), while only the few frames that straddle its start are off,
    and the median drops them.
    """
    x = np.asarray(audio, np.float64)
    size, hop = int(round(frame_s * sample_rate)), max(1, int(round(hop_s * sample_rate)))
    if x.size < size + 1:
        x = np.pad(x, (0, size + 1 - x.size))
    # A long recording is read at evenly spread frames (a median needs no more), so two
    # spectra per frame stay a few MB however long the file is.
    hop = max(hop, (x.size - size) // REFINE_MAX_FRAMES)
    starts = np.arange(0, x.size - size, hop)
    window = np.hanning(size)
    nfft = 4 << int(np.ceil(np.log2(size)))
    frames = np.fft.rfft(window * x[starts[:, None] + np.arange(size)], nfft)
    shifted = np.fft.rfft(window * x[starts[:, None] + 1 + np.arange(size)], nfft)
    bin_hz = sample_rate / nfft
    spectrum = np.abs(frames).sum(axis=0)

    def band(h: int) -> slice:
        return slice(int(h * f0 * 0.97 / bin_hz), int(np.ceil(h * f0 * 1.03 / bin_hz)) + 1)

    usable = [h for h in range(1, harmonics + 1) if band(h).stop < spectrum.size]
    if not usable:
        return float(f0)
    h = max(usable, key=lambda k: spectrum[band(k)].max())
    lo = band(h).start
    peak = lo + np.argmax(np.abs(frames[:, band(h)]), axis=1)
    rows = np.arange(starts.size)
    amplitude = np.abs(frames[rows, peak])
    # Frames 30 dB under the loudest (fades, silence between echoes) carry no pitch.
    loud = amplitude >= amplitude.max() * 10.0 ** (-30.0 / 20.0)
    advance = np.angle(shifted[rows, peak] * np.conj(frames[rows, peak]))[loud]
    return float(np.median(advance) * sample_rate / (2.0 * np.pi) / h)


# YIN's frame-wise f0 is "steady" when its interquartile range is within this (cents):
# then the spectrum refines it (a glide or vibrato keeps YIN's median).
STEADY_CENTS = 20.0


def analyze(audio: np.ndarray, sample_rate: int) -> RecordingAnalysis:
    """Measure a recording (mono float samples); see :class:`RecordingAnalysis`."""
    audio = np.asarray(audio, np.float64)
    if audio.ndim != 1 or audio.size == 0 or not np.all(np.isfinite(audio)):
        raise ValueError("analyze takes a non-empty 1-D array of finite samples")
    if np.max(np.abs(audio)) == 0.0:
        raise ValueError("the audio is silent: nothing to analyse")
    first, end = sounding_span(audio, sample_rate)
    sounding = audio[first:end]
    f0, depth = yin(sounding, sample_rate)
    periodic = np.isfinite(f0)
    fraction = float(periodic.mean()) if f0.size else 0.0
    pitched = fraction >= PITCHED_FRACTION
    f0_hz = None
    if pitched:
        frames = f0[periodic]
        f0_hz = float(np.median(frames))
        q1, q3 = np.percentile(frames, [25, 75])
        if 1200.0 * np.log2(q3 / q1) <= STEADY_CENTS:
            f0_hz = refine_f0(sounding, sample_rate, f0_hz)
    return RecordingAnalysis(
        duration_s=audio.size / sample_rate,
        onset_s=first / sample_rate,
        sounding_s=(end - first) / sample_rate,
        peak_dbfs=float(_db(np.max(np.abs(audio)))),
        rms_dbfs=float(_db(np.sqrt(np.mean(sounding**2)))),
        f0_hz=f0_hz,
        periodic_fraction=fraction,
    )


def prepare_target(
    audio: np.ndarray,
    sample_rate: int,
    n_samples: int,
    analysis: RecordingAnalysis,
    reference_rms_dbfs: float | None = None,
    skip_silence: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Fit a recording to what a plant plays: (audio (n_samples,), notes on what changed).

    The leading silence goes (the plant's sound starts at t = 0), then the recording is
    cut or padded to ``n_samples``; with ``reference_rms_dbfs`` (the plant's own level,
    for a plant with no level knob) its sounding part is scaled to that RMS, since a
    level-sensitive distance would otherwise prefer a quieter, wrong sound. An effect's
    target keeps its silence (``skip_silence=False``): it is aligned with its dry signal.
    """
    notes: list[str] = []
    start = max(0, round((analysis.onset_s - PREROLL_S) * sample_rate)) if skip_silence else 0
    if start > 0:
        notes.append(f"skipped {start / sample_rate:.3f} s of leading silence")
    out = np.asarray(audio, np.float64)[start:]
    if out.size < n_samples:
        notes.append(
            f"the sound lasts {out.size / sample_rate:.3f} s after its onset, shorter than "
            f"the plant's {n_samples / sample_rate:.3f} s: padded with silence, which the "
            "fit must match too"
        )
        out = np.pad(out, (0, n_samples - out.size))
    elif out.size > n_samples:
        notes.append(
            f"cut to the plant's {n_samples / sample_rate:.3f} s from "
            f"{out.size / sample_rate:.3f} s after the onset"
        )
        out = out[:n_samples]
    if reference_rms_dbfs is not None:
        gain_db = reference_rms_dbfs - analysis.rms_dbfs
        if abs(gain_db) > 0.1:
            notes.append(
                f"scaled by {gain_db:+.1f} dB to the plant's level "
                f"({reference_rms_dbfs:.1f} dBFS RMS; the plant has no level knob)"
            )
            out = out * 10 ** (gain_db / 20.0)
    return out.astype(np.float32), notes


def has_level_knob(knob_names: Sequence[str]) -> bool:
    """Does a plant set its own output level (so a fit may match the recording's)?"""
    return any(name in LEVEL_KNOBS for name in knob_names)


def sounding_rms_dbfs(audio: np.ndarray, sample_rate: int) -> float:
    """RMS in dBFS over the part within :data:`SOUNDING_DB` of the loudest frame."""
    audio = np.asarray(audio, np.float64)
    first, end = sounding_span(audio, sample_rate)
    return float(_db(np.sqrt(np.mean(audio[first:end] ** 2))))


def lpc_formants(
    audio: np.ndarray,
    sample_rate: int,
    count: int = 3,
    frame_s: float = 0.04,
    max_bandwidth_hz: float = 500.0,
) -> list[float]:
    """The first ``count`` formant frequencies (Hz) of a voiced sound, by LPC.

    Autocorrelation-method LPC (Yule-Walker by scipy's Levinson solver, order 2 +
    sample_rate / 1000, the usual rule) on pre-emphasised Hann frames of the sounding
    part's middle half; a formant is a pole pair above 90 Hz narrower than
    ``max_bandwidth_hz``. Each formant is the median over frames that show it. An
    independent estimate of what a formant synthesizer's f1..f3 should be.
    """
    from scipy.linalg import solve_toeplitz

    audio = np.asarray(audio, np.float64)
    first, end = sounding_span(audio, sample_rate)
    quarter = (end - first) // 4
    middle = audio[first + quarter : end - quarter]
    frame = int(frame_s * sample_rate)
    order = 2 + sample_rate // 1000
    tracks: list[list[float]] = [[] for _ in range(count)]
    for start in range(0, max(1, middle.size - frame + 1), frame // 2):
        x = middle[start : start + frame]
        if x.size < frame or not np.any(x):
            continue
        x = np.append(x[0], x[1:] - 0.97 * x[:-1]) * np.hanning(frame)
        r = np.correlate(x, x, "full")[frame - 1 : frame + order]
        if r[0] <= 0:
            continue
        a = solve_toeplitz(r[:order], r[1 : order + 1])
        roots = np.roots(np.concatenate([[1.0], -a]))
        roots = roots[np.imag(roots) > 0]
        freqs = np.angle(roots) * sample_rate / (2 * np.pi)
        bandwidths = -np.log(np.abs(roots)) * sample_rate / np.pi
        keep = np.sort(freqs[(freqs > 90.0) & (bandwidths < max_bandwidth_hz)])
        for i in range(min(count, keep.size)):
            tracks[i].append(float(keep[i]))
    return [float(np.median(t)) if t else float("nan") for t in tracks]


def echo_delay_s(
    wet: np.ndarray, dry: np.ndarray, sample_rate: int, min_s: float = 0.01
) -> tuple[float, float]:
    """The echo spacing of ``wet`` (an effect's output of ``dry``): (seconds, strength).

    The effect's impulse response is estimated by regularised (Wiener) deconvolution of
    the wet by the dry signal, so the dry sound's own periodicity does not pose as an
    echo; it peaks at lag 0 (the direct sound) and at multiples of the delay. The delay
    is the lag of its highest peak beyond ``min_s``, taken at the first echo when a later
    repeat (a multiple of a shorter lag) is nearly as high. ``strength`` is that peak's
    height (about the echo's gain; near 0 where there is no echo).
    """
    wet = np.asarray(wet, np.float64)
    dry = np.asarray(dry, np.float64)
    nfft = 1 << int(np.ceil(np.log2(wet.size + dry.size)))
    w, d = np.fft.rfft(wet, nfft), np.fft.rfft(dry, nfft)
    power = np.abs(d) ** 2
    response = np.fft.irfft(w * np.conj(d) / (power + 1e-2 * power.mean()), nfft)[: wet.size]
    lo = int(min_s * sample_rate)
    peak = lo + int(np.argmax(response[lo:]))
    for divisor in (4, 3, 2):  # a first echo at peak / k that is nearly as strong
        lag = round(peak / divisor)
        if lag >= lo:
            window = response[max(lo, lag - 2) : lag + 3]
            if window.max() > 0.5 * response[peak]:
                peak = max(lo, lag - 2) + int(np.argmax(window))
                break
    return peak / sample_rate, float(response[peak])


def centred_rms(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    """RMS over ``window`` samples centred on every ``hop``-th sample (zeros beyond the ends)."""
    x = np.asarray(audio, np.float64)
    half = window // 2
    energy = np.concatenate([[0.0], np.cumsum(np.pad(x, (half, window - half)) ** 2)])
    centres = np.arange(0, x.size, hop)
    return np.sqrt(np.maximum(energy[centres + window] - energy[centres], 0.0) / window)


def first_note_end_s(
    audio: np.ndarray,
    sample_rate: int,
    onset_s: float = 0.0,
    drop_db: float = NOTE_END_DROP_DB,
) -> float | None:
    """Where the first note ends (s from the file's start): the first time after
    ``onset_s`` its level envelope (:func:`centred_rms`) falls ``drop_db`` below its
    highest value so far. None if it never does (the note outlasts the file).

    The first event's end, before an echo or a reverb tail returns: an effect later in a
    chain repeats the note, so the sound's whole span (``sounding_s``) runs on past it.
    A gated note whose fade is shorter than the window reads about 2/3 of its fade early.
    """
    if drop_db <= 0.0:
        raise ValueError(f"drop_db must be positive, got {drop_db}")
    window = max(1, round(NOTE_LEVEL_WINDOW_S * sample_rate))
    hop = max(1, round(NOTE_LEVEL_HOP_S * sample_rate))
    # Only windows wholly inside the file: the silence past its end is not a release.
    inside = (audio.size - (window - window // 2)) // hop + 1
    level = _db(centred_rms(audio, window, hop))[: max(0, inside)]
    first = int(np.ceil(onset_s * sample_rate / hop))
    if first >= level.size:
        raise ValueError(f"onset {onset_s} s lies beyond the audio's end")
    after = level[first:]
    below = np.flatnonzero(after < np.maximum.accumulate(after) - drop_db)
    if below.size == 0:
        return None
    return (first + int(below[0])) * hop / sample_rate


def rt60_of_impulse_response(ir: np.ndarray, sample_rate: int) -> float:
    """RT60 (s) from an impulse response: Schroeder's backward integral, the line fitted
    from -5 to -25 dB (T20) extrapolated to -60 dB (ISO 3382-1)."""
    energy = np.cumsum(np.asarray(ir, np.float64)[::-1] ** 2)[::-1]
    edc = 10.0 * np.log10(energy / energy[0] + 1e-30)
    span = np.flatnonzero((edc <= -5.0) & (edc >= -25.0))
    t = span / sample_rate
    slope, _ = np.polyfit(t, edc[span], 1)
    return float(-60.0 / slope)


DECAY_60DB_LN = 3.0 * np.log(10.0)  # an amplitude envelope exp(-6.91 t / RT60) falls 60 dB
DECAY_FRAME_S = 0.01  # frames of the free-decay analysis
MIN_DECAY_S = 0.05  # a tail shorter than this after the dry signal stops gives no RT60


def decay_rt60_s(wet: np.ndarray, dry: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """A reverb's RT60 from its output ``wet`` after its input ``dry`` stops: (RT60 s,
    seconds of free decay it was measured on).

    The interrupted-signal method (ISO 3382-1; Schroeder 1965 showed its ensemble
    average is the backward integral of the impulse response): the wet signal's tail
    after the dry's last sounding 10 ms frame (above -60 dB re its loudest) is
    integrated backwards, and T20's line (-5 to -25 dB; where the tail ends first, from
    -1 dB to its end) is extrapolated to -60 dB. The sound ends before a long tail does,
    and the missing energy would make the integral fall fast at the end: it is added
    back as an exponential tail at the slope of the tail's log-energy envelope (one
    correction step, as Lundeby et al. 1995; iterating it has no stable point when the
    tail spans only a few dB). A deconvolved impulse response (as in
    :func:`echo_delay_s`) was tried and is worse here: the cut-off wet signal corrupts it.

    Raises ValueError when the sizes differ, the dry signal is silent, or it leaves
    less than :data:`MIN_DECAY_S` of tail.
    """
    wet = np.asarray(wet, np.float64)
    dry = np.asarray(dry, np.float64)
    if wet.shape != dry.shape or wet.ndim != 1:
        raise ValueError(f"wet and dry must be 1-D of one length, got {wet.shape}, {dry.shape}")
    frame = max(1, int(DECAY_FRAME_S * sample_rate))
    level = frame_rms(dry, frame)
    if not np.any(level > 0):
        raise ValueError("the dry signal is silent: no decay to measure")
    end = (int(np.flatnonzero(level >= 1e-3 * level.max()).max()) + 1) * frame
    tail = wet[end:]
    if tail.size < MIN_DECAY_S * sample_rate:
        raise ValueError(
            f"only {tail.size / sample_rate:.3f} s of tail after the dry signal stops; "
            f"need {MIN_DECAY_S} s"
        )
    whole = tail[: tail.size // frame * frame]  # no zero-padded last frame in the slope
    envelope = _db(frame_rms(whole, frame))
    t = np.arange(envelope.size) * DECAY_FRAME_S
    keep = envelope > envelope.max() - 60.0
    slope, _ = np.polyfit(t[keep], envelope[keep], 1)
    guess = -60.0 / slope if slope < 0 else np.inf
    power = tail**2
    # Energy beyond the cut at the envelope's rate: the integral of p e^(-13.8 t / RT60).
    missing = np.mean(power[-5 * frame :]) * sample_rate * guess / (2 * DECAY_60DB_LN)
    energy = np.cumsum(power[::-1])[::-1] + (missing if np.isfinite(missing) else 0.0)
    edc = 10.0 * np.log10(energy / energy[0])
    lo, hi = (-5.0, -25.0) if edc[-1] < -25.0 else (-1.0, edc[-1])
    span = np.flatnonzero((edc <= lo) & (edc >= hi))
    tail_s = tail.size / sample_rate
    if span.size < 2:
        return float(guess), tail_s
    slope, _ = np.polyfit(span / sample_rate, edc[span], 1)
    return (float(-60.0 / slope) if slope < 0 else float("inf")), tail_s


@dataclass(frozen=True)
class CompressorCurve:
    """A compander's settings read off its input and output (:func:`compressor_curve`)."""

    threshold_db: float  # peak-follower level (dBFS) where the gain starts to fall
    ratio: float
    makeup_db: float
    attack_s: float
    release_s: float
    rms_error_db: float  # of the fitted gain over the samples used: small = a clear fit
    uncompressed_share: float  # of the samples used, those below the threshold


# The follower times tried (s): a compander's attack is ms, its release tens to hundreds.
CURVE_ATTACKS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
CURVE_RELEASES_S = (0.02, 0.05, 0.1, 0.2, 0.5)
CURVE_THRESHOLDS_DB = np.arange(-60.0, 0.01, 0.5)
CURVE_TIE_DB = 0.005  # thresholds whose fit is this close to the best (plus 10 %) tie


def peak_follower(x: np.ndarray, attack_s: float, release_s: float, sample_rate: int,
                  initial: float = 0.0) -> np.ndarray:  # fmt: skip
    """|x| followed by a branching one-pole (attack when rising), as
    :func:`ddsp_gym.dsp.compress_peak`, in numpy: (n,) -> (n,)."""
    ka = -np.expm1(-1.0 / (attack_s * sample_rate))
    kr = -np.expm1(-1.0 / (release_s * sample_rate))
    out = np.empty(x.size)
    v = initial
    for i, s in enumerate(np.abs(np.asarray(x, np.float64))):
        v += (s - v) * (ka if s > v else kr)
        out[i] = v
    return out


def compressor_curve(
    wet: np.ndarray, dry: np.ndarray, sample_rate: int, initial_level_db: float | None = 0.0
) -> CompressorCurve:
    """Threshold, ratio and make-up of a peak-detecting compander from its input and output.

    Such a compressor's gain is a function of its detector's level alone (no smoothing
    after the static curve), so sample by sample wet / dry = the curve's gain at the
    follower's level. For each follower time pair (:data:`CURVE_ATTACKS_S` x
    :data:`CURVE_RELEASES_S`) the dry's follower level is computed, and a hard-knee
    curve gain = makeup - (1 - 1 / ratio) max(0, level - threshold) is fitted by least
    squares (closed form per threshold on :data:`CURVE_THRESHOLDS_DB`) to the gains of
    samples within 40 dB of the dry's peak; the best pair wins.

    Where no sample's level falls below the threshold (``uncompressed_share`` 0), every
    lower threshold with a higher make-up fits as well (threshold and make-up trade at
    1 - 1 / ratio dB per dB): the data bound the threshold from above only. Of the
    thresholds that fit within 10 % + :data:`CURVE_TIE_DB` of the best, the one whose
    make-up is nearest 0 dB is taken: a prior (unity output gain unless the sound shows
    otherwise, as a compander without output gain, sox's default, has), not a
    measurement; a caller should treat the threshold as a start, not a finding.
    ``initial_level_db`` is the follower's start (sox's default 0 dB; None: silence).
    Raises ValueError on a silent dry signal or mismatched sizes.
    """
    wet = np.asarray(wet, np.float64)
    dry = np.asarray(dry, np.float64)
    if wet.shape != dry.shape or wet.ndim != 1:
        raise ValueError(f"wet and dry must be 1-D of one length, got {wet.shape}, {dry.shape}")
    peak = np.max(np.abs(dry))
    if peak == 0.0:
        raise ValueError("the dry signal is silent: no gain to measure")
    used = np.abs(dry) >= peak * 10.0 ** (-40.0 / 20.0)
    gain = _db(np.abs(wet[used])) - _db(np.abs(dry[used]))
    start = 0.0 if initial_level_db is None else 10.0 ** (initial_level_db / 20.0)
    best: tuple[float, Any] | None = None
    for attack in CURVE_ATTACKS_S:
        for release in CURVE_RELEASES_S:
            level = _db(peak_follower(dry, attack, release, sample_rate, start)[used])
            # Columns [1, over(T)] for every threshold at once: (thresholds, samples).
            over = np.maximum(0.0, level[None, :] - CURVE_THRESHOLDS_DB[:, None])
            n = gain.size
            so, soo = over.sum(1), (over * over).sum(1)
            sg, sog = gain.sum(), (over * gain[None, :]).sum(1)
            det = n * soo - so * so
            ok = det > 1e-9
            slope = np.where(ok, (n * sog - so * sg) / np.where(ok, det, 1.0), 0.0)
            slope = np.minimum(slope, 0.0)  # a compressor: gain only falls above threshold
            makeup = (sg - slope * so) / n
            residual = gain[None, :] - makeup[:, None] - slope[:, None] * over
            rms = np.sqrt(np.mean(residual**2, axis=1))
            if best is None or rms.min() < best[0]:
                best = (float(rms.min()), (attack, release, level, slope, makeup, rms))
    assert best is not None
    attack, release, level, slope, makeup, rms = best[1]
    tied = np.flatnonzero(rms <= 1.1 * rms.min() + CURVE_TIE_DB)
    i = int(tied[np.argmin(np.abs(makeup[tied]))])
    return CompressorCurve(
        threshold_db=float(CURVE_THRESHOLDS_DB[i]),
        ratio=float(1.0 / max(1.0 + slope[i], 1e-3)),
        makeup_db=float(makeup[i]),
        attack_s=attack,
        release_s=release,
        rms_error_db=float(rms[i]),
        uncompressed_share=float(np.mean(level < CURVE_THRESHOLDS_DB[i])),
    )
