"""How well the JAX proxy ranks sounds like the pretrained embedding does."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from ddsp_gym.embedding.models import Model, cosine_distance, embed
from ddsp_gym.embedding.proxy import proxy_distance_of_features, proxy_features


@dataclass(frozen=True)
class Agreement:
    """Spearman rank correlation between proxy and embedding distances to one target."""

    spearman: float
    p_value: float
    n: int


@functools.lru_cache(maxsize=8)
def _batch_renderer(plant) -> Callable:
    return jax.jit(jax.vmap(lambda u, k: plant.render(u, k, None)))


def render_batch(plant, knobs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Renders (m, n) of unit knob rows (m, d) on a ddsp_gym plant (compiled once)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(knobs))
    return np.asarray(_batch_renderer(plant)(jnp.asarray(knobs, jnp.float32), keys))


@functools.partial(jax.jit, static_argnums=2)
def _proxy_batch(renders: jax.Array, target: jax.Array, sr: int) -> jax.Array:
    target_features = proxy_features(target, sr)
    return jax.vmap(lambda a: proxy_distance_of_features(proxy_features(a, sr), target_features))(
        renders
    )


def proxy_distances(renders: np.ndarray, target: np.ndarray, sr: int) -> np.ndarray:
    """Proxy distance (dB) of each render (m, n) from ``target`` (n,)."""
    return np.asarray(_proxy_batch(jnp.asarray(renders), jnp.asarray(target), int(sr)))


def embedding_distances(
    renders: np.ndarray, target: np.ndarray, sr: int, model: Model = "sound"
) -> np.ndarray:
    """Cosine embedding distance of each render from ``target``."""
    e_target = embed(target, sr, model)
    return np.array([cosine_distance(embed(a, sr, model), e_target) for a in renders])


def rank_agreement(proxy: Sequence[float], embedding: Sequence[float]) -> Agreement:
    """Spearman's rho between two distance lists over the same sounds (needs >= 3)."""
    proxy, embedding = np.asarray(proxy, float), np.asarray(embedding, float)
    if proxy.shape != embedding.shape or proxy.ndim != 1 or proxy.size < 3:
        raise ValueError("need two equally long 1-D distance lists of at least 3 sounds")
    result = scipy.stats.spearmanr(proxy, embedding)
    return Agreement(float(result.statistic), float(result.pvalue), int(proxy.size))


def held_out_agreement(
    plant,
    targets: dict[str, np.ndarray],
    n_renders: int,
    models: Sequence[Model] = ("sound", "voice"),
    seed: int = 12345,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Agreement]]:
    """Per target and model: the agreement on ``n_renders`` random plant patches drawn
    with ``seed`` (patches no search visited: held out)."""
    rng = np.random.default_rng(seed)
    sr = plant.sample_rate
    out: dict[str, dict[str, Agreement]] = {}
    for name, target in targets.items():
        renders = render_batch(plant, rng.uniform(size=(n_renders, plant.num_knobs)), seed)
        proxy = proxy_distances(renders, target, sr)
        out[name] = {
            m: rank_agreement(proxy, embedding_distances(renders, target, sr, m)) for m in models
        }
        if progress:
            progress(name)
    return out
