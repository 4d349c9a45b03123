"""The hybrid agent's Lyapunov monitor: the loss must fall on average, else roll back."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LyapunovMonitor:
    """Keeps the running mean of (L_{t+1} - L_t) negative; returns to the best theta if not.

    The loss is a Lyapunov-function candidate for the search: a descent method
    should make it decrease on average (cf. the descent condition of line
    search, Nocedal & Wright 2006, ch. 3). Dither makes single steps go uphill,
    so the monitor judges the mean over the last ``window`` steps (which
    telescopes to (L_t - L_{t-window}) / window): when it is not below
    ``-tolerance`` the monitor rolls back. :meth:`observe` then returns the
    best theta seen, and the caller shrinks its step size. The window restarts
    after every rollback.
    """

    window: int = 4
    tolerance: float = 0.0
    best_loss: float = float("inf")
    best_theta: np.ndarray | None = None
    rollbacks: int = 0
    _last: float | None = None
    _deltas: deque = field(default_factory=deque)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, not {self.window}")

    def record_best(self, loss: float, theta: np.ndarray) -> None:
        """Offer a point evaluated off the trajectory (a probe) as a candidate best."""
        if loss < self.best_loss:
            self.best_loss, self.best_theta = float(loss), np.array(theta, np.float64)

    def restart(self) -> None:
        """Forget the trajectory and its best: the search starts over elsewhere."""
        self.best_loss, self.best_theta, self._last = float("inf"), None, None
        self._deltas.clear()

    def observe(self, loss: float, theta: np.ndarray, query: int = 0) -> np.ndarray | None:
        """Observe L at the trajectory's new theta; returns the theta to return to, or None."""
        self.record_best(loss, theta)
        if self._last is not None:
            self._deltas.append(float(loss) - self._last)
        self._last = float(loss)
        if len(self._deltas) < self.window:
            return None
        mean_delta = float(np.mean(self._deltas))
        self._deltas.popleft()
        if mean_delta < -self.tolerance:
            return None
        self.rollbacks += 1
        self._deltas.clear()
        self._last = self.best_loss
        self.events.append(
            {
                "query": query,
                "event": "rollback",
                "mean_delta": mean_delta,
                "loss": float(loss),
                "best_loss": self.best_loss,
            }
        )
        return self.best_theta.copy()
