"""Which two patches to compare next, and which patch is best so far, from the votes.

The contract the web app and the benchmarks rely on: a :class:`PreferenceSearch` is a
pure function of its seed and the votes so far. Nothing else is kept between calls, so a
session that saves its votes resumes exactly (after a restart, a crash or an undo) by
asking again with the same votes.

Three strategies, compared by the simulated-rater benchmark (``ddsp-gym bench prefer``,
results/prefer_bench.md; docs/preference.md):

* ``"model"`` (the default, :class:`ModelPairSearch`): a Gaussian-process preference
  model (:mod:`ddsp_gym.preference.model`) fit on all the votes; after 8 pairs of
  random patches, the pair is the incumbent (the heard patch the model rates best)
  against the candidate with the highest expected improvement over it, among random
  patches and patches near the incumbent. The best patch is the incumbent. Given a
  sim ``plant`` (or ``features``), its kernel measures distance between the candidates'
  *sounds* (:mod:`ddsp_gym.preference.sound_features`) instead of their knob positions.
* ``"cma"`` (:class:`CMAPairSearch`): plain CMA-ES (Hansen's ``cma``) with a population
  of two, each vote ranking its pair; the best patch is the distribution's mean.
* ``"random"`` (:class:`RandomPairSearch`): the incumbent by net wins against a random
  patch; the naive baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from scipy.stats import norm

Outcome = Literal["a", "b", "both_bad"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

# The kernel length scales (of the knob travel) the search's model chooses among by the
# evidence. Shorter than the model's own defaults: a taste defined by a distance between
# sounds falls off sharply from its peak (utility 0.8 at 0.03 of one knob's travel, on the
# benchmark's synth, a probe on 4 seeds), and a model limited to 0.15+ smooths it away.
LENGTH_SCALES: tuple[float, ...] = (0.05, 0.1, 0.15, 0.25, 0.4)
# The same in sound space (:mod:`ddsp_gym.preference.sound_features`, where two random
# patches lie 1 apart, median).
SOUND_LENGTH_SCALES: tuple[float, ...] = (0.1, 0.2, 0.35, 0.6, 1.0)


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


class PairSearch:
    """What every strategy answers; each is a pure function of (seed, votes)."""

    def __init__(self, n_knobs: int, seed: int = 0) -> None:
        if n_knobs < 1:
            raise ValueError(f"n_knobs must be >= 1, got {n_knobs}")
        self.n_knobs = int(n_knobs)
        self.seed = int(seed)

    def _rng(self, votes: Sequence[Vote]) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(votes)])

    def _check(self, votes: Sequence[Vote]) -> tuple[Vote, ...]:
        votes = tuple(votes)
        for i, vote in enumerate(votes):
            if not isinstance(vote, Vote):
                raise TypeError(f"votes[{i}] is a {type(vote).__name__}, not a Vote")
            if len(vote.a) != self.n_knobs:
                raise ValueError(
                    f"votes[{i}] compares {len(vote.a)}-knob patches, not {self.n_knobs}"
                )
        return votes

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        """The next two patches to compare, (d,) unit positions each."""
        raise NotImplementedError

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The best patch so far (d,)."""
        raise NotImplementedError

    def utility(self, votes: Sequence[Vote], points: np.ndarray) -> np.ndarray:
        """The estimated utility of ``points`` (m, d) -> (m,)."""
        return -np.linalg.norm(np.atleast_2d(points) - self.best(votes), axis=-1)


class RandomPairSearch(PairSearch):
    """The naive baseline: the incumbent (most net wins) against a random patch.

    Its utility estimate is minus the distance to the incumbent.
    """

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        votes = self._check(votes)
        rng = self._rng(votes)
        challenger = rng.uniform(size=self.n_knobs)
        if not votes:
            return rng.uniform(size=self.n_knobs), challenger
        return self.best(votes), challenger

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The patch with most net wins ("both_bad" costs both a win); mid travel with no votes."""
        votes = self._check(votes)
        if not votes:
            return np.full(self.n_knobs, 0.5)
        score: dict[tuple[float, ...], int] = {}
        for vote in votes:
            win = {"a": (1, -1), "b": (-1, 1), "both_bad": (-1, -1)}[vote.outcome]
            a, b = tuple(map(float, vote.a)), tuple(map(float, vote.b))
            score[a] = score.get(a, 0) + win[0]
            score[b] = score.get(b, 0) + win[1]
        return np.asarray(max(score, key=lambda patch: score[patch]))


class CMAPairSearch(PairSearch):
    """Plain CMA-ES on the votes: a population of two, each vote ranks its pair.

    The state is rebuilt by replaying the votes (ask, then tell the voted pair with
    the winner ranked first; "both_bad" ties them), so it stays a pure function of
    (seed, votes). The best patch is the search distribution's mean.
    """

    def __init__(self, n_knobs: int, seed: int = 0, *, sigma0: float = 0.25) -> None:
        super().__init__(n_knobs, seed)
        self.sigma0 = float(sigma0)

    def _replay(self, votes: tuple[Vote, ...]) -> Any:
        import cma

        es = cma.CMAEvolutionStrategy(
            np.full(self.n_knobs, 0.5),
            self.sigma0,
            {"popsize": 2, "bounds": [0.0, 1.0], "seed": self.seed + 1, "verbose": -9},
        )
        for vote in votes:
            with warnings.catch_warnings():  # told the asked pair: not an "injection"
                warnings.simplefilter("ignore", cma.evolution_strategy.InjectionWarning)
                es.ask()  # advances the sampler exactly as the live session did
            loss = {"a": (0.0, 1.0), "b": (1.0, 0.0), "both_bad": (1.0, 1.0)}[vote.outcome]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cma.evolution_strategy.InjectionWarning)
                es.tell([np.asarray(vote.a), np.asarray(vote.b)], list(loss))
        return es

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._replay(self._check(votes)).ask()
        return np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        return np.clip(self._replay(self._check(votes)).mean, 0.0, 1.0)


class ModelPairSearch(PairSearch):
    """The learned search: a GP preference model, incumbent vs upper confidence bound.

    Both acquisitions score a candidate x by the posterior of f(x) - f(incumbent), the
    quantity the vote measures (near the incumbent it is certain, so the pair is never
    two near-identical sounds).

    Args:
        acquisition: "ei" (expected improvement over the incumbent) or "ucb" (mean
            gain + ``beta`` * its standard deviation).
        beta: exploration weight of "ucb".
        n_random, n_local: random candidate patches, and patches near the incumbent
            (Gaussian, scales ``local_scales`` of the travel), among which the challenger
            is chosen.
        n_initial: votes on pairs of random patches before the model picks pairs (8: a
            wider first look than 4 found the peak's neighbourhood more often in the
            benchmark, docs/preference.md).
        amplitudes: the kernel amplitudes the evidence chooses among (default the
            model's :data:`~ddsp_gym.preference.model.AMPLITUDES`).
        length_scales: the kernel length scales the evidence chooses among
            (:data:`LENGTH_SCALES`).
        best_from: "heard" (the best patch is a patch the listener heard: the heard
            patch of highest posterior mean) or "model" (the candidate of highest mean).
        plant, plant_config: a sim plant whose renders' sound descriptors
            (:class:`~ddsp_gym.preference.sound_features.SoundFeatures`) the kernel
            measures distance in; ``features`` gives such a map (unit knobs (m, d) ->
            (m, k)) directly. Default (neither): the knob positions themselves.
        lapse: the share of A/B votes the model takes as coin tosses
            (:func:`~ddsp_gym.preference.model.fit`); 0, the plain logistic model, by
            default.
        challenge_heard: also offer every heard patch as the challenger, so a patch
            that won once against a weak one can meet the incumbent (off by default).
    """

    def __init__(
        self,
        n_knobs: int,
        seed: int = 0,
        *,
        acquisition: Literal["ei", "ucb"] = "ei",
        beta: float = 1.0,
        n_random: int = 1000,
        n_local: int = 300,
        local_scales: tuple[float, ...] = (0.03, 0.1, 0.25),
        best_from: Literal["heard", "model"] = "heard",
        n_initial: int = 8,
        amplitudes: tuple[float, ...] | None = None,
        length_scales: tuple[float, ...] | None = None,
        plant: str | None = None,
        plant_config: Mapping[str, Any] | None = None,
        features: Callable[[np.ndarray], np.ndarray] | None = None,
        lapse: float = 0.0,
        challenge_heard: bool = False,
    ) -> None:
        super().__init__(n_knobs, seed)
        if not 0.0 <= lapse < 1.0:
            raise ValueError(f"lapse must be in [0, 1), got {lapse}")
        self.lapse = float(lapse)
        self.challenge_heard = bool(challenge_heard)
        if features is None and plant is not None:
            from ddsp_gym.preference.sound_features import SoundFeatures

            features = SoundFeatures(plant, plant_config)
        if features is not None and getattr(features, "n_knobs", n_knobs) != n_knobs:
            raise ValueError(
                f"the features describe {features.n_knobs}-knob patches, not {n_knobs}"
            )
        self.features = features
        if length_scales is None:
            length_scales = LENGTH_SCALES if features is None else SOUND_LENGTH_SCALES
        if acquisition not in ("ei", "ucb"):
            raise ValueError(f"acquisition is 'ei' or 'ucb', not {acquisition!r}")
        self.acquisition = acquisition
        if best_from not in ("heard", "model"):
            raise ValueError(f"best_from is 'heard' or 'model', not {best_from!r}")
        self.beta = float(beta)
        self.n_random, self.n_local = int(n_random), int(n_local)
        self.local_scales = tuple(float(s) for s in local_scales)
        self.best_from = best_from
        self.n_initial = int(n_initial)
        self.amplitudes = tuple(amplitudes) if amplitudes else None
        self.length_scales = tuple(float(s) for s in length_scales)
        if not self.length_scales or min(self.length_scales) <= 0:
            raise ValueError(f"length_scales must be positive, got {length_scales}")
        self._cache: dict[tuple, Any] = {}

    def model(self, votes: Sequence[Vote]) -> Any:
        """The preference model fit on ``votes`` (cached; a pure function of the votes)."""
        from ddsp_gym.preference.model import fit

        votes = self._check(votes)
        # Keyed by value (a vote's patches may be lists, which do not hash).
        key = tuple((tuple(map(float, v.a)), tuple(map(float, v.b)), v.outcome) for v in votes)
        if key not in self._cache:
            if len(self._cache) > 8:  # a session asks about its last few vote lists only
                self._cache.pop(next(iter(self._cache)))
            options: dict[str, Any] = {"length_scales": self.length_scales,
                                       "embed": self.features}  # fmt: skip
            if self.amplitudes:
                options["amplitudes"] = self.amplitudes
            if self.lapse:
                options["lapse"] = self.lapse
            self._cache[key] = fit(votes, self.n_knobs, **options)
        return self._cache[key]

    def _incumbent(self, votes: tuple[Vote, ...]) -> np.ndarray:
        model = self.model(votes)
        return model.points[int(np.argmax(model.latent))]

    def _candidates(self, votes: tuple[Vote, ...], center: np.ndarray) -> np.ndarray:
        rng = self._rng(votes)
        near = [center + scale * rng.standard_normal((self.n_local, self.n_knobs))
                for scale in self.local_scales]  # fmt: skip
        if self.features is None:
            spread = rng.uniform(size=(self.n_random, self.n_knobs))
        else:
            # One random set per session (a function of the seed): its sounds are
            # rendered once and cached, so each pair renders only the local patches.
            spread = np.random.default_rng([self.seed, 2**31]).uniform(
                size=(self.n_random, self.n_knobs)
            )
        return np.clip(np.concatenate([spread, *near]), 0, 1)

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        votes = self._check(votes)
        if len(votes) < max(self.n_initial, 1):  # a first look around the whole box
            rng = self._rng(votes)
            return rng.uniform(size=self.n_knobs), rng.uniform(size=self.n_knobs)
        from ddsp_gym.preference.model import one_blas_thread

        model = self.model(votes)
        incumbent = self._incumbent(votes)
        candidates = self._candidates(votes, incumbent)
        if self.challenge_heard:
            candidates = np.concatenate([model.points, candidates])
        with one_blas_thread():
            gain, spread = model.difference(candidates, incumbent)
        if self.acquisition == "ucb":
            score = gain + self.beta * spread
        else:  # expected improvement over the incumbent, E[max(0, f(x) - f(incumbent))]
            z = gain / np.maximum(spread, 1e-12)
            score = gain * norm.cdf(z) + spread * norm.pdf(z)
        # Never the incumbent against itself: a vote on one sound twice says nothing.
        score[np.linalg.norm(candidates - incumbent, axis=1) < 1e-3] = -np.inf
        return incumbent.copy(), candidates[int(np.argmax(score))]

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The heard patch of highest posterior mean (or the best candidate, with
        ``best_from="model"``); mid travel with no votes."""
        votes = self._check(votes)
        if not votes:
            return np.full(self.n_knobs, 0.5)
        incumbent = self._incumbent(votes)
        if self.best_from == "heard":
            return incumbent.copy()
        candidates = np.concatenate([self._candidates(votes, incumbent), incumbent[None]])
        return candidates[int(np.argmax(self.model(votes).mean(candidates)))]

    def utility(self, votes: Sequence[Vote], points: np.ndarray) -> np.ndarray:
        """The model's posterior mean utility of ``points`` (m, d) (0 = a typical patch)."""
        points = np.atleast_2d(np.asarray(points, np.float64))
        if points.shape[-1] != self.n_knobs:
            raise ValueError(f"points must be (m, {self.n_knobs}), got {points.shape}")
        return self.model(votes).mean(points)


STRATEGIES: dict[str, type[PairSearch]] = {
    "model": ModelPairSearch,
    "cma": CMAPairSearch,
    "random": RandomPairSearch,
}


class PreferenceSearch:
    """Proposes pairs and names the best patch; deterministic for (seed, votes).

    ``strategy`` picks how (:data:`STRATEGIES`): "model" (default, the learned search),
    "cma" or "random" (the baselines); other keyword options go to that strategy.
    """

    def __init__(
        self, n_knobs: int, seed: int = 0, *, strategy: str = "model", **options: Any
    ) -> None:
        if strategy == "ideal":  # imported here: ideal.py builds on this module
            from ddsp_gym.preference.ideal import IdealPointSearch

            impl: type[PairSearch] = IdealPointSearch
        elif strategy in STRATEGIES:
            impl = STRATEGIES[strategy]
        else:
            known = sorted([*STRATEGIES, "ideal"])
            raise ValueError(f"unknown strategy {strategy!r}; known: {known}")
        self.strategy = strategy
        self.impl = impl(n_knobs, seed, **options)
        self.n_knobs, self.seed = self.impl.n_knobs, self.impl.seed

    def next_pair(self, votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
        """The next two patches to compare, (d,) unit positions each."""
        return self.impl.next_pair(votes)

    def best(self, votes: Sequence[Vote]) -> np.ndarray:
        """The best patch so far (d,); mid travel (or the strategy's start) with no votes."""
        return self.impl.best(votes)

    def utility(self, votes: Sequence[Vote], points: np.ndarray) -> np.ndarray:
        """The estimated utility of ``points`` (m, d) -> (m,)."""
        return self.impl.utility(votes, points)
