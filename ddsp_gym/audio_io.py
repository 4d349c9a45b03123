"""Reading and writing audio files (soundfile), with one clear error per bad file.

Loading a file fits it to what a plant hears (mono, its sample rate, its length). Each
such change is reported as an :class:`AudioConversionWarning`, so that a result is never
silently about a different sound than the file: library users see Python warnings, the
``ddsp-gym`` command prints each as one line on stderr.
"""

from __future__ import annotations

import warnings
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SILENCE_PEAK = 1e-5  # -100 dBFS: below this a file is treated as silent


class AudioFileError(ValueError):
    """An audio file that cannot be used: unreadable, empty or silent."""


class AudioConversionWarning(UserWarning):
    """A loaded file was changed to fit: mixed down to mono, resampled, cut or padded."""


def conversion_notes(
    path: str | Path,
    channels: int,
    file_rate: int,
    sample_rate: int,
    n_resampled: int,
    n_samples: int | None,
) -> list[str]:
    """What :func:`load_audio` does to a file, one sentence per change (from what to what).

    ``n_resampled`` is the file's length in samples at ``sample_rate``; ``n_samples`` the
    length asked for (None: kept).
    """
    notes = []
    if channels > 1:
        notes.append(f"{path}: mixed {channels} channels down to mono (their mean)")
    if file_rate != sample_rate:
        notes.append(f"{path}: resampled from {file_rate} Hz to {sample_rate} Hz")
    if n_samples is not None and n_resampled != n_samples:
        how = "cut" if n_resampled > n_samples else "padded with silence"
        notes.append(
            f"{path}: {how} from {n_resampled / sample_rate:.3f} s to "
            f"{n_samples / sample_rate:.3f} s ({n_samples} samples at {sample_rate} Hz)"
        )
    return notes


def load_audio(
    path: str | Path,
    sample_rate: int,
    n_samples: int | None = None,
    allow_silent: bool = False,
) -> np.ndarray:
    """Load a file as float32 mono at ``sample_rate``.

    Multichannel audio is mixed down (channel mean) and other rates are
    resampled (polyphase). With ``n_samples`` the result is trimmed or
    zero-padded to that length. Each of these changes issues an
    :class:`AudioConversionWarning` saying what was done, from what to what.

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
    notes = conversion_notes(
        path, data.shape[1], int(file_rate), sample_rate, mono.shape[0], n_samples
    )
    if n_samples is not None:
        mono = fit_length(mono, n_samples)
    if not allow_silent and np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioFileError(f"{path}: the audio is silent (peak below -100 dBFS)")
    for note in notes:  # only for a file that is used
        warnings.warn(note, AudioConversionWarning, stacklevel=2)
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
