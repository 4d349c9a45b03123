"""A differentiable reverb: band-wise exponentially decaying noise, convolved by FFT."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect


@dataclass(frozen=True)
class Reverb(AbstractEffect):
    """Noise reverb with decay time, high-frequency damping and dry/wet mix.

    The impulse response is a fixed seeded noise (``ir_seed``) split into four
    bands (crossovers 0.5, 1.5, 4 kHz); band b decays 60 dB in
    RT60 * (1 - 0.9 damping)^(b / 3), so ``damping`` shortens the treble's
    decay. The response is as long as the output and normalised to unit energy.
    The mix starts at 10% so the room is always audible.

    ``rt60_range`` widens the decay time (``ddsp-gym match`` uses 0.1-8 s: concert
    halls and plate reverbs ring for 2-8 s); the default is the registered env's.
    The response is cut at the output's length, so a decay longer than the sound is
    heard only as its slope.
    """

    duration: float = 1.0
    program: str = "drums"
    ir_seed: int = 0
    rt60_range: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = (float(v) for v in self.rt60_range)
        if not 0.0 < low < high:
            raise ValueError(
                f"rt60_range must be (low, high) with 0 < low < high, got {self.rt60_range}"
            )

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec(
                "rt60", *map(float, self.rt60_range), "log", "s", "time for the tail to decay 60 dB"
            ),  # fmt: skip
            KnobSpec("damping", 0.0, 1.0, "linear", "", "extra decay of high frequencies"),
            KnobSpec("mix", 0.1, 1.0, "linear", "", "wet share of the output"),
        )

    def impulse_response(self, controls: dict[str, Array]) -> Array:
        """The wet path's impulse response (n_samples,), unit energy."""
        bands = dsp.band_noise(self.n_samples, self.sample_rate, self.ir_seed)
        rt60s = dsp.band_rt60(controls["rt60"], controls["damping"], bands.shape[0])
        return dsp.noise_reverb_ir(bands, rt60s, self.sample_rate)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        x = self.dry(audio_in)
        response = self.impulse_response(controls)
        wet = dsp.fft_convolve(x, response, self.known_input_spectrum(audio_in))
        return (1.0 - controls["mix"]) * x + controls["mix"] * wet
