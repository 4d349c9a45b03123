"""The embedding distance as an env's reward source (host-side, no gradient)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ddsp_gym.embedding.models import MODELS, cosine_distance, embed
from ddsp_gym.rewards import ExternalReward, Rating


@dataclass
class EmbeddingReward(ExternalReward):
    """Reward -cosine distance between the sound's and the target's embeddings.

    ``model``: "sound" (aiSFX), "voice" (Resemblyzer) or "both" (the mean of the two
    distances). Success when the distance is at most ``success_threshold``. The
    rating's info carries each model's distance. For RL and search agents (CMA-ES,
    random): a gradient agent uses the env's task distance, the JAX proxy.
    """

    model: str = "sound"
    success_threshold: float = 0.05
    sample_rate: int = 16000
    _target: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.model not in (*MODELS, "both"):
            raise ValueError(f"model must be one of {(*MODELS, 'both')}, got {self.model!r}")

    @property
    def models(self) -> tuple[str, ...]:
        return MODELS if self.model == "both" else (self.model,)

    def begin_episode(self, target_audio: np.ndarray, target_known: bool) -> None:
        del target_known
        self._target = {m: embed(target_audio, self.sample_rate, m) for m in self.models}

    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        del knobs
        if not self._target:
            raise RuntimeError("EmbeddingReward.rate before begin_episode (reset the env)")
        distances = {
            m: cosine_distance(embed(audio, self.sample_rate, m), self._target[m])
            for m in self.models
        }
        distance = float(np.mean(list(distances.values())))
        return Rating(
            reward=-distance,
            success=distance <= self.success_threshold,
            distance=distance,
            info={f"{m}_distance": d for m, d in distances.items()},
        )
