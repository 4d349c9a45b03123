"""Perceptual rewards from pretrained audio embeddings and their JAX proxy.

``embed``/``embedding_distance`` (torch, host, no gradient) live in
:mod:`ddsp_gym.embedding.models`; the differentiable proxy in
:mod:`ddsp_gym.embedding.proxy`; espeak-ng word targets in
:mod:`ddsp_gym.embedding.spoken`. Importing this package imports no torch.
"""

from __future__ import annotations

from ddsp_gym.embedding.models import (
    EMBEDDING_SIZE,
    INSTALL_HINT,
    MODELS,
    EmbeddingUnavailable,
    cosine_distance,
    embed,
    embedding_distance,
)
from ddsp_gym.embedding.proxy import proxy_distance, proxy_features

__all__ = [
    "EMBEDDING_SIZE",
    "INSTALL_HINT",
    "MODELS",
    "EmbeddingUnavailable",
    "cosine_distance",
    "embed",
    "embedding_distance",
    "proxy_distance",
    "proxy_features",
]
