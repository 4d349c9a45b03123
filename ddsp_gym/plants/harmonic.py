"""A one-shot harmonic-plus-noise note: the codec's voice made a plant ``match`` can fit.

:class:`~ddsp_gym.coding.harmonic_noise.HarmonicNoiseVoice` (the codec's plant) streams
a sound as a per-frame knob trajectory. A sampled instrument's note is mostly one static
spectrum that decays, so this plant keeps the codec's spectral model (its 16-point mel
envelope for the harmonics and its 8 mel noise bands, the same functions) and replaces
the trajectory by a handful of note-shape knobs a sound designer would recognise:

- ``inharmonicity`` B stretches partial k to k f0 sqrt(1 + B k^2), the stiff-string
  law of piano strings (Fletcher, JASA 36, 1964); large B gives a bell's or a mallet
  bar's widely spaced partials, which 2-operator FM can only imitate;
- ``attack`` (linear rise) and ``decay`` (the fundamental's exponential time constant),
  with ``damping`` making upper partials die faster (tau_k = decay / (1 + damping (k-1))),
  as a plucked or struck string's do;
- ``glide_cents``: the pitch starts this far off and settles with a fixed
  :attr:`HarmonicNote.glide_s` time constant (a brass or voice scoop);
- ``noise_level`` and ``noise_decay``: the breath or hammer noise, shaped by the bands;
- ``even_db``: the even partials' level against the odd ones' (each parity moved half of
  it off the envelope). A smooth envelope cannot make a square wave's or a clarinet's
  missing even partials, nor an organ's 16' rank under its 8' (every other partial of
  the 16' pitch weak).

Level knobs are RMS at the envelope's peak, so ``match`` fits the level directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.coding.harmonic_noise import (
    ENVELOPE_FLOOR_DB,
    EPS,
    N_ENVELOPE,
    N_NOISE_BANDS,
    NYQUIST_FADE_HZ,
    envelope_anchor_mels,
    interpolate_envelope,
    noise_band_firs,
)
from ddsp_gym.dsp.units import db_to_amp
from ddsp_gym.features.spectral import hz_to_mel
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent

LEVEL_FLOOR_DB = -80.0
EVEN_RANGE_DB = 40.0  # a square wave's even partials: as far down as the fit can hear


def parity_gains_db(even_db: Array | float, n_harmonics: int) -> Array:
    """Each partial's level off the envelope (dB): +even_db/2 for even k, -even_db/2 for
    odd k (k = 1..n_harmonics); 0 everywhere at even_db 0."""
    k = jnp.arange(1, n_harmonics + 1)
    return jnp.where(k % 2 == 0, 0.5, -0.5) * even_db


@dataclass(frozen=True)
class HarmonicNote(AbstractPlant):
    """Stretched harmonics under a 16-point mel envelope plus 8-band noise, one note.

    Knobs (34): frequency 40-1600 Hz (log), level -80..0 dB, env_00..env_15 -80..0 dB,
    inharmonicity 1e-5..0.1 (log), glide_cents -200..200, attack 1-500 ms (log), decay
    0.05-20 s (log), damping 0..1, noise_level -80..0 dB, noise_decay 0.01-20 s (log),
    noise_0..noise_7 -80..0 dB, even_db -40..40 dB.
    """

    duration: float = 1.0
    n_harmonics: int = 48  # down to f0 = 167 Hz reaches Nyquist at 16 kHz
    glide_s: float = 0.05  # the pitch glide's time constant
    release_s: float = 0.03  # fade at the end, as a note-off (no click at the cut)

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        def shape(name: str, what: str) -> KnobSpec:
            return KnobSpec(name, ENVELOPE_FLOOR_DB, 0.0, "linear", "dB", what)

        env = tuple(
            shape(f"env_{i:02d}", f"harmonic envelope at mel point {i} of {N_ENVELOPE}")
            for i in range(N_ENVELOPE)
        )
        noise = tuple(
            shape(f"noise_{i}", f"noise band {i} of {N_NOISE_BANDS} (mel-spaced)")
            for i in range(N_NOISE_BANDS)
        )
        return (
            KnobSpec("frequency", 40.0, 1600.0, "log", "Hz", "fundamental after the glide"),
            KnobSpec("level", LEVEL_FLOOR_DB, 0.0, "linear", "dB", "harmonic RMS at the peak"),
            *env,
            KnobSpec("inharmonicity", 1e-5, 0.1, "log", "", "B: partial k at k f0 sqrt(1+Bk^2)"),
            KnobSpec("glide_cents", -200.0, 200.0, "linear", "cents", "pitch offset at onset"),
            KnobSpec("attack", 0.001, 0.5, "log", "s", "linear rise time"),
            KnobSpec("decay", 0.05, 20.0, "log", "s", "fundamental's decay time constant"),
            KnobSpec("damping", 0.0, 1.0, "linear", "", "upper partials decay faster"),
            KnobSpec("noise_level", LEVEL_FLOOR_DB, 0.0, "linear", "dB", "noise RMS at peak"),
            KnobSpec("noise_decay", 0.01, 20.0, "log", "s", "noise decay time constant"),
            *noise,
            KnobSpec(
                "even_db",
                -EVEN_RANGE_DB,
                EVEN_RANGE_DB,
                "linear",
                "dB",
                "even partials' level against the odd ones'",
            ),
        )

    @knob_independent
    def _release(self) -> Array:
        """Raised-cosine fade over the last ``release_s`` (n,)."""
        return dsp.end_fade(self.n_samples, self.sample_rate, self.release_s)

    def partial_ratios(self, inharmonicity: Array | float) -> Array:
        """Partial k's frequency over f0, k = 1..n_harmonics: k sqrt(1 + B k^2)."""
        k = jnp.arange(1, self.n_harmonics + 1, dtype=jnp.float32)
        return k * jnp.sqrt(1.0 + inharmonicity * k**2)

    def partial_amplitudes(self, c: dict[str, Array]) -> Array:
        """Peak amplitudes (K,) of the partials: the envelope read at each partial's
        frequency, faded out near Nyquist, normalised so that sum a_k^2 = 2 (their sum of
        sines then has RMS 1), times the level."""
        freqs = c["frequency"] * self.partial_ratios(c["inharmonicity"])
        env = jnp.stack([c[f"env_{i:02d}"] for i in range(N_ENVELOPE)])
        levels = interpolate_envelope(env, freqs, self.sample_rate)
        amp = db_to_amp(levels + parity_gains_db(c["even_db"], self.n_harmonics))
        amp = amp * jnp.clip((self.sample_rate / 2.0 - freqs) / NYQUIST_FADE_HZ, 0.0, 1.0)
        amp = amp * jnp.sqrt(2.0 / (jnp.sum(amp**2) + EPS))
        return amp * db_to_amp(c["level"])

    def onset(self, attack: Array) -> Array:
        """Linear rise over ``attack`` seconds (n,)."""
        return jnp.clip(self.sample_times() / attack, 0.0, 1.0)

    def harmonic_part(self, c: dict[str, Array]) -> Array:
        t = self.sample_times()
        # Cycles of the fundamental: f0 t exactly, plus the glide's small integral (a
        # float32 running sum of the whole pitch would drift by a fraction of a cycle).
        bend = 2.0 ** (c["glide_cents"] * jnp.exp(-t / self.glide_s) / 1200.0) - 1.0
        glide = jnp.cumsum(bend) - bend[0]
        cycles = c["frequency"] * (t + glide / self.sample_rate)
        ratios = self.partial_ratios(c["inharmonicity"])
        phase = cycles[:, None] * ratios[None, :]
        k = jnp.arange(self.n_harmonics, dtype=jnp.float32)
        rates = (1.0 + c["damping"] * k) / jnp.maximum(c["decay"], 1e-3)  # 1/tau_k
        decays = jnp.exp(-t[:, None] * rates[None, :])
        tone = jnp.sum(self.partial_amplitudes(c) * decays * dsp.sine(phase), axis=-1)
        return tone * self.onset(c["attack"])

    def noise_part(self, c: dict[str, Array], key: Array) -> Array:
        """White noise through the codec's mel bands (gains normalised as the codec's)."""
        firs, shares = noise_band_firs(self.sample_rate)
        white = jax.random.normal(key, (self.n_samples,))
        bands = jax.vmap(lambda h: jnp.convolve(white, h, mode="same"))(jnp.asarray(firs))
        gains = db_to_amp(jnp.stack([c[f"noise_{i}"] for i in range(N_NOISE_BANDS)]))
        gains = gains / jnp.sqrt(jnp.sum(gains**2 * shares) + EPS)
        envelope = self.onset(c["attack"]) * dsp.exp_decay(
            self.n_samples, self.sample_rate, c["noise_decay"]
        )
        return gains @ bands * envelope * db_to_amp(c["noise_level"])

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        del audio_in  # a source
        return (self.harmonic_part(controls) + self.noise_part(controls, key)) * self._release()


def harmonic_levels_db(
    audio: np.ndarray, sample_rate: int, f0: float, n_harmonics: int
) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, levels in dB re the strongest) of a tone's harmonics below Nyquist.

    Each level is the highest peak of one Hann-windowed, zero-padded spectrum of the
    whole sound within a quarter of f0 of k f0 (a slightly stretched partial is still
    found; inharmonicity knobs are the fit's to find)."""
    audio = np.asarray(audio, np.float64)
    n_fft = 4 * 2 ** int(np.ceil(np.log2(max(audio.size, 2))))
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size), n_fft))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    k = np.arange(1, n_harmonics + 1)
    freqs = k * f0
    freqs = freqs[freqs < sample_rate / 2.0 - NYQUIST_FADE_HZ]
    peaks = np.array([spectrum[np.abs(bins - f) <= f0 / 4.0].max(initial=0.0) for f in freqs])
    levels = 20.0 * np.log10(np.maximum(peaks, EPS) / max(peaks.max(initial=0.0), EPS))
    return freqs, levels


# even_db is read off the partials up to this number that stand this far above the
# strongest (a weaker one is as likely noise or leakage as a partial).
EVEN_PARTIALS = 16
EVEN_AUDIBLE_DB = -60.0


def even_db_from_levels(levels: np.ndarray) -> float:
    """The even partials' level against their odd neighbours' (dB), the median over the
    even partials k <= EVEN_PARTIALS whose neighbours k - 1, k + 1 are measured and
    audible; 0 where none is. ``levels``: dB of partials 1, 2, ..."""
    levels = np.asarray(levels, np.float64)[:EVEN_PARTIALS]
    steps = [
        levels[k - 1] - 0.5 * (levels[k - 2] + levels[k])
        for k in range(2, levels.size, 2)
        if min(levels[k - 2], levels[k]) > EVEN_AUDIBLE_DB
    ]
    if not steps:
        return 0.0
    return float(np.clip(np.median(steps), -EVEN_RANGE_DB, EVEN_RANGE_DB))


def envelope_knobs_from_audio(
    plant: HarmonicNote, audio: np.ndarray, f0: float, min_even_db: float = 0.0
) -> dict[str, float]:
    """The env_00..env_15 and even_db knobs (dB) that put ``audio``'s harmonic levels
    under the plant's envelope: even_db from the even partials' level against their
    neighbours' (:func:`even_db_from_levels`; 0 where that is under ``min_even_db`` in
    size), then the levels with their parity's share taken off, interpolated linearly in
    mel at the envelope's points (below the first harmonic its level, above the last the
    floor): a start the analysis places, which the fit refines."""
    freqs, levels = harmonic_levels_db(audio, plant.sample_rate, f0, plant.n_harmonics)
    if freqs.size == 0:
        return {}
    even_db = even_db_from_levels(levels)
    if abs(even_db) < min_even_db:
        even_db = 0.0
    levels = levels - np.asarray(parity_gains_db(even_db, levels.size))
    levels = levels - levels.max()  # the envelope's points are dB re its peak
    anchors = envelope_anchor_mels(plant.sample_rate)
    values = np.interp(anchors, hz_to_mel(freqs), levels, right=ENVELOPE_FLOOR_DB)
    values = np.clip(values, ENVELOPE_FLOOR_DB, 0.0)
    return {**{f"env_{i:02d}": float(v) for i, v in enumerate(values)}, "even_db": even_db}
