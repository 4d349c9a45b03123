"""A feed-forward dynamic range compressor on program material."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect

DETECTORS = ("rms", "peak")


def _range(name: str, bounds: tuple[float, float] | list[float]) -> tuple[float, float]:
    """A (low, high) knob range from a config value, with a clear error for a bad one."""
    low, high = (float(v) for v in bounds)
    if not high > low:
        raise ValueError(f"{name} must be (low, high) with high > low, got {tuple(bounds)}")
    return low, high


@dataclass(frozen=True)
class Compressor(AbstractEffect):
    """Log-domain feed-forward compressor (Giannoulis, Massberg & Reiss, JAES 2012).

    The input is first trimmed by ``input_trim_db`` (mixing headroom: the
    program's -1 dBFS peaks arrive at -11 dBFS, its loudest 10 ms near -24 dBFS
    RMS), so the threshold range sits inside the program's level range and no
    make-up setting clips the output. The threshold is then referred to the trimmed
    signal: it is the input's level only with ``input_trim_db=0``.

    ``detector="rms"`` (the env's): the RMS level (``rms_time`` s) feeds the static
    curve, the gain reduction is smoothed by a branching attack/release detector
    (``lax.scan``), then make-up gain is added. ``detector="peak"``: a branching
    attack/release follower of |x| feeds the static curve, unsmoothed after it, as in
    sox's ``compand`` (:func:`ddsp_gym.dsp.compress_peak`); ``initial_level_db`` is
    that follower's starting level (None: silence; sox's default is 0 dB).

    ``threshold_range``, ``makeup_range`` and ``knee_range`` widen the knobs for
    matching recordings (``ddsp-gym match`` uses an input-referred peak compressor with
    thresholds down to -60 dBFS); the defaults are the registered env's.
    """

    duration: float = 1.0
    program: str = "mix"
    input_trim_db: float = -10.0
    rms_time: float = 0.01
    detector: str = "rms"
    initial_level_db: float | None = None
    threshold_range: tuple[float, float] = (-50.0, -30.0)
    makeup_range: tuple[float, float] = (0.0, 10.0)
    knee_range: tuple[float, float] = (2.0, 18.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose one of {DETECTORS}")
        for name in ("threshold_range", "makeup_range", "knee_range"):
            _range(name, getattr(self, name))
        if _range("knee_range", self.knee_range)[0] < 0.0:
            raise ValueError(f"knee_range must not go below 0 dB, got {self.knee_range}")

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        level = "RMS" if self.detector == "rms" else "peak"
        return (
            KnobSpec(
                "threshold",
                *_range("threshold_range", self.threshold_range),
                "linear",
                "dBFS",
                f"{level} level where compression starts",
            ),
            KnobSpec("ratio", 2.0, 20.0, "log", ":1", "input dB per output dB above threshold"),
            KnobSpec(
                "knee",
                *_range("knee_range", self.knee_range),
                "linear",
                "dB",
                "width of the soft knee",
            ),  # fmt: skip
            KnobSpec("attack", 0.002, 0.1, "log", "s", "gain-reduction rise time"),
            KnobSpec("release", 0.02, 0.5, "log", "s", "gain-reduction recovery time"),
            KnobSpec(
                "makeup",
                *_range("makeup_range", self.makeup_range),
                "linear",
                "dB",
                "gain after compression",
            ),  # fmt: skip
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        x = dsp.gain(self.dry(audio_in), self.input_trim_db)
        args = (controls["threshold"], controls["ratio"], controls["knee"],
                controls["attack"], controls["release"], controls["makeup"])  # fmt: skip
        if self.detector == "peak":
            return dsp.compress_peak(
                x, self.sample_rate, *args, initial_level_db=self.initial_level_db
            )
        return dsp.compress(x, self.sample_rate, *args, rms_time_s=self.rms_time)
