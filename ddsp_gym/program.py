"""Program material for effect plants: fixed, seeded test signals made by the project.

An effect needs something to process. These generators make short, deterministic
(numpy, seeded) signals of the kinds a mixing engineer would put through an effect
to hear what it does:

- ``"pluck"``: Karplus-Strong plucked-string notes (guitar-like tones);
- ``"drums"``: kick (pitch-swept sine), snare (noise + tone) and hi-hat (high-passed
  noise) hits, each with a fast exponential decay;
- ``"speech"``: voiced syllables, a glottal pulse train through formant resonators;
- ``"impulses"``: short band-limited clicks, 1-1.25 s apart (a 1 s program holds one
  click at 20 ms), for echo measurements;
- ``"sine_steps"``: a ``PROBE_HZ`` sine stepping up through input levels (the bench
  signal of distortion measurements);
- ``"mix"``: drums, plucks, syllables, clicks and swells (sustained tones rising
  36 dB, a crescendo) one after another at widely varying levels, for dynamics
  processors: the swells sweep the whole static curve, the hits show attack and release.

Every kind fills exactly ``n_samples`` samples, peaks at ``PEAK`` and is identical
for identical arguments (:func:`program_signal` caches and returns copies).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy import signal as sps

PROGRAM_KINDS: tuple[str, ...] = ("pluck", "drums", "speech", "impulses", "sine_steps", "mix")
PEAK = 0.9  # peak amplitude of every program (about -1 dBFS)
PROBE_HZ = 250.0  # sine_steps frequency: 64 samples per period at 16 kHz, on FFT bins
SINE_STEP_LEVELS_DB: tuple[float, ...] = (-24.0, -18.0, -12.0, -6.0, 0.0)

# Formant frequencies (F1, F2, F3) in Hz of five vowels, adult male averages from
# G. E. Peterson & H. L. Barney, "Control methods used in a study of the vowels",
# JASA 24(2), 1952, table II: /i/, /ɛ/, /ɑ/, /ɔ/, /u/.
VOWEL_FORMANTS_HZ: tuple[tuple[float, float, float], ...] = (
    (270.0, 2290.0, 3010.0),
    (530.0, 1840.0, 2480.0),
    (730.0, 1090.0, 2440.0),
    (570.0, 840.0, 2410.0),
    (300.0, 870.0, 2240.0),
)

Event = Callable[[np.random.Generator, int, int], np.ndarray]


def fade(x: np.ndarray, sample_rate: int, fade_s: float = 0.005) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``fade_s`` seconds, so events start and end at 0."""
    m = min(int(fade_s * sample_rate), x.shape[0] // 2)
    if m == 0:
        return x
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    out = x.copy()
    out[:m] *= ramp
    out[-m:] *= ramp[::-1]
    return out


def karplus_strong(excitation: np.ndarray, period: int, n: int, loss: float = 0.996) -> np.ndarray:
    """Karplus-Strong string: y[t] = x[t] + loss * (y[t-P] + y[t-P-1]) / 2.

    K. Karplus & A. Strong, "Digital synthesis of plucked-string and drum timbres",
    Computer Music Journal 7(2), 1983. The two-point average is the string's loss
    filter; ``loss`` < 1 sets the decay. Computed a period at a time (each block
    depends only on the previous one), so no Python loop over samples.
    """
    x = np.zeros(n)
    x[: excitation.shape[0]] = excitation[:n]
    y = np.zeros(n + period + 1)  # period + 1 leading zeros hold y[t < 0]
    offset = period + 1
    for start in range(0, n, period):
        stop = min(start + period, n)
        t = np.arange(start, stop) + offset
        y[t] = x[start:stop] + loss * 0.5 * (y[t - period] + y[t - period - 1])
    return y[offset:]


def pluck_event(rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """A plucked note of random pitch (E2..E4) and brightness, (n,) samples, peak 1."""
    f0 = 82.41 * 2.0 ** (rng.integers(0, 25) / 12.0)
    period = max(int(round(sample_rate / f0)), 2)
    burst = rng.uniform(-1.0, 1.0, period)
    # A softer pick is a darker excitation: smooth the burst a random number of times.
    for _ in range(int(rng.integers(0, 4))):
        burst = 0.5 * (burst + np.roll(burst, 1))
    note = karplus_strong(burst, period, n, loss=float(rng.uniform(0.990, 0.998)))
    return fade(note / (np.max(np.abs(note)) + 1e-12), sample_rate)


def drum_event(rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """A kick, snare or hi-hat hit (chosen at random), (n,) samples, peak 1."""
    t = np.arange(n) / sample_rate
    kind = int(rng.integers(0, 3))
    if kind == 0:  # kick: sine swept 150 -> 50 Hz, 150 ms decay
        freq = 50.0 + 100.0 * np.exp(-t / 0.03)
        hit = np.sin(2.0 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / 0.15)
    elif kind == 1:  # snare: noise rattle plus a 180 Hz body
        noise = rng.uniform(-1.0, 1.0, n)
        hit = 0.7 * noise * np.exp(-t / 0.05) + 0.4 * np.sin(2 * np.pi * 180 * t) * np.exp(
            -t / 0.08
        )
    else:  # closed hi-hat: first-difference (high-passed) noise, 15 ms decay
        noise = np.diff(rng.uniform(-1.0, 1.0, n + 1))
        hit = noise * np.exp(-t / 0.015)
    return fade(hit / (np.max(np.abs(hit)) + 1e-12), sample_rate, fade_s=0.001)


def formant_filter(source: np.ndarray, formants_hz, sample_rate: int) -> np.ndarray:
    """Cascade of 2-pole resonators (bandwidth 80 Hz + 8% of the centre) at ``formants_hz``."""
    out = source
    for freq in formants_hz:
        radius = np.exp(-np.pi * (80.0 + 0.08 * freq) / sample_rate)
        theta = 2.0 * np.pi * freq / sample_rate
        a = [1.0, -2.0 * radius * np.cos(theta), radius * radius]
        out = sps.lfilter([1.0 - radius], a, out)
    return out


def speech_event(rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """A voiced syllable: gliding glottal pulses through one vowel's formants, peak 1."""
    f_start, f_end = rng.uniform(95.0, 180.0, 2)
    freq = np.linspace(f_start, f_end, n)
    phase = np.cumsum(freq) / sample_rate
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal cycle
    # Glottal pulse shape: a 2-pole low-pass (-12 dB/oct) on the impulse train.
    glottal = sps.lfilter([1.0], [1.0, -1.9, 0.9025], pulses)
    vowel = VOWEL_FORMANTS_HZ[int(rng.integers(0, len(VOWEL_FORMANTS_HZ)))]
    voiced = formant_filter(glottal - glottal.mean(), vowel, sample_rate)
    syllable = voiced * np.hanning(n)
    return syllable / (np.max(np.abs(syllable)) + 1e-12)


def swell_event(rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """A sustained harmonic tone (5 partials, 110-330 Hz) rising 36 dB linearly in dB, peak 1."""
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(110.0, 330.0)
    tone = sum(np.sin(2.0 * np.pi * k * f0 * t) / k for k in range(1, 6))
    ramp_db = np.linspace(-36.0, 0.0, n)
    swell = fade(tone * 10.0 ** (ramp_db / 20.0), sample_rate, fade_s=0.01)
    return swell / (np.max(np.abs(swell)) + 1e-12)


CLICK_SAMPLES = 9  # Hann-pulse click, about 1 ms wide at 8-16 kHz


def impulse_event(rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """A click of random polarity and level (0.5..1) at the event's start, (n,).

    The click is a ``CLICK_SAMPLES``-long Hann pulse rather than a single sample:
    band-limited like a real test click, so a fractional delay moves it smoothly
    instead of reshaping its top octave (which would ripple every feature of it).
    """
    click = np.zeros(n)
    pulse = np.hanning(CLICK_SAMPLES + 2)[1:-1][: max(n, 1)]
    click[: pulse.shape[0]] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0) * pulse
    return click


MIX_KINDS: tuple[str, ...] = ("swell", "drums", "pluck", "speech", "click")
EVENTS: dict[str, tuple[Event, tuple[float, float], tuple[float, float]]] = {
    # kind: (event, event length range in s, gap range in s)
    "pluck": (pluck_event, (0.25, 0.6), (0.0, 0.05)),
    "drums": (drum_event, (0.1, 0.3), (0.02, 0.12)),
    "speech": (speech_event, (0.12, 0.3), (0.03, 0.1)),
    # Over a second between clicks: the echoes (up to 1 s) of one click are heard
    # before the next, as when measuring a delay by ear.
    "impulses": (impulse_event, (1.0, 1.25), (0.0, 0.0)),
    "click": (impulse_event, (0.05, 0.15), (0.0, 0.0)),
    "swell": (swell_event, (0.3, 0.45), (0.0, 0.03)),
}


def arrange(
    rng: np.random.Generator,
    sample_rate: int,
    n: int,
    kinds: tuple[str, ...],
    level_db: tuple[float, float],
    start_s: float = 0.01,
    length_scale: float = 1.0,
) -> np.ndarray:
    """Place events of ``kinds`` (cycled) one after another until ``n`` samples are filled.

    Each event gets a random length and following gap (per kind, see ``EVENTS``,
    times ``length_scale``) and a random level in ``level_db``; the last one is
    cut at ``n``.
    """
    out = np.zeros(n)
    pos, i = int(start_s * sample_rate), 0
    while pos < n:
        event, (len_lo, len_hi), (gap_lo, gap_hi) = EVENTS[kinds[i % len(kinds)]]
        length = max(int(rng.uniform(len_lo, len_hi) * length_scale * sample_rate), 1)
        hit = event(rng, sample_rate, length) * 10.0 ** (rng.uniform(*level_db) / 20.0)
        stop = min(pos + length, n)
        out[pos:stop] += hit[: stop - pos]
        pos += length + int(rng.uniform(gap_lo, gap_hi) * length_scale * sample_rate)
        i += 1
    return out


def sine_steps(sample_rate: int, n: int, freq_hz: float = PROBE_HZ) -> np.ndarray:
    """A sine at ``freq_hz`` in equal-length steps at ``SINE_STEP_LEVELS_DB`` (re. peak), (n,)."""
    t = np.arange(n) / sample_rate
    step = np.minimum(np.arange(n) * len(SINE_STEP_LEVELS_DB) // n, len(SINE_STEP_LEVELS_DB) - 1)
    gains = 10.0 ** (np.asarray(SINE_STEP_LEVELS_DB) / 20.0)
    return fade(gains[step] * np.sin(2.0 * np.pi * freq_hz * t), sample_rate)


def _generate(kind: str, sample_rate: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, PROGRAM_KINDS.index(kind)])
    if kind == "sine_steps":
        x = sine_steps(sample_rate, n)
    elif kind == "mix":
        # Levels spread over 30 dB so a compressor's whole static curve is exercised; events
        # at half their usual length, so a second holds many onsets (attack) and decays
        # (release) besides a swell (the static curve).
        x = arrange(rng, sample_rate, n, MIX_KINDS, (-30.0, 0.0), length_scale=0.5)
    elif kind == "impulses":
        x = arrange(rng, sample_rate, n, (kind,), (-6.0, 0.0), start_s=0.02)
    else:
        x = arrange(rng, sample_rate, n, (kind,), (-12.0, 0.0))
    return PEAK * x / (np.max(np.abs(x)) + 1e-12)


@functools.lru_cache(maxsize=32)
def _cached(kind: str, sample_rate: int, n: int, seed: int) -> np.ndarray:
    x = _generate(kind, sample_rate, n, seed).astype(np.float32)
    x.setflags(write=False)
    return x


def program_signal(kind: str, sample_rate: int = 16_000, n_samples: int = 16_000, seed: int = 0):
    """The program of ``kind`` as float32 (n_samples,), peak ``PEAK``; deterministic in the seed.

    Raises:
        ValueError: unknown ``kind`` or a non-positive length or rate.
    """
    if kind not in PROGRAM_KINDS:
        raise ValueError(f"unknown program kind {kind!r}; known kinds: {list(PROGRAM_KINDS)}")
    if n_samples <= 0 or sample_rate <= 0:
        raise ValueError(f"need positive sample_rate and n_samples, got {sample_rate}, {n_samples}")
    return _cached(kind, int(sample_rate), int(n_samples), int(seed)).copy()
