"""An ideal-point search: the listener has a sound in mind; find it from A/B votes.

The model (Coombs' "unfolding", with a Bradley-Terry choice): the listener prefers the
patch whose *sound* lies closer to an ideal sound t, i.e. a vote "a" has probability

    p(a | t, beta, lapse) = lapse + (1 - 2 lapse) * sigmoid(beta * (D(b, t) - D(a, t)))

with D the distance between sound descriptors
(:class:`~ddsp_gym.preference.sound_features.SoundFeatures`), ``beta`` how sharply the
listener tells distances apart and ``lapse`` the share of inattentive votes (so a few
flipped votes never rule a sound out). "both_bad" says each of the two patches is
farther from t than a typical patch (distance 1 in the descriptors' units).

The ideal is assumed to be *reachable*: one of the synth's own sounds, t = phi(k) for
some knob setting k. The posterior over k is kept on particles (weighted knob
settings): a random set fixed by the seed, every heard patch, and patches sampled
near the most probable particles, reweighted by the votes; beta and lapse are summed
out over small grids (their evidence weighs them). That is a 4-parameter question for
a 4-knob synth, which is why tens of votes can answer it, where a Gaussian process over
the knob box (:mod:`ddsp_gym.preference.model`) must learn a whole surface.

Next pair, among the most probable particles at least ``min_gap`` apart (every patch
shown is a plausible optimum, and no two sound alike): by default ("improve") the best
patch against the one of highest expected gain in similarity to t over it; or ("info")
the pair whose vote has the largest expected information gain about t (mutual
information of the vote and t; "BALD", Houlsby et al. 2011). Best patch: the particle
of least posterior-expected distance to t, heard or not.

Measured on the simulated rater (docs/preference.md), it did worse than the GP: far
from the target the descriptors' distance separates patches less well than the rater's
own, so the particles next to the first winners explain the votes best and the
posterior settles there. It is kept as an opt-in strategy, not a default.

The search is a pure function of (seed, votes): the particles and their weights are
recomputed from the votes on every call (a few hundred renders, cached by knobs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp

from ddsp_gym.preference.search import PairSearch, Vote

BETAS: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
SCALES: tuple[float, ...] = (0.25, 0.5, 1.0)
LAPSES: tuple[float, ...] = (0.02, 0.1)
N_MASS = 256  # the most probable particles the information gain is computed over
TYPICAL_DISTANCE = 1.0  # SoundFeatures' unit: the median distance of two random patches


class IdealPointSearch(PairSearch):
    """Pairs by expected information about the listener's ideal sound (module docstring).

    Args:
        features: unit knobs (m, d) -> sound descriptors (m, k); or give ``plant`` (and
            ``plant_config``) to describe that sim plant's renders.
        n_particles: the fixed random particles (rendered once per session).
        n_refine, refine_per, refine_scales: each call adds ``refine_per`` patches near
            each of the ``n_refine`` most probable particles, per scale (of the travel).
        n_pool: the most probable particles the pair is chosen among.
        betas, lapses: the grids summed over.
    """

    def __init__(
        self,
        n_knobs: int,
        seed: int = 0,
        *,
        features: Callable[[np.ndarray], np.ndarray] | None = None,
        plant: str | None = None,
        plant_config: Mapping[str, Any] | None = None,
        n_particles: int = 1500,
        n_refine: int = 8,
        refine_per: int = 16,
        refine_scales: tuple[float, ...] = (0.02, 0.06),
        n_pool: int = 40,
        betas: tuple[float, ...] = BETAS,
        lapses: tuple[float, ...] = LAPSES,
        scales: tuple[float, ...] = SCALES,
        min_gap: float = 0.25,
        pairing: str = "improve",
    ) -> None:
        super().__init__(n_knobs, seed)
        if features is None:
            if plant is None:
                raise ValueError("the ideal-point search needs sound features or a plant")
            from ddsp_gym.preference.sound_features import SoundFeatures

            features = SoundFeatures(plant, plant_config)
        if getattr(features, "n_knobs", n_knobs) != n_knobs:
            raise ValueError(
                f"the features describe {features.n_knobs}-knob patches, not {n_knobs}"
            )
        if min(n_particles, n_pool) < 2 or not betas or not lapses:
            raise ValueError("need >= 2 particles and pool patches and non-empty grids")
        if min(betas) <= 0 or not all(0.0 <= lapse < 0.5 for lapse in lapses):
            raise ValueError(f"betas must be > 0 and lapses in [0, 0.5), got {betas}, {lapses}")
        self.features = features
        self.n_particles, self.n_pool = int(n_particles), int(n_pool)
        self.n_refine, self.refine_per = int(n_refine), int(refine_per)
        self.refine_scales = tuple(float(s) for s in refine_scales)
        self.betas = np.asarray(betas, np.float64)
        self.lapses = np.asarray(lapses, np.float64)
        self.scales = np.asarray(scales, np.float64)
        self.min_gap = float(min_gap)
        if pairing not in ("improve", "info"):
            raise ValueError(f"pairing is 'improve' or 'info', not {pairing!r}")
        self.pairing = pairing
        self._base = np.random.default_rng([self.seed, 2**31]).uniform(
            size=(self.n_particles, self.n_knobs)
        )
        # votes -> (particles, weights, the choice-model setting of highest evidence)
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # ---- the posterior ---------------------------------------------------------------

    def _log_weights(self, particles: np.ndarray, votes: tuple[Vote, ...]) -> np.ndarray:
        """Log posterior weight of each particle, the grid summed out, (M,)."""
        return logsumexp(self._loglik(particles, votes), axis=0)

    def _loglik(self, particles: np.ndarray, votes: tuple[Vote, ...]) -> np.ndarray:
        """Log likelihood of the votes (G, M) for each grid setting and particle."""
        if not votes:
            return np.zeros((len(self._grid()), len(particles)))
        heard: dict[tuple[float, ...], int] = {}
        for v in votes:
            for patch in (v.a, v.b):
                heard.setdefault(tuple(map(float, patch)), len(heard))
        heard_knobs = np.array(list(heard))
        # D[i, m]: distance of heard patch i's sound from particle m's.
        dist = _distances(self.features(heard_knobs), self.features(particles))
        gaps, sure_bad = [], []  # a comparison's D(loser) - D(winner); "both_bad" rows
        for v in votes:
            i, j = heard[tuple(map(float, v.a))], heard[tuple(map(float, v.b))]
            if v.outcome == "both_bad":
                sure_bad += [(dist[i], dist[i]), (dist[j], dist[j])]
            elif i != j:
                win, lose = (i, j) if v.outcome == "a" else (j, i)
                gaps.append((dist[win], dist[lose]))
        n_cmp = len(gaps)
        rows = np.array(gaps + sure_bad).reshape(-1, 2, len(particles))  # (rows, 2, M)
        grid = self._grid()  # (G, 3): beta, scale, lapse
        beta, scale, lapse = (grid[:, k, None, None] for k in range(3))
        # Similarity to the ideal decays exponentially with distance (Shepard's law).
        sim = np.exp(-rows[None] / scale[..., None])  # (G, rows, 2, M)
        sim[:, n_cmp:, 0] = np.exp(-TYPICAL_DISTANCE / scale)  # "both_bad": typical wins
        z = beta * (sim[:, :, 0] - sim[:, :, 1])
        loglik = np.log(lapse + (1.0 - 2.0 * lapse) * expit(z)).sum(axis=1)  # (G, M)
        return loglik

    def _grid(self) -> np.ndarray:
        return (
            np.array(np.meshgrid(self.betas, self.scales, self.lapses, indexing="ij"))
            .reshape(3, -1)
            .T
        )

    def posterior(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        """Particles (M, d) and their normalized posterior weights (M,); cached."""
        return self._fitted(self._check(votes))[:2]

    def _fitted(self, votes: tuple[Vote, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Keyed by the votes' values, so an undo and another vote never see stale answers.
        key = tuple((tuple(map(float, v.a)), tuple(map(float, v.b)), v.outcome) for v in votes)
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._posterior(votes)
        return self._cache[key]

    def _posterior(self, votes: tuple[Vote, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        heard = np.array([p for v in votes for p in (v.a, v.b)], np.float64).reshape(
            -1, self.n_knobs
        )
        particles = np.concatenate([self._base, heard])
        if votes:  # refine: sample near the most probable particles, then reweigh all
            logw = self._log_weights(particles, votes)
            top = particles[np.argsort(logw)[::-1][: self.n_refine]]
            rng = self._rng(votes)
            near = [np.repeat(top, self.refine_per, 0)
                    + s * rng.standard_normal((len(top) * self.refine_per, self.n_knobs))
                    for s in self.refine_scales]  # fmt: skip
            particles = np.concatenate([particles, np.clip(np.concatenate(near), 0.0, 1.0)])
        particles = np.unique(particles, axis=0)  # a patch heard twice is one hypothesis
        loglik = self._loglik(particles, votes)
        logw = logsumexp(loglik, axis=0)
        weights = np.exp(logw - logw.max())
        # The setting the votes favour (highest evidence), for ranking pairs.
        setting = self._grid()[int(np.argmax(logsumexp(loglik, axis=1)))]
        return particles, weights / weights.sum(), setting

    # ---- the answers -----------------------------------------------------------------

    def _setting_of(self, votes: tuple[Vote, ...]) -> np.ndarray:
        return self._fitted(votes)[2]

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        votes = self._check(votes)
        particles, weights = self.posterior(votes)
        rng = self._rng(votes)
        # Ties (no votes yet: all weights equal) broken at random, by the seed.
        order = np.lexsort((rng.uniform(size=len(weights)), -weights))
        # Only the particles that carry the posterior mass matter for the gain.
        mass = order[:N_MASS]  # the gain need not be exact: it ranks pairs
        w = weights[mass] / weights[mass].sum()
        # The pool: the most probable particles, each at least ``min_gap`` from those
        # before it. A listener cannot tell near-identical sounds apart, whatever the model
        # believes, and a coin-flip vote between them misleads it.
        feats = self.features(particles[order])
        pool: list[int] = []
        for k in range(len(order)):
            if not pool or _distances(feats[k : k + 1], feats[pool]).min() >= self.min_gap:
                pool.append(k)
                if len(pool) == self.n_pool:
                    break
        dist = _distances(feats[pool], self.features(particles[mass]))
        if self.pairing == "info" or not votes:
            gain = _information_gain(dist, w, *self._setting_of(votes))
            gain[np.eye(len(pool), dtype=bool)] = -np.inf
            i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
            return particles[order[pool[i]]].copy(), particles[order[pool[j]]].copy()
        # "improve": the best patch against the pool patch of highest expected gain in
        # similarity to the ideal over it, E[max(0, sim(x, t) - sim(best, t))].
        best = self.best(votes)
        _, scale, _ = self._setting_of(votes)
        sim = np.exp(-dist / scale)
        sim_best = np.exp(
            -_distances(self.features(best[None]), self.features(particles[mass])) / scale
        )
        gain = np.maximum(sim - sim_best, 0.0) @ w
        gain[_distances(feats[pool], self.features(best[None]))[:, 0] < self.min_gap] = -np.inf
        return best, particles[order[pool[int(np.argmax(gain))]]].copy()

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The particle of least posterior-expected distance to the ideal; mid travel
        before any vote."""
        votes = self._check(votes)
        if not votes:
            return np.full(self.n_knobs, 0.5)
        particles, weights = self.posterior(votes)
        order = np.argsort(weights)[::-1]
        mass = order[: int(np.searchsorted(np.cumsum(weights[order]), 0.999)) + 1]
        pool = order[: self.n_pool]
        dist = _distances(self.features(particles[pool]), self.features(particles[mass]))
        expected = dist @ (weights[mass] / weights[mass].sum())
        return particles[pool[int(np.argmin(expected))]].copy()

    def utility(self, votes: Sequence[Vote], points: np.ndarray) -> np.ndarray:
        """Minus the posterior-expected sound distance of ``points`` (m, d) from the ideal
        (0 would be certainly the ideal; -1 is as far as a typical random patch)."""
        points = np.atleast_2d(np.asarray(points, np.float64))
        if points.shape[-1] != self.n_knobs:
            raise ValueError(f"points must be (m, {self.n_knobs}), got {points.shape}")
        particles, weights = self.posterior(votes)
        order = np.argsort(weights)[::-1]
        mass = order[: int(np.searchsorted(np.cumsum(weights[order]), 0.999)) + 1]
        dist = _distances(self.features(points), self.features(particles[mass]))
        return -(dist @ (weights[mass] / weights[mass].sum()))


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, m) between rows of ``x`` (n, k) and ``y`` (m, k)."""
    sq = np.sum(x**2, 1)[:, None] + np.sum(y**2, 1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(sq, 0.0))


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return -(p * np.log(p) + (1.0 - p) * np.log1p(-p))


def _information_gain(
    dist: np.ndarray, weights: np.ndarray, beta: float, scale: float, lapse: float
) -> np.ndarray:
    """Mutual information (C, C) of a vote on pair (i, j) and the ideal, under particle
    ``weights`` (M,), with ``dist`` (C, M) the candidates' distances from each particle,
    at one setting of the choice model (the votes' most likely)."""
    sim = np.exp(-dist / scale)
    p = lapse + (1.0 - 2.0 * lapse) * expit(beta * (sim[:, None, :] - sim[None, :, :]))
    marginal = p @ weights
    return _entropy(marginal) - _entropy(p) @ weights
