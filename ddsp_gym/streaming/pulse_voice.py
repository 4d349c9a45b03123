"""A pulsing voice for the jam partner: the drone voice gated by a carried LFO whose rate,
phase and depth are knobs, so the agent can place its onsets on a beat."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.oscillators import cosine, phase_increment, running_phase
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.streaming.base import AbstractBlockPlant
from ddsp_gym.streaming.drone import DroneState, DroneVoice

PULSE_SHARPNESS = 6  # gate = ((1 + cos) / 2) ** this: a pulse about a fifth of a cycle long


class PulseState(NamedTuple):
    drone: DroneState
    lfo_phase: Array  # () cycles


@dataclass(frozen=True)
class PulseVoice(AbstractBlockPlant):
    """:class:`~ddsp_gym.streaming.drone.DroneVoice`'s five knobs, then pulse rate 0.5-8 Hz
    (log), pulse phase 0-1 cycle (an offset added to the carried LFO phase) and pulse depth
    0-1 (0: a steady drone, 1: silent between pulses)."""

    @functools.cached_property
    def drone(self) -> DroneVoice:
        return DroneVoice(sample_rate=self.sample_rate, block_size=self.block_size)

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return self.drone.knob_specs + (
            KnobSpec("pulse_rate", 0.5, 8.0, "log", "Hz", "pulses per second"),
            KnobSpec("pulse_phase", 0.0, 1.0, "linear", "cycles", "where in the cycle pulses fall"),
            KnobSpec("pulse_depth", 0.0, 1.0, "linear", "", "how far the gate closes"),
        )

    def control_risk(self, knobs: Array) -> Array:
        return self.drone.control_risk(knobs[:5])

    def init_state(self) -> PulseState:
        return PulseState(self.drone.init_state(), jnp.zeros(()))

    def render_samples(
        self, state: PulseState, knobs: Array, key: Array, audio_in: Array | None = None
    ) -> tuple[Array, PulseState]:
        tone, drone_state = self.drone.render_samples(state.drone, knobs[:, :5], key, audio_in)
        c = self.physical(knobs)
        inc = phase_increment(c["pulse_rate"], self.sample_rate, knobs.shape[0])
        phase, next_phase = running_phase(inc, state.lfo_phase)
        # The pulse peaks where phase + offset is a whole cycle.
        pulse = ((1.0 + cosine(phase + c["pulse_phase"])) / 2.0) ** PULSE_SHARPNESS
        gate = 1.0 - c["pulse_depth"] + c["pulse_depth"] * pulse
        return tone * gate, PulseState(drone_state, next_phase)
