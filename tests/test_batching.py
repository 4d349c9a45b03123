"""``chunked_vmap``: the vmap's results, computed a chunk at a time on CPU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym import batching
from ddsp_gym.batching import chunked_vmap


def _voice(x, scale, offset):
    return {"y": jnp.sin(x * scale) + offset, "energy": jnp.sum(x**2) * scale}


@pytest.mark.parametrize("n", [1, 3, 7, 9, 16])
def test_chunks_give_the_vmap_results_with_a_remainder(monkeypatch, n):
    monkeypatch.setattr(batching, "CPU_CHUNK", 3)  # 7 = two chunks of 3 and a remainder of 1
    assert batching.chunk_size() == 3  # the suite runs on CPU
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n, 5)), jnp.float32)
    scale = jnp.linspace(0.5, 2.0, n)
    expected = jax.vmap(_voice, in_axes=(0, 0, None))(x, scale, 0.25)
    got = jax.jit(chunked_vmap(_voice, in_axes=(0, 0, None)))(x, scale, 0.25)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)
        assert got[key].shape == expected[key].shape


def test_chunked_vmap_refuses_other_axes():
    with pytest.raises(ValueError, match="0 or None"):
        chunked_vmap(_voice, in_axes=(1, 0, None))
