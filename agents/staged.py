"""Stage-by-stage fitting of a chained plant (oscillator -> filter -> effect).

Issue 25, item 3 ("hierarchical AbS"): a chain's knobs interact (a darker filter and a
louder echo both change the spectrum), so fitting them all at once from mid-travel can
settle on a trade between stages. A chained plant declares its stages in signal order
(``plant.stages``: (name, knob names)) and the settings that bypass them
(``plant.bypass``: {knob: physical value}). The staged fit then goes:

1. the first stage (the source) with every later stage held at its bypass;
2. each later stage with the earlier ones frozen at what they were fitted to (their
   knobs held, not followed) and the still later ones bypassed;
3. all knobs together from there (the refinement: small steps, no random restarts;
   :data:`REFINE_LEARNING_RATE`).

Each stage is fitted like a source in ``match``: a coarse CMA-ES search on the coarse
loss (:mod:`ddsp_gym.agents.coarse`) with :data:`~ddsp_gym.agents.match.COARSE_SHARE`
of its queries where that pays for one run, then the gradient on the fine loss. A stage
the plant names in its ``scans`` (an echo's time) first scores the coarse loss over its
scanned knob's whole travel and starts from the best point. Knobs the analysis measured
(the pitch, a gated note's length) stay held throughout. The budget split is
:data:`STAGE_SHARES` (the refinement's share) and the stages' equal split of the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ddsp_gym.agents.coarse import (
    MIN_GENERATIONS,
    POPSIZE,
    CoarseResult,
    coarse_losses,
    coarse_search,
    n_starts,
)
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.plants.base import AbstractPlant

# The refinement (all knobs together) gets this share of the queries; the stages split
# the rest equally (the first take the remainder).
TOGETHER_SHARE = 0.25
# The refinement starts where the stages ended, so it takes small steps and never
# restarts from a random point. Adam moves every knob by about its learning rate per step
# whatever the size of its gradient, so at the stages' 0.1 a knob the distance barely
# sees near its fit (a cutoff under an echo) drifts off what its own stage found.
# Chosen on chains outside the evaluation set (scripts/chain_refine_tuning.py).
REFINE_LEARNING_RATE = 0.01
REFINE_PATIENCE = 0
# A stage's coarse search gets coarse_share of its queries, but at least one CMA-ES run
# (MIN_GENERATIONS generations of POPSIZE) where that leaves the gradient half the stage:
# a stage has few knobs and few queries, and one run is what finds an echo's time basin.
MIN_COARSE = MIN_GENERATIONS * POPSIZE
# A stage the plant names in its ``scans`` first scores the coarse loss at this many
# points spread evenly over its scanned knob's travel (log-spaced for a log knob): a
# global look at a knob whose loss has many basins (an echo's time), where CMA-ES from
# mid-travel settles in the nearest. One CMA-ES run's worth of renders.
SCAN_POINTS = MIN_COARSE


def stage_coarse_budget(budget: int, coarse_share: float) -> int:
    """Coarse renders of a stage of ``budget`` queries (0: no coarse search)."""
    share = int(budget * coarse_share)
    if share < MIN_COARSE and budget >= 2 * MIN_COARSE:
        share = MIN_COARSE
    return share if n_starts(share) else 0


def is_staged(plant: AbstractPlant) -> bool:
    """Does ``plant`` declare stages (and their bypass settings) for a staged fit?"""
    return bool(getattr(plant, "stages", ())) and hasattr(plant, "bypass")


def stage_budgets(steps: int, n_stages: int) -> list[int]:
    """Queries per stage: the ``n_stages`` stages' equal shares, then the refinement's."""
    if steps < n_stages + 1:
        raise ValueError(
            f"a staged fit of {n_stages} stages needs at least {n_stages + 1} steps, got {steps}"
        )
    together = max(1, int(steps * TOGETHER_SHARE))
    base, extra = divmod(steps - together, n_stages)
    return [base + (i < extra) for i in range(n_stages)] + [together]


def actions_of(plant: AbstractPlant, values: dict[str, float]) -> dict[int, float]:
    """{knob index: action in [-1, 1]} of some knobs' physical ``values``."""
    index = {name: i for i, name in enumerate(plant.knob_names)}
    specs = plant.knob_specs
    return {
        index[name]: 2.0 * float(specs[index[name]].to_unit(value)) - 1.0
        for name, value in values.items()
    }


def bypass_actions(plant: AbstractPlant) -> dict[int, float]:
    """{knob index: action in [-1, 1]} of the plant's bypass settings."""
    return actions_of(plant, plant.bypass)


def stage_indices(plant: AbstractPlant) -> list[list[int]]:
    """The knob indices of each stage, in signal order; every knob in exactly one."""
    index = {name: i for i, name in enumerate(plant.knob_names)}
    groups = [[index[name] for name in names] for _, names in plant.stages]
    flat = sorted(i for group in groups for i in group)
    if flat != list(range(len(plant.knob_names))):
        raise ValueError(f"{type(plant).__name__}.stages must name every knob exactly once")
    return groups


def held_for_stage(
    plant: AbstractPlant, stage: int, action: np.ndarray, known: dict[int, float]
) -> dict[int, float]:
    """The knobs held while ``stage`` is fitted: the measured ones (``known``), the earlier
    stages' at their fitted values (``action``), the later stages' at their bypass
    (a later knob with no bypass value, such as an echo's time at mix 0, where it is)."""
    groups = stage_indices(plant)
    bypass = bypass_actions(plant)
    held: dict[int, float] = {}
    for other, group in enumerate(groups):
        if other < stage:
            held.update({i: float(action[i]) for i in group})
        elif other > stage:
            held.update({i: bypass.get(i, float(action[i])) for i in group})
    return {**held, **known}


def scan_actions(
    plant: AbstractPlant, start: np.ndarray, knob: str, fixed: dict[str, float], points: int
) -> np.ndarray:
    """(points, d) actions: ``start`` with ``fixed`` set and ``knob`` swept over its travel."""
    base = np.asarray(start, np.float64).copy()
    for i, action in actions_of(plant, fixed).items():
        base[i] = action
    actions = np.repeat(base[None, :], points, axis=0)
    actions[:, plant.knob_names.index(knob)] = np.linspace(-1.0, 1.0, points)
    return actions


def scan_stage(
    plant: AbstractPlant, target: np.ndarray, start: np.ndarray, knob: str,
    fixed: dict[str, float], key: Any, points: int = SCAN_POINTS,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """The scan's best action by the coarse loss, and that loss."""
    actions = scan_actions(plant, start, knob, fixed, points)
    losses = coarse_losses(plant, actions, target, key)
    best = int(np.argmin(losses))
    return actions[best], float(losses[best])


def _held(plant: AbstractPlant, scan: tuple[str, dict[str, float]], held: dict) -> bool:
    """Does the stage hold a knob its scan would move (a measured echo time)?"""
    knob, fixed = scan
    return any(plant.knob_names.index(name) in held for name in (knob, *fixed))


@dataclass(frozen=True)
class StageRecord:
    """What one stage did: its knobs, queries, coarse search, and where it ended."""

    name: str
    knobs: tuple[str, ...]
    budget: int
    coarse: CoarseResult | None
    gradient_steps: int
    distance: float  # the stage's best fine distance
    action: np.ndarray  # every knob after the stage, (d,) in [-1, 1]
    scan_evaluations: int = 0  # renders of the stage's scan (SCAN_POINTS or 0)

    @property
    def evaluations(self) -> int:
        """Plant queries spent: scan and coarse renders and gradient steps."""
        coarse = self.coarse.evaluations if self.coarse else 0
        return self.gradient_steps + coarse + self.scan_evaluations

    def to_json(self, plant: AbstractPlant) -> dict[str, Any]:
        physical = plant.controls((np.asarray(self.action, np.float32) + 1.0) / 2.0)
        out: dict[str, Any] = {
            "stage": self.name,
            "knobs": {name: float(physical[name]) for name in self.knobs},
            "budget": self.budget,
            "gradient_steps": self.gradient_steps,
            "fine_distance": self.distance,
            "scan_evaluations": self.scan_evaluations,
        }
        if self.coarse is not None:
            out.update(self.coarse.to_json())
        return out


@dataclass
class StagedFit:
    """The staged fit: the refinement's SolveResult, every gradient distance, the stages."""

    result: Any  # SolveResult of the last stage (all knobs together)
    distances: list[float]
    stages: list[StageRecord]

    @property
    def evaluations(self) -> int:
        return sum(stage.evaluations for stage in self.stages)


def staged_fit(
    plant: AbstractPlant,
    env: Any,
    target: np.ndarray,
    start: np.ndarray,
    known: dict[int, float],
    steps: int,
    seed: int,
    key: Any,
    coarse: bool = True,
    coarse_share: float = 0.3,
    callback: Callable[[int, dict[str, Any]], bool] | None = None,
    new_round: Callable[[], None] | None = None,
    on_coarse: Callable[[int], None] | None = None,
) -> StagedFit:
    """Fit ``plant`` (which :func:`is_staged`) stage by stage, then all together.

    ``env``: a gradient env on ``target`` (``expose_grad=True``); ``start``: the
    analysis' placement (action, (d,)); ``known``: measured knobs, held throughout.
    ``coarse=False`` leaves out each stage's coarse search. ``callback`` runs after each
    gradient step, ``new_round`` before each stage's gradient, ``on_coarse(renders)``
    after each coarse search (a progress display's hooks).
    """
    groups = stage_indices(plant)
    names = [name for name, _ in plant.stages] + ["together"]
    budgets = stage_budgets(steps, len(groups))
    initial = np.asarray(start, np.float64)
    action = initial.copy()
    records: list[StageRecord] = []
    distances: list[float] = []
    result = None
    for stage, (name, budget) in enumerate(zip(names, budgets, strict=True)):
        together = stage == len(groups)
        held = dict(known) if together else held_for_stage(plant, stage, action, known)
        searched = list(range(action.size)) if together else groups[stage]
        stage_start = action.copy()
        if not together:  # its own knobs from the start, not from where they were bypassed
            stage_start[searched] = initial[searched]
        for i, value in held.items():
            stage_start[i] = value
        found = None
        scanned = 0
        scan = None if together else getattr(plant, "scans", {}).get(name)
        if (
            coarse
            and scan is not None
            and budget >= 2 * SCAN_POINTS
            and not _held(plant, scan, held)
        ):
            knob, fixed = scan
            stage_start, _ = scan_stage(plant, target, stage_start, knob, fixed, key)
            scanned = SCAN_POINTS
            if on_coarse is not None:
                on_coarse(scanned)
        gradient_budget = budget - scanned
        coarse_budget = stage_coarse_budget(gradient_budget, coarse_share)
        if coarse and not together and coarse_budget:
            found = coarse_search(
                plant, target, stage_start, held, coarse_budget, seed, key, searched
            )
            stage_start = found.action.copy()
            gradient_budget -= found.evaluations
            if on_coarse is not None:
                on_coarse(found.evaluations)
        if new_round is not None:
            new_round()
        agent = (
            GradientAgent(learning_rate=REFINE_LEARNING_RATE, patience=REFINE_PATIENCE)
            if together
            else GradientAgent()
        )
        result = agent.solve(
            env, seed=seed, max_steps=gradient_budget, callback=callback, start=stage_start,
            known=held,
        )  # fmt: skip
        distances += result.distances
        action = np.asarray(result.best_action, np.float64)
        knobs = tuple(plant.knob_names[i] for i in searched)
        records.append(StageRecord(name, knobs, budget, found, result.steps,
                                   result.best_distance, action, scanned))  # fmt: skip
    return StagedFit(result, distances, records)
