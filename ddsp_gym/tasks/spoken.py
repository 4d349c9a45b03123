"""The SpokenTimbre task: the embedding proxy's distance (ddsp_gym/embedding/proxy.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from jax import Array

from ddsp_gym.embedding.proxy import proxy_distance_of_features, proxy_features
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


@dataclass(frozen=True)
class ProxyTimbreMatch(AbstractTask):
    """The embedding proxy as a task: :func:`proxy_features` and their distance (dB).

    Level-invariant. Its gradient stands in for the embedding's (which has none in
    JAX): an env on it reports ``info["grad_source"] = "proxy"`` with each gradient.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(distance_scale=19.1, success_threshold=2.0)
    level_invariant: ClassVar[bool] = True
    grad_source: ClassVar[str] = "proxy"
    distance_unit: str = "dB"

    def features(self, audio: Array, sample_rate: int) -> dict[str, Array]:
        return proxy_features(audio, sample_rate)

    def distance(self, features: dict[str, Array], target_features: dict[str, Array]) -> Array:
        return proxy_distance_of_features(features, target_features)
