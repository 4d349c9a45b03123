"""A feed-forward dynamic range compressor on program material."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect


@dataclass(frozen=True)
class Compressor(AbstractEffect):
    """Log-domain feed-forward compressor (Giannoulis, Massberg & Reiss, JAES 2012).

    The input is first trimmed by ``input_trim_db`` (mixing headroom: the
    program's -1 dBFS peaks arrive at -11 dBFS, its loudest 10 ms near -24 dBFS
    RMS), so the threshold range sits inside the program's level range and no
    make-up setting clips the output. The RMS level (``rms_time`` s) feeds the
    static curve, the gain reduction is smoothed by a branching attack/release
    detector (``lax.scan``), then make-up gain is added.
    """

    duration: float = 1.0
    program: str = "mix"
    input_trim_db: float = -10.0
    rms_time: float = 0.01

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec(
                "threshold", -50.0, -30.0, "linear", "dBFS", "RMS level where compression starts"
            ),
            KnobSpec("ratio", 2.0, 20.0, "log", ":1", "input dB per output dB above threshold"),
            KnobSpec("knee", 2.0, 18.0, "linear", "dB", "width of the soft knee"),
            KnobSpec("attack", 0.002, 0.1, "log", "s", "gain-reduction rise time"),
            KnobSpec("release", 0.02, 0.5, "log", "s", "gain-reduction recovery time"),
            KnobSpec("makeup", 0.0, 10.0, "linear", "dB", "gain after compression"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        return dsp.compress(
            dsp.gain(self.dry(audio_in), self.input_trim_db),
            self.sample_rate,
            controls["threshold"],
            controls["ratio"],
            controls["knee"],
            controls["attack"],
            controls["release"],
            controls["makeup"],
            rms_time_s=self.rms_time,
        )
