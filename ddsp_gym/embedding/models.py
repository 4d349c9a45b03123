"""Pretrained audio embeddings whose weights ship inside their wheels (no download).

Two models, both run on the CPU with torch:

* ``"sound"``: aiSFX (``aisfx`` 0.1.2, CC BY 4.0), a 512-d sound-effects embedding: a
  CNN on 96-band log-mel blocks of about 2.3 s at 44.1 kHz.
* ``"voice"``: Resemblyzer (``resemblyzer`` 0.1.4, Apache-2.0), a 256-d voice embedding
  (GE2E LSTM on 40-band mels of 1.6-s partials at 16 kHz), L2-normalised.

Neither package installs normally (both pin old numpy / librosa): install them with
``make`` (the dev install does it) or by hand with :data:`INSTALL_HINT`. Each model is
loaded once per process (:func:`functools.cache`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

Model = Literal["sound", "voice"]
MODELS: tuple[str, ...] = ("sound", "voice")
EMBEDDING_SIZE: dict[str, int] = {"sound": 512, "voice": 256}

INSTALL_HINT = (
    "pip install --no-deps aisfx==0.1.2 resemblyzer==0.1.4 webrtcvad-wheels "
    "&& pip install 'ddsp_gym[embedding]' (the dev install, `make test`, does both)"
)

# aiSFX's input: its training front end (aisfx.inference constants, librosa variant).
_SFX_SR = 44100
_SFX_BLOCK_FRAMES = 100  # one embedding block: 100 hops of 1024 samples, about 2.3 s
_SFX_HOP = 1024
# Resemblyzer's partial utterance: 160 frames of 10 ms.
_VOICE_SECONDS = 1.6


class EmbeddingUnavailable(ImportError):
    """An embedding model's package (and so its shipped weights) is not installed."""


def _import(name: str) -> Any:
    """Import ``name`` or raise :class:`EmbeddingUnavailable` naming the install line."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise EmbeddingUnavailable(
            f"the embedding models need the package {name.split('.')[0]!r} "
            f"({err}); install them with: {INSTALL_HINT}"
        ) from err


@functools.cache
def _torch() -> Any:
    torch = _import("torch")
    # One thread: the machines this runs on are small and run several jobs at once;
    # these models are small enough that more threads buy little.
    torch.set_num_threads(1)
    return torch


@functools.cache
def _sound_model() -> Any:
    torch = _torch()
    inference = _import("aisfx.inference")
    # The checkpoint is a pickled (state_dict, dataset table) tuple: weights_only=False.
    weights, datasets = torch.load(
        inference.get_path_modelWeights(), map_location="cpu", weights_only=False
    )
    return inference.load_bestModel(weights, datasets, "cpu")


@functools.cache
def _voice_model() -> Any:
    _torch()
    resemblyzer = _import("resemblyzer")
    return resemblyzer.VoiceEncoder(device="cpu", verbose=False)


def load_model(model: Model) -> Any:
    """The loaded torch module of ``model`` (cached per process)."""
    if model == "sound":
        return _sound_model()
    if model == "voice":
        return _voice_model()
    raise ValueError(f"unknown embedding model {model!r}; known: {MODELS}")


def _check_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(audio, np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("audio must be a non-empty 1-D array of finite samples")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    return x


def _tile(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated to at least ``n`` samples: a short steady sound fills the model's
    window with itself instead of silence (which both models would read as a pause)."""
    reps = -(-n // x.size)
    return np.tile(x, reps)[: max(n, x.size)]


def _resample(x: np.ndarray, sr: int, to: int) -> np.ndarray:
    if sr == to:
        return x
    librosa = _import("librosa")
    return librosa.resample(x, orig_sr=sr, target_sr=to)


def _embed_sound(x: np.ndarray, sr: int) -> np.ndarray:
    librosa = _import("librosa")
    preprocessing = _import("aisfx.preprocessing")
    model = _sound_model()
    torch = _torch()
    y = _tile(_resample(x, sr, _SFX_SR), _SFX_BLOCK_FRAMES * _SFX_HOP)
    peak = np.max(np.abs(y))
    y = y / (peak if peak > 0 else 1.0)
    # aisfx.spectrogram.spectrogram_librosa, from an array instead of a file.
    spec = librosa.feature.melspectrogram(
        y=y,
        sr=_SFX_SR,
        n_mels=96,
        norm=1.0,
        fmin=0.0,
        fmax=_SFX_SR / 2,
        htk=True,
        power=2.0,
        hop_length=_SFX_HOP,
        win_length=2048,
    )
    spec = np.log10(spec * 10000.0 + 1.0).T  # (frames, mels)
    spec = preprocessing.spectrogram_normalize(spec, spec_norm="original")
    hop = preprocessing.compute_hopSize(_SFX_BLOCK_FRAMES, 0.5, spec)
    blocks = preprocessing.blocking(spec, _SFX_BLOCK_FRAMES, hop, drop_partial_block=True)
    with torch.no_grad():
        out = model.get_embedding(torch.tensor(np.asarray(blocks), dtype=torch.float32))
    return out.numpy().mean(axis=0)


def _embed_voice(x: np.ndarray, sr: int) -> np.ndarray:
    resemblyzer = _import("resemblyzer")
    encoder = _voice_model()
    rate = resemblyzer.sampling_rate
    y = _resample(x, sr, rate)
    # preprocess_wav's level normalisation, without its voice-activity trim: a synth
    # tone is no speech to webrtcvad, which would trim it to nothing.
    rms = np.sqrt(np.mean(y * y))
    y = y * (10 ** (resemblyzer.hparams.audio_norm_target_dBFS / 20) / rms) if rms > 0 else y
    y = _tile(y, int(_VOICE_SECONDS * rate))
    return encoder.embed_utterance(y.astype(np.float32))


def embed(audio: np.ndarray, sr: int, model: Model = "sound") -> np.ndarray:
    """The ``model`` embedding of ``audio`` (n,) at ``sr`` Hz: (512,) or (256,) float32.

    Deterministic (eval mode, no dropout); level-invariant (each model normalises the
    level first). Raises :class:`EmbeddingUnavailable` when the model is not installed.
    """
    if model not in MODELS:
        raise ValueError(f"unknown embedding model {model!r}; known: {MODELS}")
    x = _check_audio(audio, sr)
    out = _embed_sound(x, int(sr)) if model == "sound" else _embed_voice(x, int(sr))
    return np.asarray(out, np.float32)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cos(a, b), in [0, 2]; 1 where either vector is zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in shape: {a.shape} vs {b.shape}")
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return 1.0 if norm == 0 else float(1.0 - np.dot(a, b) / norm)


def embedding_distance(
    audio: np.ndarray, target: np.ndarray, sr: int, model: Model = "sound"
) -> float:
    """Cosine distance between the ``model`` embeddings of two sounds."""
    return cosine_distance(embed(audio, sr, model), embed(target, sr, model))
