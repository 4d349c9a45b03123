"""Spectrogram pictures (matplotlib, Agg backend: works headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ddsp_gym.features.spectral import log_mel_spectrogram  # noqa: E402


def _figure(
    sounds: Sequence[tuple[str, np.ndarray]],
    sample_rate: int,
    losses: Sequence[float] | None = None,
):
    panels = len(sounds) + (1 if losses else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 2.8), dpi=80, squeeze=False)
    axes = axes[0]
    for ax, (title, audio) in zip(axes, sounds, strict=False):
        mel = np.asarray(log_mel_spectrogram(np.asarray(audio, np.float32), sample_rate, 512, 128))
        ax.imshow(
            mel.T,
            origin="lower",
            aspect="auto",
            vmin=-100,
            vmax=0,
            cmap="magma",
            extent=(0, len(audio) / sample_rate, 0, mel.shape[1]),
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("mel band", fontsize=8)
    if losses:
        ax = axes[-1]
        ax.plot(np.arange(1, len(losses) + 1), losses)
        if min(losses) > 0:  # an exact match (distance 0) has no log scale
            ax.set_yscale("log")
        ax.set_title("distance per step", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.tight_layout()
    return fig


def spectrogram_image(current: np.ndarray, target: np.ndarray, sample_rate: int) -> np.ndarray:
    """Side-by-side log-mel spectrograms of current and target sound as an RGB uint8 array."""
    fig = _figure([("current", current), ("target", target)], sample_rate)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_comparison_png(
    path: str | Path,
    result: np.ndarray,
    target: np.ndarray,
    sample_rate: int,
    losses: Sequence[float] | None = None,
) -> Path:
    """Write target vs result spectrograms (and the loss curve, if given) to a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = _figure([("target", target), ("result", result)], sample_rate, losses)
    fig.savefig(path)
    plt.close(fig)
    return path
