"""``chunked_vmap``: vmap over a batch in cache-sized chunks on CPU, whole on accelerators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

# On CPU a batch of heavy items runs as a loop over vmapped chunks of this many items
# (``lax.map`` with ``batch_size``): a chunk's audio, STFT frames and spectra stay in
# cache, where one vmap over a large batch spills out of it; smaller chunks only add
# loop iterations. Accelerators want the whole batch at once.
CPU_CHUNK = 32

# Light env steps vectorize best in one piece, chunks only add their loop: a step whose
# computation XLA's cost model says moves at most this many bytes is vmapped whole
# (``chunked_vmap(..., whole_if_light=True)``). The bound lies between the env steps
# that run faster whole and those that run faster in chunks. It is fitted to env steps,
# not a rule for every batch: a batch dominated by a filter's scan can run slower whole
# though it moves fewer bytes.
WHOLE_BATCH_MAX_BYTES = 6.5e6


def chunk_size() -> int | None:
    """Items per chunk on this backend (None: no chunking)."""
    return CPU_CHUNK if jax.default_backend() == "cpu" else None


def item_bytes(fn: Callable, args: Sequence[Any], in_axes: Sequence[int | None]) -> float | None:
    """XLA's estimate of the bytes ``fn`` accesses on one item (None where it gives none).

    Lowers ``fn`` for one item's shapes (no compilation, no data), so it can run
    while the batch is being traced.
    """

    def one(arg: Any, axis: int | None) -> Any:
        def spec(leaf: Any) -> Any:
            shape = leaf.shape[1:] if axis == 0 else leaf.shape
            return jax.ShapeDtypeStruct(shape, leaf.dtype)

        return jax.tree.map(spec, arg)

    try:
        cost = jax.jit(fn).lower(*map(one, args, in_axes)).cost_analysis()
    except Exception:  # a backend or function the cost model cannot handle: chunk the batch
        return None
    if isinstance(cost, list | tuple):  # older JAX: one dict per computation
        cost = cost[0] if cost else None
    value = (cost or {}).get("bytes accessed")
    return None if value is None else float(value)


def chunked_vmap(
    fn: Callable, in_axes: Sequence[int | None], whole_if_light: bool = False
) -> Callable:
    """``jax.vmap(fn, in_axes)``, computed ``chunk_size()`` items at a time.

    Same results as the vmap (up to float rounding: XLA may vectorise a chunk
    differently from the whole batch). ``in_axes`` holds 0 (batched on the
    leading axis) or None (shared) per positional argument. With
    ``whole_if_light``, items light enough (:data:`WHOLE_BATCH_MAX_BYTES`) are
    vmapped whole on CPU too.
    """
    in_axes = tuple(in_axes)
    if any(axis not in (0, None) for axis in in_axes):
        raise ValueError(f"in_axes entries must be 0 or None, not {in_axes}")
    whole = jax.vmap(fn, in_axes=in_axes)

    def mapped(*args: Any) -> Any:
        batched = [a for a, axis in zip(args, in_axes, strict=True) if axis == 0]
        n = jax.tree.leaves(batched)[0].shape[0]
        chunk = chunk_size()
        if chunk is None or n <= chunk:
            return whole(*args)
        if whole_if_light:
            cost = item_bytes(fn, args, in_axes)
            if cost is not None and cost <= WHOLE_BATCH_MAX_BYTES:
                return whole(*args)

        def one(items: list) -> Any:
            it = iter(items)
            return fn(
                *(next(it) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True))
            )

        return jax.lax.map(one, batched, batch_size=chunk)

    return mapped
