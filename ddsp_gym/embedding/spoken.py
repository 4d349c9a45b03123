"""Spoken-word targets rendered offline by espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddsp_gym.audio_io import AudioConversionWarning, fit_length, load_audio

# Twenty short English words whose vowels span the vowel space (the SpokenTimbre
# targets and the benchmark's word list).
WORDS: tuple[str, ...] = (
    "heed",
    "hid",
    "head",
    "had",
    "hod",
    "hawed",
    "hood",
    "who'd",
    "hud",
    "heard",
    "bee",
    "boo",
    "bah",
    "bay",
    "bow",
    "buy",
    "boy",
    "moon",
    "noon",
    "lay",
)


def espeak_binary() -> str:
    """The espeak-ng executable, or a RuntimeError saying how to get it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    return path


def trim_silence(audio: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """``audio`` without its leading and trailing samples below ``threshold_db`` of the
    peak (espeak-ng pads words with silence, which no steady synth tone should chase)."""
    x = np.asarray(audio, np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        raise ValueError("the spoken word is silent")
    loud = np.flatnonzero(np.abs(x) >= peak * 10.0 ** (threshold_db / 20.0))
    return x[loud[0] : loud[-1] + 1]


def speak(word: str, sample_rate: int, n_samples: int, voice: str = "en-us") -> np.ndarray:
    """``word`` spoken by espeak-ng, trimmed of silence, resampled and fit to
    ``n_samples`` (cut, or padded by ``fit_length``)."""
    if not word or not word.strip():
        raise ValueError("the word to speak is empty")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "word.wav"
        subprocess.run(
            [espeak_binary(), "-v", voice, "-w", str(wav), "--", word],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with warnings.catch_warnings():  # espeak-ng speaks at 22.05 kHz: resampling is expected
            warnings.simplefilter("ignore", AudioConversionWarning)
            audio = load_audio(wav, sample_rate, None)
    return fit_length(trim_silence(audio), n_samples)


def spoken_bank(
    words: Sequence[str], sample_rate: int, n_samples: int, voice: str = "en-us"
) -> np.ndarray:
    """The words spoken, one row each: (len(words), n_samples) float32; ``words`` may
    be "default" (:data:`WORDS`)."""
    if isinstance(words, str):
        if words != "default":
            raise ValueError(f'words must be a list of words or "default", got {words!r}')
        words = WORDS
    if not words:
        raise ValueError("no words to speak")
    return np.stack([speak(w, sample_rate, n_samples, voice) for w in words])
