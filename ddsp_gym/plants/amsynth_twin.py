"""A sim twin of amsynth's subtractive voice: saw + square -> resonant 24 dB low-pass -> VCA.

Modelled on amsynth 1.13's voice (src/VoiceBoard/VoiceBoard.cpp,
src/core/synth/LowPassFilter.cpp, ADSR.cpp) under the init patch of
``ddsp_gym/backends/maps/amsynth.yaml``: osc1 a saw, osc2 a square 3 cents
sharp, mixed ``(1 - mix) / 2`` and ``(1 + mix) / 2``; a cascade of two
identical bilinear 2nd-order low-passes (amsynth's 24 dB slope) with
``Q = 1 / (2 (1 - resonance))`` and cutoff ``cutoff + f_note * env_amount *
filter_env``; the filter envelope jumps to 1 and falls linearly to 0 over
``filter_decay_s``; a linear attack/release amplitude envelope (sustain 1)
whose corners are slightly rounded so the reward is smooth in the time knobs.
Knob names are the amsynth map's, so ``backend="hardware"`` plays the real synth.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent

# amsynth's envelope times are 0.0005 s + p^3 (Parameter.cpp); the init patch sets
# filter decay and release to CC 25 -> p = 25 / 127 * 2.5.
AMSYNTH_FILTER_DECAY_S = 0.0005 + (25 / 127 * 2.5) ** 3
# osc2_detune CC 64 -> p = 1 / 127, ratio 1.25^p (exponential law, base 1.25).
AMSYNTH_OSC2_DETUNE = 1.25 ** (1 / 127)


@dataclass(frozen=True)
class AmsynthTwin(AbstractPlant):
    """amsynth's voice playing MIDI note ``note`` for ``gate_s`` of the ``duration``.

    ``noise_floor_dbfs`` is the RMS of a white noise floor added to the output.
    ``level`` makes the twin as loud as amsynth under the init patch: amsynth's
    output measured on the rig is 2.035 x its master volume (32/127)^2 (RMS ratio
    over random knobs, within 1%; sample-wise correlation with the twin 0.98-0.998
    away from extreme resonance).
    """

    duration: float = 0.4
    note: int = 48
    gate_s: float = 0.25
    filter_decay_s: float = AMSYNTH_FILTER_DECAY_S
    osc2_detune: float = AMSYNTH_OSC2_DETUNE
    level: float = 2.035 * (32 / 127) ** 2
    noise_floor_dbfs: float = -110.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("cutoff", 100.0, 4000.0, "log", "Hz", "low-pass cutoff (before the envelope)"),
            KnobSpec("resonance", 0.0, 0.9, "linear", "", "filter resonance, Q = 1/(2(1 - r))"),
            KnobSpec("filter_env_amount", 0.0, 16.0, "linear", "x f_note", "envelope -> cutoff"),
            KnobSpec("amp_attack", 0.002, 0.2, "log", "s", "amplitude attack time"),
            KnobSpec("amp_release", 0.01, 0.3, "log", "s", "amplitude release time"),
            KnobSpec("osc_mix", -1.0, 1.0, "linear", "", "-1 saw only, +1 square only"),
        )

    @property
    def note_hz(self) -> float:
        """The note's frequency (equal temperament, A4 = 440 Hz)."""
        return 440.0 * 2.0 ** ((self.note - 69) / 12)

    @knob_independent
    def sources(self) -> tuple[Array, Array, Array]:
        """(saw, square, filter envelope), each (n,): no knob moves them."""
        n, sr = self.n_samples, self.sample_rate
        f_note, f_square = self.note_hz, self.note_hz * self.osc2_detune
        # amsynth's saw starts mid-ramp (at 0, rising), ours at -1: half a cycle apart.
        saw = dsp.saw_polyblep(dsp.phase_accumulator(f_note, sr, n, 0.5), f_note / sr)
        square = dsp.square_polyblep(dsp.phase_accumulator(f_square, sr, n), f_square / sr)
        filter_env = dsp.adsr(
            n, sr, 0.0, self.filter_decay_s, 0.0, self.filter_decay_s, self.gate_s
        )
        return saw, square, filter_env

    def _filter_coeffs(self, cutoff: Array, env_amount: Array, q: Array) -> dsp.SVFLowpass:
        """Per-sample SVF coefficients (n,) for ``cutoff + f_note * env_amount * filter_env``.

        The filter envelope is a constant that falls to 0 within its decay and stays
        there, so only its first samples move the cutoff: their coefficients are
        computed per sample, the rest once and broadcast (the values of designing
        every sample, to float32 rounding, without its cost).
        """
        filter_env = self.sources()[2]
        moving = int(np.flatnonzero(filter_env)[-1]) + 1 if filter_env.any() else 0
        env_hz = self.note_hz * env_amount * filter_env[:moving]
        head = dsp.svf_lowpass_coeffs(cutoff + env_hz, q, self.sample_rate)
        tail = dsp.svf_lowpass_coeffs(cutoff, q, self.sample_rate)
        rest = (self.n_samples - moving,)
        pairs = zip(head, tail, strict=True)
        return dsp.SVFLowpass(*(jnp.concatenate([h, jnp.broadcast_to(t, rest)]) for h, t in pairs))

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        n, sr = self.n_samples, self.sample_rate
        saw, square, _ = self.sources()
        mix = controls["osc_mix"]
        oscillators = 0.5 * (1.0 - mix) * saw + 0.5 * (1.0 + mix) * square

        q = 1.0 / jnp.maximum(2.0 * (1.0 - controls["resonance"]), 1e-3)
        # Two identical stages (amsynth's 24 dB slope); the SVF form keeps the loss smooth in
        # the cutoff at low frequencies, where direct-form float32 coefficients are coarse.
        coeffs = self._filter_coeffs(controls["cutoff"], controls["filter_env_amount"], q)
        filtered = dsp.run_svf_lowpass(dsp.run_svf_lowpass(oscillators, coeffs), coeffs)

        amp_env = dsp.attack_release(
            n, sr, controls["amp_attack"], controls["amp_release"], self.gate_s
        )
        # A converter-like noise floor (seeded by ``key``: fixed per episode). Without it the
        # 24 dB/octave filter leaves high bands 120 dB down, below float32 FFT rounding,
        # where features would measure rounding noise instead of sound.
        floor = dsp.db_to_amp(self.noise_floor_dbfs) * 3.0**0.5 * dsp.white_noise(key, n)
        return self.level * amp_env * filtered + floor
