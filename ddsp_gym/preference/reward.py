"""A reward from a listener's learned taste: RLHF on the knobs (``reward: preference``).

:class:`PreferenceReward` fits the Gaussian-process preference model
(:mod:`ddsp_gym.preference.model`) on a set of votes once, at construction, and rewards
each played patch with the model's mean utility of its knobs. The votes come from a
saved session folder (``session=``, what ``ddsp-gym prefer`` writes), a votes file
(``votes=``), or, by default, a seeded :class:`~ddsp_gym.preference.rater.SimulatedRater`
answering ``n_votes`` pairs of the learned search, so ``gym.make`` works offline.

The reward is normalised so that agents and the registry's checks read it like the
task rewards: 0 at the model's best patch (the highest mean over a dense set of
patches), about -1 at a typical random patch,
``reward = (mu(x) - mu_best) / (mu_best - mu_typical)``. A step succeeds when the
utility is within ``1 - success_fraction`` of the way from typical to best, i.e.
``reward >= success_fraction - 1``; ``distance`` is ``-reward``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ddsp_gym.preference import model as model_lib
from ddsp_gym.preference.search import PreferenceSearch, Vote
from ddsp_gym.rewards import ExternalReward, Rating, Scored


def simulated_votes(
    n_votes: int,
    rater_seed: int,
    search_seed: int,
    plant: str,
    plant_config: Mapping[str, Any],
    task: str,
    temperature: float,
    flip_rate: float,
) -> tuple[Vote, ...]:
    """The votes a seeded simulated rater gives the learned search (a pure function)."""
    return _simulated_votes(n_votes, rater_seed, search_seed, plant,
                            json.dumps(dict(plant_config), sort_keys=True), task, temperature,
                            flip_rate)  # fmt: skip


@functools.lru_cache(maxsize=16)
def _simulated_votes(n_votes, rater_seed, search_seed, plant, plant_config, task, temperature,
                     flip_rate) -> tuple[Vote, ...]:  # fmt: skip
    # Cached: the registry's checks build this env many times with the same defaults.
    from ddsp_gym.preference.rater import SimulatedRater, TimbreUtility

    utility = TimbreUtility(rater_seed, plant, json.loads(plant_config), task)
    rater = SimulatedRater(utility, temperature=temperature, flip_rate=flip_rate, seed=rater_seed)
    search = PreferenceSearch(utility.n_knobs, search_seed)
    votes: list[Vote] = []
    for _ in range(n_votes):
        votes.append(rater.vote(*search.next_pair(votes)))
    return tuple(votes)


class PreferenceReward(ExternalReward):
    """Reward = the learned preference model's utility of the played patch (normalised).

    Args (all YAML-able, for ``reward: {source: preference, ...}``):
        session: a session folder (``votes.jsonl`` inside) to learn from.
        votes: a votes file (``.jsonl``, one vote per line, or a ``.json`` list).
        n_votes, rater_seed, search_seed, temperature, flip_rate: the simulated rater
            used when neither is given (its hidden taste: a target timbre on ``plant``).
            ``search_seed`` defaults to ``rater_seed + 1000``: a search seeded like the
            taste draws the hidden target among its first random pairs
            (docs/preference.md, "A leak").
        plant, plant_config, task: the simulated rater's synth and its timbre distance;
            match the env's plant.
        success_fraction: success when the utility is this fraction of the way from a
            typical patch's to the model's best.
    """

    def __init__(
        self,
        session: str | None = None,
        votes: str | None = None,
        *,
        n_votes: int = 40,
        rater_seed: int = 0,
        search_seed: int | None = None,
        temperature: float = 0.05,
        flip_rate: float = 0.05,
        plant: str = "subtractive",
        plant_config: Mapping[str, Any] | None = None,
        task: str = "subtractive_patch",
        success_fraction: float = 0.9,
    ) -> None:
        if session is not None and votes is not None:
            raise ValueError("give session= or votes=, not both")
        if not 0.0 < success_fraction <= 1.0:
            raise ValueError(f"success_fraction must be in (0, 1], got {success_fraction}")
        from ddsp_gym.preference.session import session_votes
        from ddsp_gym.preference.votes import load_votes

        if session is not None:
            self.votes = tuple(session_votes(session))
        elif votes is not None:
            self.votes = tuple(load_votes(votes))
        else:
            config = {"oscillator_knobs": False} if plant_config is None else plant_config
            if search_seed is None:
                search_seed = rater_seed + 1000
            self.votes = simulated_votes(n_votes, rater_seed, search_seed, plant, config, task,
                                         temperature, flip_rate)  # fmt: skip
        if not self.votes:
            raise ValueError("a preference reward needs at least one vote")
        self.n_knobs = len(self.votes[0].a)
        self.success_fraction = float(success_fraction)
        self.model = model_lib.fit(self.votes, self.n_knobs)
        self.best_knobs, self.best_utility, self.typical_utility = _reference_levels(self.model)
        self._unit_knobs: np.ndarray | None = None

    def utility(self, unit_knobs: np.ndarray) -> float:
        """The model's mean utility of unit knobs (d,)."""
        return float(self.model.mean(np.asarray(unit_knobs, np.float64)[None])[0])

    def reward_of(self, unit_knobs: np.ndarray) -> float:
        """The normalised reward of unit knobs (d,): 0 at the best, about -1 typical."""
        spread = self.best_utility - self.typical_utility
        return (self.utility(unit_knobs) - self.best_utility) / spread

    def score(self, fenv, params, state, knobs, audio) -> Scored:
        # The model lives on the unit knobs the env already has; rate() is handed the
        # physical values, so keep the unit ones for it.
        if fenv.plant.num_knobs != self.n_knobs:
            raise ValueError(f"the preference votes are on {self.n_knobs} knobs, the env's "
                             f"plant has {fenv.plant.num_knobs}")  # fmt: skip
        self._unit_knobs = np.asarray(knobs, np.float64)
        return super().score(fenv, params, state, knobs, audio)

    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        assert self._unit_knobs is not None, "rate() is called through score()"
        reward = self.reward_of(self._unit_knobs)
        return Rating(
            reward=reward,
            success=reward >= self.success_fraction - 1.0,
            distance=-reward,
            info={"utility": self.utility(self._unit_knobs), "votes": len(self.votes)},
        )


def _reference_levels(model: model_lib.PreferenceModel) -> tuple[np.ndarray, float, float]:
    """(best patch, its utility, a typical patch's utility) of ``model``: the best of a
    dense scrambled-Sobol set plus the heard patches, then the mean over the set."""
    from scipy.stats import qmc

    d = model.points.shape[1]
    probes = qmc.Sobol(d, seed=0).random(2048)
    candidates = np.concatenate([probes, model.points])
    means = model.mean(candidates)
    best = int(np.argmax(means))
    typical = float(np.mean(model.mean(probes)))
    if not means[best] > typical:  # votes that single nothing out: a flat reward
        return candidates[best], typical + 1.0, typical
    return candidates[best], float(means[best]), typical
