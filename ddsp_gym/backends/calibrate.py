"""Calibrate a device set-up: latency, level, and each knob's response next to the sim twin's.

``ddsp-gym hw calibrate`` calls :func:`calibrate`: it measures the round-trip
latency (and stores it for the backend), records a take at mid knobs for the
level, then sweeps each knob over its travel (the others at mid travel),
recording the device and rendering the twin at the quantized positions. The
response map (spectral centroid and RMS level against knob position, device
and twin) is drawn to a PNG; the numbers go to a JSON file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ddsp_gym.backends.audio import rms_dbfs
from ddsp_gym.backends.hardware import HardwareBackend
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
class Calibration:
    latency_ms: float
    samplerate: int
    level_peak_dbfs: float
    level_rms_dbfs: float
    twin_rms_dbfs: float
    sweeps: list[KnobSweep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "samplerate": self.samplerate,
            "level_peak_dbfs": self.level_peak_dbfs,
            "level_rms_dbfs": self.level_rms_dbfs,
            "twin_rms_dbfs": self.twin_rms_dbfs,
            "sweeps": [vars(s) for s in self.sweeps],
        }


def calibrate(
    plant: AbstractPlant,
    backend: HardwareBackend,
    steps: int = 9,
    input_audio: np.ndarray | None = None,
    progress=None,
) -> Calibration:
    """Measure (and store) latency and level, and sweep every knob in ``steps`` positions."""
    frames = backend.measure_latency()
    backend.remember_latency(frames)
    sr = plant.sample_rate
    key = jax.random.PRNGKey(0)
    middle = np.full(plant.num_knobs, 0.5, np.float32)
    take = backend.render(middle, input_audio)
    twin_mid = np.asarray(plant.render(take.knobs, key, input_audio))
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
