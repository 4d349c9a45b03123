"""An effect chain for streaming: drive, resonant low-pass and a feedback delay, with the
filter memory and the delay line carried from block to block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.filters import svf_lowpass_coeffs, svf_lowpass_from
from ddsp_gym.dsp.units import db_to_amp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.streaming.base import AbstractBlockPlant

MAX_FEEDBACK = 0.9
RISKY_FEEDBACK = 0.8  # unit travel (feedback 0.72) from which the risk grows


class ChainState(NamedTuple):
    """The SVF's integrators and the delay line: the last ``delay_line`` samples of the
    delay's input (dry plus feedback), oldest first."""

    filter: tuple[Array, Array]
    delay_line: Array  # (max_delay_samples + 2,)


@dataclass(frozen=True)
class FilterDelayChain(AbstractBlockPlant):
    """Input -> tanh drive -> SVF low-pass -> feedback delay, wet/dry mixed.

    Knobs: drive 0-24 dB, cutoff 200-8000 Hz (log), resonance Q 0.5-4 (log), delay
    time ``block_size / sample_rate`` + 16 ms to 0.5 s (log), feedback 0-0.9, mix 0-1.

    The shortest delay is longer than a block, so every sample a block's delay reads was
    written by an earlier block: the feedback loop needs no per-sample recursion, a block
    is a handful of vector operations (reads interpolate linearly between samples, so the
    delay time glides and has a gradient). A render of several blocks' samples at once
    runs the delay block by block, which is the same arithmetic.
    """

    max_delay_s: float = 0.5

    @property
    def min_delay_s(self) -> float:
        return self.block_size / self.sample_rate + 0.016

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("drive", 0.0, 24.0, "linear", "dB", "gain into the tanh saturator"),
            KnobSpec("cutoff", 200.0, 8000.0, "log", "Hz", "low-pass cutoff"),
            KnobSpec("resonance", 0.5, 4.0, "log", "Q", "low-pass resonance"),
            KnobSpec("delay", self.min_delay_s, self.max_delay_s, "log", "s", "echo spacing"),
            KnobSpec("feedback", 0.0, MAX_FEEDBACK, "linear", "", "echo feedback gain"),
            KnobSpec("mix", 0.0, 1.0, "linear", "", "wet share of the output"),
        )

    @property
    def needs_input(self) -> bool:
        return True

    @property
    def line_length(self) -> int:
        return int(round(self.max_delay_s * self.sample_rate)) + 2

    def control_risk(self, knobs: Array) -> Array:
        """Feedback near its top: echoes that barely decay pile up toward a runaway."""
        return jax.nn.relu(knobs[4] - RISKY_FEEDBACK) ** 2

    def init_state(self) -> ChainState:
        return ChainState((jnp.zeros(()), jnp.zeros(())), jnp.zeros(self.line_length))

    def render_samples(
        self, state: ChainState, knobs: Array, key: Array, audio_in: Array | None
    ) -> tuple[Array, ChainState]:
        del key
        if audio_in is None:
            raise ValueError("FilterDelayChain is an effect: it needs audio_in")
        n = knobs.shape[0]
        if n % self.block_size:
            raise ValueError(f"render a whole number of {self.block_size}-sample blocks, not {n}")
        c = self.physical(knobs)
        gain = db_to_amp(c["drive"])
        # tanh(g x) / sqrt(g): drive adds harmonics without raising the level much.
        driven = jnp.tanh(gain * audio_in) / jnp.sqrt(gain)
        coeffs = svf_lowpass_coeffs(c["cutoff"], c["resonance"], self.sample_rate)
        filtered, filter_state = svf_lowpass_from(driven, coeffs, state.filter)
        chunks = lambda x: x.reshape(-1, self.block_size)  # noqa: E731
        line, wet = jax.lax.scan(
            self._delay_block,
            state.delay_line,
            (chunks(filtered), chunks(c["delay"] * self.sample_rate), chunks(c["feedback"])),
        )
        wet = wet.reshape(-1)
        out = (1.0 - c["mix"]) * filtered + c["mix"] * wet
        return out, ChainState(filter_state, line)

    def _delay_block(self, line: Array, inputs: tuple[Array, Array, Array]):
        """One block of the feedback delay: read the past, write dry + feedback * read."""
        x, delay, feedback = inputs
        m, length = x.shape[0], line.shape[0]
        # Sample i of the block is at position length + i of the line extended by the
        # block; it reads ``delay`` samples back, which lies inside the stored line.
        position = length + jnp.arange(m) - delay
        position = jnp.clip(position, 0.0, length - 2.0)
        index = jnp.floor(position)
        frac = position - index
        index = index.astype(jnp.int32)
        read = line[index] * (1.0 - frac) + line[index + 1] * frac
        written = x + feedback * read
        return jnp.concatenate([line[m:], written]), read
