"""Which two patches to compare next, and which patch is best so far, from the votes.

The contract the web app and the benchmarks rely on: a :class:`PreferenceSearch` is a
pure function of its seed and the votes so far. Nothing else is kept between calls, so a
session that saves its votes resumes exactly (after a restart, a crash or an undo) by
asking again with the same votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Outcome = Literal["a", "b", "both_bad"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


@dataclass(frozen=True)
class Vote:
    """One answer: patches ``a`` and ``b`` (unit knob positions in [0, 1]^d) and the choice."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    outcome: Outcome

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"a vote is one of {OUTCOMES}, not {self.outcome!r}")
        if len(self.a) != len(self.b) or not self.a:
            raise ValueError("a vote compares two patches with the same number of knobs")
        for patch in (self.a, self.b):
            if not all(np.isfinite(patch)) or min(patch) < 0.0 or max(patch) > 1.0:
                raise ValueError(f"knob positions must be finite and in [0, 1], got {patch}")


class PreferenceSearch:
    """Proposes pairs and names the best patch; deterministic for (seed, votes).

    This first version proposes the incumbent (the patch with the most net wins) against
    a random patch; it is the baseline the learned-model search is measured against.
    """

    def __init__(self, n_knobs: int, seed: int = 0) -> None:
        if n_knobs < 1:
            raise ValueError(f"n_knobs must be >= 1, got {n_knobs}")
        self.n_knobs = int(n_knobs)
        self.seed = int(seed)

    def _rng(self, votes: Sequence[Vote]) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(votes)])

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        """The next two patches to compare, (d,) unit positions each."""
        rng = self._rng(votes)
        challenger = rng.uniform(size=self.n_knobs)
        if not votes:
            return rng.uniform(size=self.n_knobs), challenger
        return self.best(votes), challenger

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The best patch so far (d,): the one with most net wins; mid travel with no votes."""
        if not votes:
            return np.full(self.n_knobs, 0.5)
        score: dict[tuple[float, ...], int] = {}
        for vote in votes:
            win = {"a": (1, -1), "b": (-1, 1), "both_bad": (-1, -1)}[vote.outcome]
            score[vote.a] = score.get(vote.a, 0) + win[0]
            score[vote.b] = score.get(vote.b, 0) + win[1]
        return np.asarray(max(score, key=lambda patch: score[patch]))

    def utility(self, votes: Sequence[Vote], points: np.ndarray) -> np.ndarray:
        """The estimated utility of ``points`` (m, d): here minus the distance to the best."""
        return -np.linalg.norm(np.asarray(points) - self.best(votes), axis=-1)
