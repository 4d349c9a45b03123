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


def test_light_items_are_vmapped_whole_heavy_ones_in_chunks(monkeypatch):
    """With whole_if_light, XLA's byte estimate for one item picks vmap or chunks."""
    monkeypatch.setattr(batching, "CPU_CHUNK", 4)

    def light(x):
        return jnp.sin(x) * 2.0

    def heavy(x):  # one item moves ~20 MB: 500 FFTs of 2048 points
        return jnp.abs(jnp.fft.rfft(jnp.outer(jnp.ones(500), x))).sum(0)

    assert batching.item_bytes(light, [jnp.ones((9, 256))], (0,)) < 1e5
    assert batching.item_bytes(heavy, [jnp.ones((9, 2048))], (0,)) > batching.WHOLE_BATCH_MAX_BYTES

    def loop_count(fn, width: int, whole_if_light: bool) -> int:
        mapped = chunked_vmap(fn, in_axes=(0,), whole_if_light=whole_if_light)
        jaxpr = jax.make_jaxpr(mapped)(jnp.ones((9, width)))
        return str(jaxpr).count("scan[")  # lax.map's loop over chunks

    assert loop_count(light, 256, whole_if_light=True) == 0
    assert loop_count(light, 256, whole_if_light=False) == 1
    assert loop_count(heavy, 2048, whole_if_light=True) == 1
    x = jnp.asarray(np.random.default_rng(1).normal(size=(9, 2048)), jnp.float32)
    np.testing.assert_allclose(
        jax.jit(chunked_vmap(heavy, (0,), whole_if_light=True))(x),
        jax.vmap(heavy)(x),
        rtol=1e-5,
    )
