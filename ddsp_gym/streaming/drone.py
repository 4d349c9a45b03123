"""A drone voice for streaming: three detuned saws through a resonant low-pass, phases and
filter memory carried from block to block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.filters import SVFLowpass, svf_lowpass_coeffs, svf_lowpass_from
from ddsp_gym.dsp.oscillators import phase_increment, running_phase, saw_polyblep
from ddsp_gym.dsp.units import db_to_amp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.streaming.base import AbstractBlockPlant

# The three oscillators sit at -1, 0 and +1 times the detune (cents) around the pitch.
DETUNE_SIGNS = (-1.0, 0.0, 1.0)
# The resonance knob's last fifth drives the filter toward self-oscillation: the drone's
# reward charges it as instability (ddsp_gym/streaming/tasks.py).
MAX_RESONANCE_Q = 12.0
RISKY_RESONANCE = 0.8  # unit travel (Q about 7) from which the risk grows


class DroneState(NamedTuple):
    """What a drone carries across blocks: three oscillator phases (cycles) and the SVF's
    two integrator states."""

    phases: Array  # (3,)
    filter: tuple[Array, Array]


@dataclass(frozen=True)
class DroneVoice(AbstractBlockPlant):
    """Three PolyBLEP saws (pitch, +-detune) summed, low-passed by an SVF, scaled by level.

    Knobs: pitch 40-320 Hz (log), detune 0-30 cents, cutoff 80-6000 Hz (log), resonance
    Q 0.5-12 (log), level -30 to -6 dBFS. Every knob is ramped per sample (smoothing), the
    cutoff and Q therefore per sample too: the SVF's coefficients are computed for each
    sample, which the trapezoidal SVF tolerates without zipper noise.
    """

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("pitch", 40.0, 320.0, "log", "Hz", "fundamental of the middle oscillator"),
            KnobSpec("detune", 0.0, 30.0, "linear", "cents", "spread of the outer oscillators"),
            KnobSpec("cutoff", 80.0, 6000.0, "log", "Hz", "low-pass cutoff"),
            KnobSpec("resonance", 0.5, MAX_RESONANCE_Q, "log", "Q", "low-pass resonance"),
            KnobSpec("level", -30.0, -6.0, "linear", "dB", "output gain"),
        )

    def control_risk(self, knobs: Array) -> Array:
        """The resonance knob's excess over 80 % of its travel, squared (0.04 at the top)."""
        return jax.nn.relu(knobs[3] - RISKY_RESONANCE) ** 2

    def init_state(self) -> DroneState:
        # Spread start phases: three saws starting in phase would sum to one loud edge.
        return DroneState(jnp.array([0.0, 1.0 / 3.0, 2.0 / 3.0]), (jnp.zeros(()), jnp.zeros(())))

    def render_samples(
        self, state: DroneState, knobs: Array, key: Array, audio_in: Array | None = None
    ) -> tuple[Array, DroneState]:
        del key, audio_in  # no noise, no input
        n = knobs.shape[0]
        c = self.physical(knobs)
        voices, phases = [], []
        for i, sign in enumerate(DETUNE_SIGNS):
            freq = c["pitch"] * jnp.exp2(sign * c["detune"] / 1200.0)
            inc = phase_increment(freq, self.sample_rate, n)
            phase, next_phase = running_phase(inc, state.phases[i])
            voices.append(saw_polyblep(phase, inc))
            phases.append(next_phase)
        mix = (voices[0] + voices[1] + voices[2]) / 3.0
        coeffs: SVFLowpass = svf_lowpass_coeffs(c["cutoff"], c["resonance"], self.sample_rate)
        filtered, filter_state = svf_lowpass_from(mix, coeffs, state.filter)
        return filtered * db_to_amp(c["level"]), DroneState(jnp.stack(phases), filter_state)
