"""``banded_matmul``: a static local matrix applied through its bands equals ``x @ M``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym import features as F
from ddsp_gym.tasks.timbre import FormantMatch, _envelope_matrices


def _gaussians(n_rows: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    rows = np.arange(n_rows)[:, None]
    return np.exp(-0.5 * ((rows - centres[None, :]) / sigma) ** 2).astype(np.float32)


@pytest.mark.parametrize("block", [1, 7, 16, 64, 500])
def test_banded_product_equals_the_dense_one_with_batches_and_gradients(block):
    matrix = _gaussians(700, np.linspace(-20.0, 720.0, 150), 9.0)
    blocks = F.banded_blocks(matrix, block=block)
    assert blocks.weights.shape[0] == -(-150 // block) and blocks.n_cols == 150
    x = jnp.asarray(np.random.default_rng(0).exponential(size=(3, 2, 700)), jnp.float32)
    banded, dense = F.banded_matmul(x, blocks), x @ matrix
    assert banded.shape == (3, 2, 150)
    np.testing.assert_allclose(banded, dense, rtol=2e-5, atol=1e-6 * float(jnp.abs(dense).max()))
    probe = jnp.linspace(-1.0, 1.0, 150)
    grad_banded = jax.grad(lambda v: jnp.sum(jnp.sin(F.banded_matmul(v, blocks) * probe)))(x[0, 0])
    grad_dense = jax.grad(lambda v: jnp.sum(jnp.sin((v @ matrix) * probe)))(x[0, 0])
    np.testing.assert_allclose(grad_banded, grad_dense, rtol=1e-4, atol=1e-5)


def test_only_weights_under_the_floor_are_dropped():
    matrix = np.zeros((100, 4), np.float32)
    matrix[10:20, 0] = 1.0
    matrix[95, 0] = 1e-13  # under 1e-12 of the column's peak: outside its band, dropped
    matrix[40:45, 1] = 2.0
    matrix[90, 1] = 1e-11  # over the floor: kept, so the band reaches row 90
    blocks = F.banded_blocks(matrix, block=1, rel_floor=1e-12)
    x = jnp.ones(100).at[95].set(1e12).at[90].set(1e12)
    out = np.asarray(F.banded_matmul(x, blocks))
    assert out[0] == 10.0  # the 1e-13 weight is gone (kept, it would add 0.1)
    assert blocks.weights.shape[1] == 51  # rows 40..90 for the second column
    np.testing.assert_allclose(out[1], 10.0 + 10.0, rtol=1e-6)  # 1e-11 x 1e12 kept
    assert out[2] == out[3] == 0.0  # empty columns read a one-row band of zeros


def test_a_non_matrix_is_refused():
    with pytest.raises(ValueError, match="2-D matrix"):
        F.banded_blocks(np.ones(5))
    with pytest.raises(ValueError, match="block >= 1"):
        F.banded_blocks(np.ones((5, 5)), block=0)


def test_formant_envelope_smoothing_equals_the_dense_gaussian_product():
    """The formant task's envelope through its bands is the dense Gaussian product."""
    task = FormantMatch()
    grid = task.grid()
    smooth, _ = _envelope_matrices(16_000, 4096, tuple(grid.tolist()), task.sigma_hz, 0.33)
    freqs = np.fft.rfftfreq(4096, 1.0 / 16_000)[:, None]
    dense = np.exp(-0.5 * ((freqs - grid[None, :]) / task.sigma_hz) ** 2).astype(np.float32)
    # A power spectrum with 60 dB between its loudest and quietest regions.
    power = jnp.asarray(np.geomspace(1.0, 1e-6, 2049) * (1.0 + np.cos(np.arange(2049) / 9.0)))
    banded, reference = F.banded_matmul(power, smooth), power @ dense
    np.testing.assert_allclose(banded, reference, rtol=1e-5)
    assert smooth.weights.size < 0.25 * dense.size  # what makes it fast: a fifth is read
