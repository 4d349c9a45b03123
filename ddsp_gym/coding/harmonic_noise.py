"""A harmonic-plus-noise voice (DDSP-style, Engel et al. 2020) as a block plant: the codec's plant.

A bank of harmonics of one fundamental, their amplitudes read off a spectral envelope
(:data:`N_ENVELOPE` points spaced evenly in mel from 0 Hz to Nyquist, in dB, interpolated
linearly in mel), plus white noise shaped by :data:`N_NOISE_BANDS` mel-spaced band-pass
FIRs with a gain each. Every knob ramps per sample (the block plant contract), the
oscillator phase and the FIRs' input history carry across blocks, so a per-frame knob
trajectory decodes to one continuous sound.

Both parts are normalised: the envelope and band knobs set only the *shape* of the
spectrum, ``harmonic_level`` and ``noise_level`` the RMS of each part in dBFS. That keeps
the knobs nearly independent, which a quantizer and a smoothness prior both like.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.oscillators import phase_increment, running_phase
from ddsp_gym.dsp.units import db_to_amp
from ddsp_gym.features.spectral import hz_to_mel, mel_to_hz
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.streaming.base import AbstractBlockPlant

N_HARMONICS = 64  # harmonics 1..64: the full band down to f0 = 125 Hz at 16 kHz
N_ENVELOPE = 16  # harmonic envelope points, mel-spaced 0 Hz .. Nyquist
N_NOISE_BANDS = 8  # noise bands, mel-spaced 0 Hz .. Nyquist
FIR_TAPS = 129  # odd: the band FIRs share one centre tap, so they sum to a pure delay
# Harmonic amplitudes are computed every AMP_STRIDE samples (2 ms at 16 kHz) and held in
# between: reading the envelope per sample and per harmonic costs 10x more for no audible
# gain, since the knobs themselves move along 10-20 ms ramps.
AMP_STRIDE = 32
NYQUIST_FADE_HZ = 250.0  # a harmonic fades out over this span below Nyquist (no click on a glide)
ENVELOPE_FLOOR_DB = -80.0  # the envelope and band knobs' travel: shape, 0 dB at the top
LEVEL_FLOOR_DB = -80.0  # the level knobs' travel (RMS dBFS)
EPS = 1e-12


class HarmonicNoiseState(NamedTuple):
    """The fundamental's phase (cycles) and the last FIR_TAPS - 1 white-noise samples."""

    phase: Array  # ()
    noise_history: Array  # (FIR_TAPS - 1,)


@functools.lru_cache(maxsize=8)
def noise_band_firs(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(FIRs (N_NOISE_BANDS, FIR_TAPS), each band's share of the band 0..Nyquist).

    Band b is the difference of two Hann-windowed sinc low-passes at its mel-spaced edges;
    the lowest edge is 0 Hz and the highest Nyquist, so the bands telescope: their sum is
    the unit impulse delayed by (FIR_TAPS - 1) / 2 samples (white noise through all bands
    at equal gain is white noise again, exactly).
    """
    nyquist = sample_rate / 2.0
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(nyquist), N_NOISE_BANDS + 1))
    edges[0], edges[-1] = 0.0, nyquist
    m = np.arange(FIR_TAPS) - (FIR_TAPS - 1) / 2
    window = np.hanning(FIR_TAPS + 2)[1:-1]  # no zero end taps; the centre tap is 1
    cut = edges / sample_rate  # cycles per sample
    lowpasses = 2.0 * cut[:, None] * np.sinc(2.0 * cut[:, None] * m[None, :]) * window
    firs = np.diff(lowpasses, axis=0)
    shares = np.diff(edges) / nyquist
    return firs.astype(np.float32), shares.astype(np.float32)


def envelope_anchor_mels(sample_rate: int) -> np.ndarray:
    """The mel positions of the harmonic envelope's points (N_ENVELOPE,)."""
    return np.linspace(0.0, float(hz_to_mel(sample_rate / 2.0)), N_ENVELOPE).astype(np.float32)


def interpolate_envelope(envelope_db: Array, freqs_hz: Array, sample_rate: int) -> Array:
    """The envelope (..., N_ENVELOPE) in dB read at ``freqs_hz`` (..., K): linear in mel.

    Frequencies above Nyquist read the last point (their harmonics are muted anyway)."""
    anchors = envelope_anchor_mels(sample_rate)
    pos = jnp.clip(2595.0 * jnp.log10(1.0 + freqs_hz / 700.0) / anchors[1], 0.0, N_ENVELOPE - 1.0)
    lower = jnp.clip(jnp.floor(pos), 0, N_ENVELOPE - 2).astype(jnp.int32)
    frac = pos - lower
    left = jnp.take_along_axis(envelope_db, lower, axis=-1)
    right = jnp.take_along_axis(envelope_db, lower + 1, axis=-1)
    return left + (right - left) * frac


@dataclass(frozen=True)
class HarmonicNoiseVoice(AbstractBlockPlant):
    """Harmonics of ``f0`` shaped by a 16-point mel envelope, plus noise in 8 mel bands.

    Knobs (27): f0 40-1600 Hz (log); harmonic_level -80..0 dB (RMS of the harmonic
    part); env_00..env_15 -80..0 dB (the harmonic envelope's shape); noise_level -80..0 dB
    (RMS of the noise); noise_0..noise_7 -80..0 dB (the noise bands' shape).
    """

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        env = tuple(
            KnobSpec(
                f"env_{i:02d}",
                ENVELOPE_FLOOR_DB,
                0.0,
                "linear",
                "dB",
                f"harmonic envelope at mel point {i} of {N_ENVELOPE}",
            )  # fmt: skip
            for i in range(N_ENVELOPE)
        )
        noise = tuple(
            KnobSpec(
                f"noise_{i}",
                ENVELOPE_FLOOR_DB,
                0.0,
                "linear",
                "dB",
                f"noise band {i} of {N_NOISE_BANDS} (mel-spaced)",
            )  # fmt: skip
            for i in range(N_NOISE_BANDS)
        )
        return (
            KnobSpec("f0", 40.0, 1600.0, "log", "Hz", "fundamental frequency"),
            KnobSpec("harmonic_level", LEVEL_FLOOR_DB, 0.0, "linear", "dB", "harmonic RMS"),
            *env,
            KnobSpec("noise_level", LEVEL_FLOOR_DB, 0.0, "linear", "dB", "noise RMS"),
            *noise,
        )

    def init_state(self) -> HarmonicNoiseState:
        return HarmonicNoiseState(jnp.zeros(()), jnp.zeros(FIR_TAPS - 1))

    def harmonic_part(self, phase0: Array, knobs: Array) -> tuple[Array, Array]:
        """The harmonic bank for per-sample unit knobs (n, d): (audio (n,), next phase).

        RMS = 10^(harmonic_level / 20) for steady knobs: amplitudes a_k are normalised to
        sum(a_k^2) = 2 (a sine's RMS is its amplitude / sqrt 2)."""
        c = self.physical(knobs)
        n = knobs.shape[0]
        inc = phase_increment(c["f0"], self.sample_rate, n)
        phase, next_phase = running_phase(inc, phase0)
        k = jnp.arange(1, N_HARMONICS + 1, dtype=jnp.float32)
        # Amplitudes at the last sample of each AMP_STRIDE run, held over the run (a block
        # that is no multiple of the stride is computed per sample).
        stride = AMP_STRIDE if n % AMP_STRIDE == 0 else 1
        held = self.physical(knobs[stride - 1 :: stride])
        freqs = held["f0"][:, None] * k[None, :]  # (n / stride, K)
        env = jnp.stack([held[f"env_{i:02d}"] for i in range(N_ENVELOPE)], axis=-1)
        amp = db_to_amp(interpolate_envelope(env, freqs, self.sample_rate))
        amp = amp * jnp.clip((self.sample_rate / 2.0 - freqs) / NYQUIST_FADE_HZ, 0.0, 1.0)
        amp = amp * jnp.sqrt(2.0 / (jnp.sum(amp**2, axis=-1, keepdims=True) + EPS))
        amp = jnp.repeat(amp, stride, axis=0, total_repeat_length=n)
        # k * phase wrapped to [0, 1) keeps sin's argument small in float32.
        partial_phase = k[None, :] * phase[:, None]
        partial_phase = partial_phase - jnp.floor(partial_phase)
        tone = jnp.sum(amp * jnp.sin(2.0 * jnp.pi * partial_phase), axis=-1)
        return tone * db_to_amp(c["harmonic_level"]), next_phase

    def noise_part(self, history: Array, knobs: Array, white: Array) -> tuple[Array, Array]:
        """Band-shaped noise for per-sample unit knobs (n, d) and white noise (n,).

        Returns (audio (n,), the new input history). The band gains g_b are normalised
        so that sum g_b^2 share_b = 1: unit white noise comes out at RMS 10^(noise_level / 20).
        """
        c = self.physical(knobs)
        firs, shares = noise_band_firs(self.sample_rate)
        extended = jnp.concatenate([history, white])
        bands = jax.vmap(lambda h: jnp.convolve(extended, h, mode="valid"))(jnp.asarray(firs))
        gains = db_to_amp(jnp.stack([c[f"noise_{i}"] for i in range(N_NOISE_BANDS)], -1))
        gains = gains / jnp.sqrt(jnp.sum(gains**2 * shares, axis=-1, keepdims=True) + EPS)
        noise = jnp.sum(gains * bands.T, axis=-1) * db_to_amp(c["noise_level"])
        return noise, extended[-(FIR_TAPS - 1) :]

    def render_samples(
        self, state: HarmonicNoiseState, knobs: Array, key: Array, audio_in: Array | None = None
    ) -> tuple[Array, HarmonicNoiseState]:
        del audio_in  # a source, no input
        tone, phase = self.harmonic_part(state.phase, knobs)
        white = jax.random.normal(key, (knobs.shape[0],))
        noise, history = self.noise_part(state.noise_history, knobs, white)
        return tone + noise, HarmonicNoiseState(phase, history)
