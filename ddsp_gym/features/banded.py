"""``x @ M`` for a static matrix whose columns each read a narrow band of ``x``.

Smoothing kernels and filterbanks (a Gaussian per grid point over a power
spectrum) are mostly zeros. As dense matrices they are read whole at every call:
at batch 1 a product like FormantMatch's (2049 bins x 383 grid points, 3.1 MB) is
bound by that memory traffic. Here the columns are cut into blocks of
neighbouring columns, each block kept with the rows (a static slice of ``x``)
where any of its columns has weight; the product is one small batched matmul,
and its gradient plain slices and pads (no scatter, which is slow on CPU).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array


class BandedBlocks(NamedTuple):
    """A static (rows, n_cols) matrix as blocks of ``block`` columns over row bands."""

    starts: tuple[int, ...]  # first row of each block's band (static slices of x)
    weights: np.ndarray  # (n_blocks, width, block): the matrix on each band, zero-padded
    n_cols: int


def banded_blocks(matrix: np.ndarray, block: int = 64, rel_floor: float = 1e-12) -> BandedBlocks:
    """Cut ``matrix`` (rows, cols) into column blocks over the rows they use.

    A row belongs to a block's band where some column of the block has a weight
    above ``rel_floor`` times that column's largest; the rest of the column is
    dropped, so each output moves by at most ``rel_floor`` x (that column's peak
    weight) x (the sum of |x| over the dropped rows). Every band has the widest
    band's width (one batched matmul), placed to cover its rows.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or block < 1:
        raise ValueError(f"need a 2-D matrix and block >= 1, got {matrix.shape} and {block}")
    rows, cols = matrix.shape
    n_blocks = -(-cols // block)
    padded = np.zeros((rows, n_blocks * block), matrix.dtype)
    padded[:, :cols] = matrix
    peak = np.abs(padded).max(axis=0, keepdims=True)
    used = np.abs(padded) > rel_floor * peak
    spans = []
    for b in range(n_blocks):
        in_band = np.flatnonzero(used[:, b * block : (b + 1) * block].any(axis=1))
        spans.append((int(in_band[0]), int(in_band[-1]) + 1) if in_band.size else (0, 1))
    width = max(hi - lo for lo, hi in spans)
    starts = tuple(min(lo, rows - width) for lo, _ in spans)
    weights = np.stack(
        [padded[s : s + width, b * block : (b + 1) * block] for b, s in enumerate(starts)]
    )
    return BandedBlocks(starts, weights, cols)


def banded_matmul(x: Array, blocks: BandedBlocks) -> Array:
    """``x @ matrix`` for ``blocks = banded_blocks(matrix)``: (..., rows) -> (..., cols)."""
    width = blocks.weights.shape[1]
    bands = jnp.stack([x[..., s : s + width] for s in blocks.starts], axis=-2)
    out = jnp.einsum("...bw,bwk->...bk", bands, blocks.weights)
    return out.reshape(*out.shape[:-2], -1)[..., : blocks.n_cols]
