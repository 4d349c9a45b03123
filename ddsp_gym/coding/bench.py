"""The coding benchmark: quality against bitrate for a few targets, codec plants and
budgets, with Opus and GSM 6.10 (libsndfile, offline) as reference points.

Targets are made here: a synthetic tone (vibrato, decay), an espeak-ng word and a
FluidSynth violin note (TimGM6mb), each skipped with a stated reason where its program
is missing. Each (target, plant) is fitted once; every budget quantizes that fit. Quality:
log-mel distance (dB; lower is better) and ViSQOL v3 MOS-LQO (visqol-python, audio
mode with its bundled SVR model, both signals resampled to 48 kHz; 1-5, higher better)
where the package is installed. Writes ``results/coding.{json,md,png}``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ddsp_gym.bench import evalset
from ddsp_gym.coding.codec import (
    SAMPLE_RATE,
    code_for_points,
    decode,
    fit_trajectory,
    make_plant,
)

# Budgets (kbit/s of knob tracks) per (plant, frame rate): the drone has 5 knobs, so its
# ladder is lower; 25 frames/s trades time resolution for bits per knob at low budgets.
BUDGETS: dict[tuple[str, int], tuple[float, ...]] = {
    ("harmonic_noise", 50): (2.0, 4.0, 6.0, 8.0),
    ("harmonic_noise", 25): (1.0, 2.0, 4.0),
    ("drone", 50): (1.0, 2.0, 4.0),
}
PACKINGS = ("fixed", "rice")
FIT_STEPS = 150
SECONDS = 1.0
LOG_MEL_RANGE_DB = 80.0  # both spectrograms floored this far under the reference's peak
VIOLIN, NOTE = 40, 57  # General MIDI program (0-based) and MIDI note (A3, 220 Hz)


def synthetic_tone(seconds: float = SECONDS) -> np.ndarray:
    """A 220 Hz tone with 5 Hz vibrato (+-30 cents), 1/k partials to 3 kHz, and a decay."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 220.0 * 2.0 ** (0.3 * np.sin(2 * np.pi * 5.0 * t) / 12.0)
    phase = np.cumsum(f0) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * k * phase) / k for k in range(1, 14))
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-2.0 * t)
    return (0.25 * tone * envelope).astype(np.float32)


def _load(path: Path) -> np.ndarray:
    from ddsp_gym.audio_io import AudioConversionWarning, fit_length, load_audio

    with warnings.catch_warnings():  # the generators' rates and channels are expected
        warnings.simplefilter("ignore", AudioConversionWarning)
        return fit_length(load_audio(path, SAMPLE_RATE), int(SECONDS * SAMPLE_RATE))


def espeak_word(tmp: Path) -> np.ndarray:
    """espeak-ng says "hello" (en-us), cut or padded to SECONDS."""
    raw = tmp / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "hello"], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    return _load(raw)


def fluidsynth_violin(tmp: Path) -> np.ndarray:
    """FluidSynth plays a 1 s violin A3 with TimGM6mb (the match benchmark's renderer)."""
    return _load(evalset.fluidsynth_note(VIOLIN, NOTE, tmp))


def make_targets() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: 16 kHz audio}, {name: why skipped}) for the three targets."""
    targets, skipped = {"tone": synthetic_tone()}, {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if shutil.which("espeak-ng"):
            targets["espeak_hello"] = espeak_word(tmp)
        else:
            skipped["espeak_hello"] = "espeak-ng is not installed (apt-get install espeak-ng)"
        if shutil.which("fluidsynth") and Path(evalset.SOUNDFONT).is_file():
            targets["fluidsynth_violin"] = fluidsynth_violin(tmp)
        else:
            skipped["fluidsynth_violin"] = "fluidsynth or the TimGM6mb soundfont is missing"
    return targets, skipped


def log_mel_db(x: np.ndarray, reference: np.ndarray) -> float:
    """Mean |log-mel(x) - log-mel(reference)| in dB (64 mels, n_fft 1024), both floored
    :data:`LOG_MEL_RANGE_DB` under the reference's loudest bin: differences far under
    the sound (digital silence against a -90 dB noise floor) are not heard."""
    from ddsp_gym.features.spectral import log_mel_spectrogram

    a = np.asarray(log_mel_spectrogram(x, SAMPLE_RATE))
    b = np.asarray(log_mel_spectrogram(reference, SAMPLE_RATE))
    floor = b.max() - LOG_MEL_RANGE_DB
    return float(np.mean(np.abs(np.maximum(a, floor) - np.maximum(b, floor))))


class Visqol:
    """ViSQOL v3 audio mode (visqol-python: its SVR model ships in the wheel), or None."""

    def __init__(self) -> None:
        try:
            from visqol import VisqolApi
        except ImportError:
            self.api = None
            return
        self.api = VisqolApi()
        self.api.create(mode="audio")

    def __call__(self, x: np.ndarray, reference: np.ndarray) -> float | None:
        if self.api is None:
            return None
        up = [resample_poly(np.asarray(s, np.float64), 3, 1) for s in (reference, x)]
        return float(self.api.measure_from_arrays(up[0], up[1], 48_000).moslqo)


def _opus_bytes(audio: np.ndarray, level: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
    return buffer.getvalue()


def _gsm_bytes(audio_8k: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio_8k, 8000, format="WAV", subtype="GSM610")
    return buffer.getvalue()


# The container's share of a file is estimated as the size of a 20 ms file (its headers
# and one frame): a 1 s Ogg Opus file is mostly headers (~0.9 KB of ~1.5 KB).
HEADER_PROBE_SAMPLES = 320


def opus_roundtrip(audio: np.ndarray, level: float) -> tuple[np.ndarray, float, float]:
    """Opus in Ogg via libsndfile at a compression level: (decoded audio, stream kbps
    without the container's headers, file kbps)."""
    data = _opus_bytes(audio, level)
    probe = _opus_bytes(audio[:HEADER_PROBE_SAMPLES], level)
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    return _fit(decoded, audio.size), *_kbps(len(data), len(probe), audio.size)


def gsm_roundtrip(audio: np.ndarray) -> tuple[np.ndarray, float, float]:
    """GSM 6.10 full rate (8 kHz, WAV) via libsndfile: (decoded at 16 kHz, stream kbps,
    file kbps)."""
    low = resample_poly(audio, 1, 2).astype(np.float32)
    data = _gsm_bytes(low)
    probe = _gsm_bytes(low[: HEADER_PROBE_SAMPLES // 2])
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    upsampled = resample_poly(decoded, 2, 1).astype(np.float32)
    return _fit(upsampled, audio.size), *_kbps(len(data), len(probe), audio.size)


def _kbps(file_bytes: int, probe_bytes: int, n_samples: int) -> tuple[float, float]:
    """(stream kbps: the file less the probe's headers, file kbps) over n_samples."""
    seconds = n_samples / SAMPLE_RATE
    return 8.0 * (file_bytes - probe_bytes) / seconds / 1000.0, 8.0 * file_bytes / seconds / 1000.0


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x[:n], (0, max(0, n - x.size)))


def run_coding_bench(out_dir: str | Path = "results", steps: int = FIT_STEPS) -> dict[str, Any]:
    """Run the benchmark; write coding.json, coding.md and coding.png under ``out_dir``."""
    started = time.time()
    targets, skipped = make_targets()
    visqol = Visqol()
    rows: list[dict[str, Any]] = []
    for name, audio in targets.items():
        for (plant_name, frame_rate), budgets in BUDGETS.items():
            plant = make_plant(plant_name, frame_rate)
            label = f"{plant_name} @{frame_rate}/s"
            fit_start = time.time()
            fit = fit_trajectory(plant, audio, steps)
            fit_s = time.time() - fit_start
            for packing, kbps in [(p, k) for p in PACKINGS for k in budgets]:
                try:
                    code = code_for_points(
                        plant_name, plant, fit.points, audio.size, kbps, packing=packing
                    )
                except ValueError as err:  # a Rice budget this sound's tracks cannot meet
                    skipped[f"{name} / {label} {packing} at {kbps:g} kbps"] = str(err)
                    continue
                decoded = decode(code)
                file_kbps = 8.0 * len(json.dumps(code.to_json(), separators=(",", ":")))
                rows.append(_row(name, f"{label} {packing}", kbps, code.payload_bps / 1000.0,
                                 file_kbps / code.duration_s / 1000.0, decoded, audio,
                                 visqol, fit_s=round(fit_s, 1)))  # fmt: skip
            print(f"coding bench: {name} / {label} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)  # fmt: skip
        for level in (1.0, 0.95):
            decoded, stream, whole = opus_roundtrip(audio, level)
            rows.append(
                _row(name, f"opus (level {level:g})", None, stream, whole, decoded, audio, visqol)
            )
        decoded, stream, whole = gsm_roundtrip(audio)
        rows.append(_row(name, "gsm610", None, stream, whole, decoded, audio, visqol))
    result = {
        "command": "python scripts/coding_bench.py",
        "settings": {
            "fit_steps": steps,
            "seconds": SECONDS,
            "sample_rate": SAMPLE_RATE,
            "log_mel_range_db": LOG_MEL_RANGE_DB,
            "visqol": "visqol-python audio mode (48 kHz)" if visqol.api else None,
        },
        "skipped": skipped,
        "rows": rows,
        "seconds": round(time.time() - started, 1),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coding.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "coding.md").write_text(markdown(result))
    plot(result, out / "coding.png")
    return result


def _row(
    target: str,
    codec: str,
    budget: float | None,
    payload_kbps: float,
    file_kbps: float,
    decoded: np.ndarray,
    reference: np.ndarray,
    visqol: Visqol,
    **extra: Any,
) -> dict[str, Any]:
    """One table row: the codec's rates and the decoded sound's quality."""
    score = visqol(decoded, reference)
    return {
        "target": target,
        "codec": codec,
        "budget_kbps": budget,
        "payload_kbps": round(payload_kbps, 3),
        "file_kbps": round(file_kbps, 3),
        "log_mel_db": round(log_mel_db(decoded, reference), 2),
        "visqol_mos": None if score is None else round(score, 3),
        **extra,
    }


def markdown(result: dict[str, Any]) -> str:
    """The results table, one row per (target, codec, budget)."""
    s = result["settings"]
    lines = [
        "# Coding: quality against bitrate",
        "",
        f"`{result['command']}` ({result['seconds']:.0f} s). {s['seconds']:g} s targets at "
        f"{s['sample_rate']} Hz; each codec plant fitted once per target and frame rate "
        f"({s['fit_steps']} Adam steps), each budget quantizes that fit, packed fixed "
        "(every frame the same bits) or rice (frame-to-frame changes Rice-coded). "
        f"payload: the packed knob tracks (Opus, GSM: the file less its container headers, "
        f"estimated as a 20 ms file's size); file: the whole code.json, Ogg or WAV file. "
        f"log-mel: mean |dB| difference, floored {s['log_mel_range_db']:g} dB under the "
        f"reference's peak (lower is better); ViSQOL: {s['visqol'] or 'not installed'} "
        "MOS-LQO (1-5, higher is better).",
        "",
        "| target | codec | budget kbps | payload kbps | file kbps | log-mel dB | ViSQOL |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        budget = "" if r["budget_kbps"] is None else f"{r['budget_kbps']:g}"
        mos = "" if r["visqol_mos"] is None else f"{r['visqol_mos']:.2f}"
        lines.append(
            f"| {r['target']} | {r['codec']} | {budget} | {r['payload_kbps']:.2f} | "
            f"{r['file_kbps']:.2f} | {r['log_mel_db']:.2f} | {mos} |"
        )
    for name, why in result["skipped"].items():
        lines.append(f"\nSkipped {name}: {why}.")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Log-mel distance and ViSQOL against payload kbps, one panel row per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in result["rows"]})
    fig, axes = plt.subplots(2, len(targets), figsize=(4.2 * len(targets), 6.5), squeeze=False)
    for col, target in enumerate(targets):
        rows = [r for r in result["rows"] if r["target"] == target]
        for codec in dict.fromkeys(r["codec"] for r in rows):
            pts = sorted((r["payload_kbps"], r["log_mel_db"], r["visqol_mos"])
                         for r in rows if r["codec"] == codec)  # fmt: skip
            style = "s" if codec.startswith(("opus", "gsm")) else "o-"
            style = "^--" if codec.endswith("rice") else style
            x = [p[0] for p in pts]
            axes[0, col].plot(x, [p[1] for p in pts], style, label=codec)
            if all(p[2] is not None for p in pts):
                axes[1, col].plot(x, [p[2] for p in pts], style, label=codec)
        axes[0, col].set_title(target)
        axes[0, col].set_ylabel("log-mel distance (dB)")
        axes[1, col].set_ylabel("ViSQOL MOS-LQO")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_xlabel("kbit/s")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
