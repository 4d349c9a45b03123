"""The hybrid agent's scheduler: dither sigma up on plateaus, down on progress; bounded alpha."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DitherScheduler:
    """Adapts the dither scale sigma and the step size alpha from the best loss so far.

    Progress is a new best loss at least ``min_improvement`` (relative) below
    the previous best. On progress sigma shrinks by ``sigma_down`` (exploit
    the basin just found) and alpha grows by ``alpha_up``. After ``patience``
    updates without progress the loss is on a plateau: sigma grows by
    ``sigma_up`` (explore wider) and the count starts again, so a long plateau
    raises sigma step by step. sigma stays in [sigma_min, sigma_max] and alpha
    in [alpha_min, alpha_max]; the Lyapunov monitor shrinks alpha through
    :meth:`shrink_alpha`. The rule is the 1/5th-success idea of evolution
    strategies (Rechenberg 1973) turned around: there, success widens the
    search; here the gradient exploits success and dither is for escaping.

    Every change is appended to ``events`` as a dict.
    """

    sigma: float = 0.02
    alpha: float = 0.1
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    alpha_min: float = 1e-3
    alpha_max: float = 0.3
    sigma_up: float = 2.0
    sigma_down: float = 0.5
    alpha_up: float = 2.0
    patience: int = 5
    min_improvement: float = 0.01
    best: float = float("inf")
    stalled: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min <= self.sigma_max or not 0 < self.alpha_min <= self.alpha_max:
            raise ValueError("need 0 < sigma_min <= sigma_max and 0 < alpha_min <= alpha_max")
        self.sigma = min(max(self.sigma, self.sigma_min), self.sigma_max)
        self.alpha = min(max(self.alpha, self.alpha_min), self.alpha_max)

    def update(self, loss: float, query: int = 0) -> str | None:
        """Observe the best loss after one update; returns "progress", "plateau" or None.

        The first observation sets the baseline.
        """
        if self.best == float("inf"):
            self.best = loss
            return None
        if loss < self.best - self.min_improvement * abs(self.best):
            self.best, self.stalled = loss, 0
            self.sigma = max(self.sigma * self.sigma_down, self.sigma_min)
            self.alpha = min(self.alpha * self.alpha_up, self.alpha_max)
            self._log("progress", query, loss)
            return "progress"
        self.best = min(self.best, loss)
        self.stalled += 1
        if self.stalled >= self.patience:
            self.stalled = 0
            self.sigma = min(self.sigma * self.sigma_up, self.sigma_max)
            self._log("plateau", query, loss)
            return "plateau"
        return None

    def cap_alpha(self, ceiling: float) -> None:
        """Lower alpha's upper bound to ``ceiling`` (not below ``alpha_min``) and clip alpha."""
        self.alpha_max = max(float(ceiling), self.alpha_min)
        self.alpha = min(self.alpha, self.alpha_max)

    def shrink_alpha(self, factor: float, query: int = 0) -> None:
        """Scale alpha down by ``factor`` in (0, 1), not below ``alpha_min``."""
        self.alpha = max(self.alpha * factor, self.alpha_min)

    def _log(self, event: str, query: int, loss: float) -> None:
        self.events.append(
            {"query": query, "event": event, "loss": loss, "alpha": self.alpha, "sigma": self.sigma}
        )
