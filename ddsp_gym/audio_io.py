"""Reading and writing audio files (soundfile), with one clear error per bad file."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SILENCE_PEAK = 1e-5  # -100 dBFS: below this a file is treated as silent


class AudioFileError(ValueError):
    """An audio file that cannot be used: unreadable, empty or silent."""


def load_audio(
    path: str | Path,
    sample_rate: int,
    n_samples: int | None = None,
    allow_silent: bool = False,
) -> np.ndarray:
    """Load a file as float32 mono at ``sample_rate``.

    Multichannel audio is mixed down (channel mean) and other rates are
    resampled (polyphase). With ``n_samples`` the result is trimmed or
    zero-padded to that length.

    Raises:
        AudioFileError: the file is missing or unreadable, has no samples, or
            is silent (peak below -100 dBFS) unless ``allow_silent``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioFileError(f"{path}: cannot read it as audio ({err})") from None
    if data.size == 0:
        raise AudioFileError(f"{path}: the file has no samples")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise AudioFileError(f"{path}: the file holds NaN or infinite samples")
    if file_rate != sample_rate:
        common = gcd(int(file_rate), int(sample_rate))
        mono = resample_poly(mono, sample_rate // common, file_rate // common).astype(np.float32)
    if n_samples is not None:
        mono = fit_length(mono, n_samples)
    if not allow_silent and np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioFileError(f"{path}: the audio is silent (peak below -100 dBFS)")
    return mono.astype(np.float32)


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Trim or zero-pad (n,) audio to ``n_samples``."""
    if audio.shape[0] >= n_samples:
        return audio[:n_samples]
    return np.pad(audio, (0, n_samples - audio.shape[0]))


def save_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono float audio as 16-bit PCM WAV (peaks clipped to full scale)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clipped = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    sf.write(str(path), clipped, sample_rate, subtype="PCM_16")
    return path
