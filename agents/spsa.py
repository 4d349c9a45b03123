"""Antithetic perturbation gradient estimates (SPSA / evolution-strategies style)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def antithetic_gradient(
    loss: Callable[[np.ndarray], float],
    theta: np.ndarray,
    scale: np.ndarray | float,
    directions: np.ndarray,
) -> tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
    """Estimate grad L(theta) from antithetic probe pairs theta +- scale * delta.

    With Rademacher directions this is SPSA (Spall 1992, IEEE TAC 37(3)):
    g_i = (L(theta + c delta) - L(theta - c delta)) / (2 c_i delta_i), averaged
    over the pairs; since 1 / delta_i = delta_i for +-1 entries, it is also the
    antithetic ("mirrored") evolution-strategies gradient of the Gaussian- or
    Rademacher-smoothed loss (Salimans et al. 2017, arXiv:1703.03864), i.e. the
    policy gradient of a dithered policy. A large ``scale`` smooths away ripples
    narrower than the probe spacing.

    Args:
        loss: the function to differentiate, one call per probe (2 per pair).
        theta: (d,) the point.
        scale: probe half-width c, a scalar or (d,) per coordinate (c_i > 0).
        directions: (k, d) probe directions, one row per pair: entries +-1 (SPSA), or
            unit axes (then each pair is a central finite difference).
    Returns:
        (d,) the gradient estimate, and the probes as (point, loss) pairs.
    """
    theta = np.asarray(theta, np.float64)
    c = np.broadcast_to(np.asarray(scale, np.float64), theta.shape)
    grad = np.zeros_like(theta)
    probes: list[tuple[np.ndarray, float]] = []
    for delta in np.asarray(directions, np.float64):
        plus, minus = theta + c * delta, theta - c * delta
        l_plus, l_minus = loss(plus), loss(minus)
        probes += [(plus, l_plus), (minus, l_minus)]
        grad += (l_plus - l_minus) / (2.0 * c) * delta
    return grad / len(directions), probes


def rademacher(rng: np.random.Generator, pairs: int, dim: int) -> np.ndarray:
    """(pairs, dim) random +-1 entries."""
    return rng.choice(np.array([-1.0, 1.0]), size=(pairs, dim))
