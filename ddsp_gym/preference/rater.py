"""A simulated listener for tests and benchmarks: a hidden taste, noisy A/B votes.

The taste is defined on what a listener hears: :class:`TimbreUtility` renders a patch on
a plant and scores how close its sound is to a hidden target timbre, with the plant's
own task distance (for the default 4-knob subtractive synth: the centroid trajectory
in octaves plus the multi-resolution STFT distance). Utility is
``exp(-distance / scale)`` in (0, 1], with ``scale`` the median distance of random
patches from the target, so a typical random patch scores about exp(-1) = 0.37.

The votes are noisy as a person's are (:class:`SimulatedRater`): Bradley-Terry choice
with a stated temperature, a stated rate of flipped (inconsistent) votes, and
"both_bad" when neither patch reaches a stated utility level.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ddsp_gym.preference.search import Vote

Utility = Callable[[np.ndarray], np.ndarray]  # (m, d) unit knobs -> (m,) utility


@dataclass
class TimbreUtility:
    """A hidden target timbre on ``plant``: utility of unit knobs (m, d) -> (m,) in (0, 1].

    The target is a seeded random patch; utility is exp(-distance / scale) with the
    ``task``'s distance between the rendered sounds. Rendering is JAX (jitted, vmapped
    in batches), so the benchmark can afford a dense search for the best reachable
    utility (:meth:`best_reachable`).
    """

    seed: int = 0
    plant: str = "subtractive"
    plant_config: Mapping[str, Any] = field(default_factory=lambda: {"oscillator_knobs": False})
    task: str = "subtractive_patch"
    batch: int = 64

    def __post_init__(self) -> None:
        self._render = _renderer(
            self.plant, tuple(sorted(dict(self.plant_config).items())), self.task
        )
        self.n_knobs = self._render.n_knobs
        self.target = np.random.default_rng([self.seed, 7]).uniform(size=self.n_knobs)
        self._target_features = self._render.features(np.asarray(self.target, np.float32))
        random = np.random.default_rng([self.seed, 8]).uniform(size=(256, self.n_knobs))
        self.scale = float(np.median(self.distance(random)))

    def distance(self, knobs: np.ndarray) -> np.ndarray:
        """The task distance of each patch's sound from the target's, (m, d) -> (m,)."""
        knobs = np.atleast_2d(np.asarray(knobs, np.float32))
        out = []
        # Two compiled shapes serve every call: a pair (a vote) and a batch (searches);
        # shorter calls are padded to one of them.
        size = 2 if len(knobs) <= 2 else self.batch
        for start in range(0, len(knobs), size):
            chunk = knobs[start : start + size]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), 0)])
            distance = self._render.distance(padded, self._target_features)
            out.append(np.asarray(distance, np.float64)[: len(chunk)])
        return np.concatenate(out)

    def __call__(self, knobs: np.ndarray) -> np.ndarray:
        return np.exp(-self.distance(knobs) / self.scale)

    def best_reachable(self, n: int = 4096, starts: int = 8, rounds: int = 40) -> float:
        """The best utility found by a dense search, measured rather than assumed: ``n``
        scrambled-Sobol patches, then a batched local search from the ``starts`` best
        (each round tries 8 Gaussian neighbours of each, at a shrinking scale, and keeps
        the better). The hidden target is not among the probes."""
        from scipy.stats import qmc

        probes = qmc.Sobol(self.n_knobs, seed=self.seed).random(n)
        values = self(probes)
        order = np.argsort(values)[-starts:]
        points, best = probes[order], values[order]
        rng = np.random.default_rng([self.seed, 9])
        for scale in np.geomspace(0.05, 0.002, rounds):
            tries = np.clip(
                np.repeat(points, 8, 0) + scale * rng.standard_normal((8 * starts, self.n_knobs)),
                0.0,
                1.0,
            )
            got = self(tries).reshape(starts, 8)
            pick = np.argmax(got, axis=1)
            better = got[np.arange(starts), pick] > best
            points[better] = tries.reshape(starts, 8, -1)[np.arange(starts), pick][better]
            best = np.maximum(best, got[np.arange(starts), pick])
        return float(max(best.max(), values.max()))


class _Renderer:
    """Jitted render + features + distance of one (plant, task), shared by every target."""

    def __init__(self, plant: str, plant_config: tuple, task: str) -> None:
        import jax
        import jax.numpy as jnp

        from ddsp_gym.plants import make_plant
        from ddsp_gym.tasks import make_task_with_settings

        plant_obj = make_plant(plant, **dict(plant_config))
        task_obj, _ = make_task_with_settings(task)
        self.n_knobs = plant_obj.num_knobs
        sr = plant_obj.sample_rate
        key = jax.random.PRNGKey(0)  # noise sources: the same noise every time

        def features(knobs):
            return task_obj.features(plant_obj.render(jnp.asarray(knobs), key), sr)

        def distance(knobs, target_features):
            return task_obj.distance(features(knobs), target_features)

        self.features = jax.jit(features)
        self.distance = jax.jit(jax.vmap(distance, in_axes=(0, None)))


@functools.lru_cache(maxsize=8)
def _renderer(plant: str, plant_config: tuple, task: str) -> _Renderer:
    return _Renderer(plant, plant_config, task)


class SimulatedRater:
    """Votes on pairs like a (noisy) person with a hidden ``utility``; seeded.

    For a pair (a, b): if both utilities are below ``both_bad_below`` the vote is
    "both_bad"; otherwise "a" with the Bradley-Terry probability
    sigmoid((u(a) - u(b)) / temperature), and then, with probability ``flip_rate``, the
    choice is reversed (an inattentive or inconsistent vote). The random stream is a
    pure function of (seed, number of votes cast), so replays are exact.
    """

    def __init__(
        self,
        utility: Utility,
        *,
        temperature: float = 0.05,
        flip_rate: float = 0.05,
        both_bad_below: float = 0.2,
        seed: int = 0,
    ) -> None:
        if temperature < 0 or not 0.0 <= flip_rate <= 0.5:
            raise ValueError(
                f"temperature must be >= 0 and flip_rate in [0, 0.5], got {temperature}, "
                f"{flip_rate}"
            )
        self.utility = utility
        self.temperature = float(temperature)
        self.flip_rate = float(flip_rate)
        self.both_bad_below = float(both_bad_below)
        self.seed = int(seed)
        self.votes_cast = 0

    def prob_a(self, u_a: float, u_b: float) -> float:
        """Bradley-Terry probability of choosing ``a`` before any flip."""
        if self.temperature == 0:
            return 1.0 if u_a > u_b else 0.0 if u_a < u_b else 0.5
        return float(1.0 / (1.0 + np.exp(-(u_a - u_b) / self.temperature)))

    def vote(self, a: np.ndarray, b: np.ndarray) -> Vote:
        """The rater's vote on patches ``a`` and ``b`` (unit knobs, (d,) each)."""
        rng = np.random.default_rng([self.seed, self.votes_cast, 11])
        self.votes_cast += 1
        a = tuple(float(x) for x in np.clip(a, 0.0, 1.0))
        b = tuple(float(x) for x in np.clip(b, 0.0, 1.0))
        u_a, u_b = (float(u) for u in self.utility(np.array([a, b])))
        if max(u_a, u_b) < self.both_bad_below:
            return Vote(a, b, "both_bad")
        pick_a = rng.uniform() < self.prob_a(u_a, u_b)
        if rng.uniform() < self.flip_rate:
            pick_a = not pick_a
        return Vote(a, b, "a" if pick_a else "b")
