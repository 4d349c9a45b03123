"""What every agent returns after working on one episode."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SolveResult:
    """Outcome of one agent run on one env episode.

    ``steps`` counts env steps (each one plant query); ``distances`` holds the
    task distance after every step, for loss curves.
    """

    success: bool
    steps: int
    final_distance: float
    best_distance: float
    best_action: np.ndarray
    param_error: float | None = None
    distances: list[float] = field(default_factory=list)
