"""Calibrate a device set-up: latency, level, and each knob's response next to the sim twin's.

``ddsp-gym hw calibrate`` calls :func:`calibrate`: it measures the round-trip
latency, the input's own noise (nothing playing), the level at mid knobs next to
the twin's, and the *take noise*: ``repeats`` takes of the mid setting, each pair
scored by the env's task; all of it is stored per device set-up
(:mod:`ddsp_gym.backends.store`), where the backend's take checks and its success
rule find it. Then it sweeps each knob over its travel (the others at mid travel),
recording the device and rendering the twin at the quantized positions. The
response map (spectral centroid and RMS level against knob position, device and
twin) is drawn to a PNG; the numbers go to a JSON file.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ddsp_gym.backends.audio import rms_dbfs
from ddsp_gym.backends.hardware import HardwareBackend, success_rule, take_noise_key
from ddsp_gym.features import long_term_power_spectrum, spectral_centroid
from ddsp_gym.plants.base import AbstractPlant


def centroid_hz(audio: np.ndarray, sample_rate: int) -> float:
    """Spectral centroid of the whole sound's power spectrum, in Hz."""
    power, freqs = long_term_power_spectrum(np.asarray(audio, np.float32))
    return float(spectral_centroid(power, freqs * sample_rate))


@dataclass
class KnobSweep:
    """One knob swept on the device and on the twin."""

    name: str
    unit: list[float] = field(default_factory=list)  # quantized positions played
    sent: list[int] = field(default_factory=list)
    device_centroid_hz: list[float] = field(default_factory=list)
    twin_centroid_hz: list[float] = field(default_factory=list)
    device_rms_dbfs: list[float] = field(default_factory=list)
    twin_rms_dbfs: list[float] = field(default_factory=list)


@dataclass
class TakeNoise:
    """The task's distance between repeated takes of one setting, pair by pair."""

    task: str  # the store's key: the task and takes_per_query
    unit: str
    distances: list[float]
    takes: int
    # Median distance of the first take after the knobs came from elsewhere to the settled
    # ones: large when the device's sound depends on the previous setting (parameter
    # smoothing longer than settle_ms, a synth that applies a value late).
    history: float = 0.0

    @property
    def median(self) -> float:
        return float(np.median(self.distances))

    def to_dict(self) -> dict[str, Any]:
        """What the store keeps (the backend's success rule reads ``median``)."""
        return {
            "median": self.median,
            "max": float(np.max(self.distances)),
            "distances": self.distances,
            "takes": self.takes,
            "unit": self.unit,
            "history": self.history,
        }


@dataclass
class Calibration:
    latency_ms: float
    samplerate: int
    level_peak_dbfs: float
    level_rms_dbfs: float
    twin_rms_dbfs: float
    sweeps: list[KnobSweep]
    input_noise_dbfs: float | None = None  # None: digital silence
    take_noise: TakeNoise | None = None
    threshold: dict[str, Any] | None = None  # the success rule it gives (success_rule)

    @property
    def level_offset_db(self) -> float:
        """Device RMS minus twin RMS at mid knobs (the silence check corrects by it)."""
        return self.level_rms_dbfs - self.twin_rms_dbfs

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "samplerate": self.samplerate,
            "level_peak_dbfs": self.level_peak_dbfs,
            "level_rms_dbfs": self.level_rms_dbfs,
            "twin_rms_dbfs": self.twin_rms_dbfs,
            "level_offset_db": self.level_offset_db,
            "input_noise_dbfs": self.input_noise_dbfs,
            "take_noise": None if self.take_noise is None else self.take_noise.to_dict(),
            "success_rule": self.threshold,
            "sweeps": [vars(s) for s in self.sweeps],
        }


# The setting the knobs come from before the take noise is measured at mid travel.
OTHER = 0.8
RULE_KEYS = ("threshold", "sim_threshold", "noise_floor", "k", "decided_by")


def repeat_distances(task: Any, takes: list[np.ndarray], sample_rate: int) -> list[float]:
    """The task's distance of every pair of takes (i < j: take j scored against take i as
    the target), in the task's unit."""
    features = [task.features(np.asarray(t, np.float32), sample_rate) for t in takes]
    return [
        float(task.distance(features[j], features[i]))
        for i, j in itertools.combinations(range(len(takes)), 2)
    ]


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: the RMS of digital silence is stored as None."""
    return float(value) if math.isfinite(value) else None


def calibrate(
    plant: AbstractPlant,
    backend: HardwareBackend,
    steps: int = 9,
    input_audio: np.ndarray | None = None,
    progress=None,
    task: Any = None,
    repeats: int = 5,
    sim_threshold: float | None = None,
) -> Calibration:
    """Measure and store latency, input noise, level and (given ``task``) the take noise;
    sweep every knob in ``steps`` positions.

    Take noise: the knobs go to :data:`OTHER` and back to mid travel (that first take
    measures how much the previous setting still shows: ``history``), then ``repeats``
    takes of mid travel (each a query: ``takes_per_query`` takes averaged) are scored
    pair by pair with the task's distance; their median is the noise floor the
    backend's success rule uses. The level is the last of them. ``sim_threshold``: the
    env's, to report the success rule the take noise gives.
    """
    frames = backend.measure_latency()
    backend.remember_latency(frames)
    sr = plant.sample_rate
    key = jax.random.PRNGKey(0)
    middle = np.full(plant.num_knobs, 0.5, np.float32)
    noise_dbfs = finite_or_none(backend.measure_input_noise())
    backend.render(np.full(plant.num_knobs, OTHER, np.float32), input_audio)  # somewhere else
    after_jump = backend.render(middle, input_audio)
    settled = [backend.render(middle, input_audio) for _ in range(max(repeats, 1))]
    take = settled[-1]
    twin_mid = np.asarray(plant.render(take.knobs, key, input_audio))
    level_offset = finite_or_none(take.rms_dbfs - rms_dbfs(twin_mid))
    backend.remember(input_noise_dbfs=noise_dbfs, level_offset_db=level_offset)
    noise, rule = None, None
    if task is not None and repeats >= 2:
        audios = [t.audio for t in settled]
        noise = TakeNoise(
            task=take_noise_key(task, backend.config.takes_per_query),
            unit=str(getattr(task, "distance_unit", "")),
            distances=repeat_distances(task, audios, sr),
            takes=repeats,
            history=float(
                np.median(repeat_distances(task, [after_jump.audio, *audios], sr)[:repeats])
            ),
        )
        backend.remember(take_noise={noise.task: noise.to_dict()})
        if sim_threshold is not None:
            found = success_rule(sim_threshold, noise.median, backend.config.noise_k)
            rule = {k: v for k, v in found.report(math.nan, False).items() if k in RULE_KEYS}
    sweeps = []
    for i, spec in enumerate(plant.knob_specs):
        sweep = KnobSweep(spec.name)
        for u in np.linspace(0.0, 1.0, steps):
            knobs = middle.copy()
            knobs[i] = u
            take_u = backend.render(knobs, input_audio)
            twin = np.asarray(plant.render(take_u.knobs, key, input_audio))
            sweep.unit.append(float(take_u.knobs[i]))
            sweep.sent.append(int(take_u.sent[spec.name].value))
            sweep.device_centroid_hz.append(centroid_hz(take_u.audio, sr))
            sweep.twin_centroid_hz.append(centroid_hz(twin, sr))
            sweep.device_rms_dbfs.append(rms_dbfs(take_u.audio))
            sweep.twin_rms_dbfs.append(rms_dbfs(twin))
            if progress is not None:
                progress(spec.name, float(u))
        sweeps.append(sweep)
    return Calibration(
        latency_ms=1000.0 * frames / backend.samplerate,
        samplerate=backend.samplerate,
        level_peak_dbfs=take.peak_dbfs,
        level_rms_dbfs=take.rms_dbfs,
        twin_rms_dbfs=rms_dbfs(twin_mid),
        sweeps=sweeps,
        input_noise_dbfs=noise_dbfs,
        take_noise=noise,
        threshold=rule,
    )


def save_response_map(calibration: Calibration, path: str | Path, title: str = "") -> Path:
    """Draw centroid and level against knob position for every knob (device vs twin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = calibration.sweeps
    fig, axes = plt.subplots(2, len(sweeps), figsize=(2.8 * len(sweeps), 5.0), dpi=90,
                             squeeze=False)  # fmt: skip
    for column, sweep in enumerate(sweeps):
        top, bottom = axes[0, column], axes[1, column]
        top.plot(sweep.unit, sweep.device_centroid_hz, "o-", label="device")
        top.plot(sweep.unit, sweep.twin_centroid_hz, "x--", label="twin")
        top.set_yscale("log")
        top.set_title(sweep.name, fontsize=9)
        bottom.plot(sweep.unit, sweep.device_rms_dbfs, "o-", label="device")
        bottom.plot(sweep.unit, sweep.twin_rms_dbfs, "x--", label="twin")
        bottom.set_xlabel("knob position (unit)", fontsize=8)
        if column == 0:
            top.set_ylabel("centroid (Hz)", fontsize=8)
            bottom.set_ylabel("RMS (dBFS)", fontsize=8)
            top.legend(fontsize=7)
    fig.suptitle(
        f"{title}  latency {calibration.latency_ms:.2f} ms, "
        f"level {calibration.level_rms_dbfs:.1f} dBFS RMS (twin {calibration.twin_rms_dbfs:.1f})",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_calibration(calibration: Calibration, folder: str | Path, title: str = "") -> list[Path]:
    """Write ``response_map.png`` and ``calibration.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = save_response_map(calibration, folder / "response_map.png", title)
    js = folder / "calibration.json"
    js.write_text(json.dumps(calibration.to_dict(), indent=1))
    return [png, js]
