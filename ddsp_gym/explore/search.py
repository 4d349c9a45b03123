"""Quality-diversity search over knob space: MAP-Elites (pyribs) and its random baseline.

The map is a pyribs ``GridArchive`` over two timbre descriptors (the axes), each cut into
equal steps of its map coordinate (log10 for Hz and flatness) between fixed per-plant
ranges (:mod:`ddsp_gym.explore.ranges`); a value beyond a range lands in the edge cell.
A cell keeps the best-scoring sound that fell into it (its *elite*); sounds scoring 0
(inaudible or clipped) are refused (``threshold_min`` 0 with learning rate 1: plain
MAP-Elites that admits only objectives above 0).

Budget: the number of sounds heard (renders or takes). MAP-Elites spends it as a random
first population (the first ``n_init`` settings of the same uniform draw the random
baseline makes, so both start alike), then batches from two iso+line emitters
(Vassiliades & Mouret 2018), one fine and one coarse. The last batch is cut to what the
budget leaves; its settings go straight into the archive (the emitters learn nothing
from ``tell``, so skipping it loses nothing). Everything is seeded: one seed, one map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ribs.archives import GridArchive
from ribs.emitters import IsoLineEmitter
from ribs.schedulers import Scheduler

from ddsp_gym.explore.descriptors import DESCRIPTOR_NAMES, DESCRIPTORS, OBJECTIVE_INDEX
from ddsp_gym.explore.evaluators import EvaluationStopped, Evaluator

METHODS: tuple[str, ...] = ("map_elites", "random")
# The two emitters' isotropic steps in unit knob travel (fine, coarse) and their step
# along the line between two elites (as a fraction of that line).
ISO_SIGMAS: tuple[float, float] = (0.1, 0.2)
LINE_SIGMA = 0.3
MIN_BUDGET = 8


@dataclass(frozen=True)
class MapSpace:
    """The map: two descriptor axes, the cells per axis, and each axis' value range."""

    axes: tuple[str, str]
    cells: tuple[int, int]
    ranges: tuple[tuple[float, float], tuple[float, float]]  # descriptor units (Hz, ...)

    def __post_init__(self) -> None:
        if any(c < 1 for c in self.cells) or len(self.cells) != 2:
            raise ValueError(f"--cells takes two positive counts, got {list(self.cells)}")
        for name, (low, high) in zip(self.axes, self.ranges, strict=True):
            if not low < high or (DESCRIPTORS[name].log and low <= 0):
                raise ValueError(
                    f"range of {name!r} must be increasing (and > 0 on a log "
                    f"axis), got {low:g} to {high:g}"
                )

    @property
    def axis_indices(self) -> list[int]:
        return [DESCRIPTOR_NAMES.index(a) for a in self.axes]

    @property
    def measure_ranges(self) -> list[tuple[float, float]]:
        """The ranges in map coordinates (log10 on log axes)."""
        return [
            tuple(float(v) for v in DESCRIPTORS[a].to_measure(np.array(r)))
            for a, r in zip(self.axes, self.ranges, strict=True)
        ]

    def measures(self, rows: np.ndarray) -> np.ndarray:
        """Evaluator rows (n, k + 1) -> map coordinates (n, 2)."""
        cols = [
            DESCRIPTORS[a].to_measure(rows[:, i])
            for a, i in zip(self.axes, self.axis_indices, strict=True)
        ]
        return np.stack(cols, axis=1)

    def archive(self, solution_dim: int, seed: int) -> GridArchive:
        """An empty archive of this map for settings of ``solution_dim`` knobs."""
        return GridArchive(
            solution_dim=solution_dim,
            dims=list(self.cells),
            ranges=self.measure_ranges,
            learning_rate=1.0,
            threshold_min=0.0,  # admit objectives above 0 only
            seed=seed,
            extra_fields={
                "setting": ((), np.int64),  # which setting of the run (replays a sim render)
                "descriptors": ((len(DESCRIPTOR_NAMES),), np.float32),
            },
        )


@dataclass
class ExploreResult:
    """One search: its archive, and what it heard on the way."""

    method: str
    space: MapSpace
    archive: GridArchive
    evaluations: int
    takes: int
    # (evaluations so far, filled cells, QD-score) after every batch: the search's curve.
    curve: list[tuple[int, int, float]] = field(default_factory=list)
    # Why the search stopped short of its budget (a device's error), or None.
    stopped: str | None = None

    @property
    def filled(self) -> int:
        return len(self.archive)

    @property
    def coverage(self) -> float:
        """Filled cells over all cells."""
        return self.filled / self.archive.cells

    @property
    def qd_score(self) -> float:
        """Sum of the elites' objectives (each in [0, 1]; offset 0)."""
        return float(np.sum(self.archive.data("objective"))) if self.filled else 0.0


def _add(
    archive: GridArchive, unit: np.ndarray, rows: np.ndarray, first: int, space: MapSpace
) -> None:
    archive.add(unit, rows[:, OBJECTIVE_INDEX], space.measures(rows), **_fields(rows, first))


def _fields(rows: np.ndarray, first: int) -> dict[str, np.ndarray]:
    return {
        "setting": first + np.arange(len(rows), dtype=np.int64),
        "descriptors": rows[:, :OBJECTIVE_INDEX].astype(np.float32),
    }


def batch_sizes(budget: int) -> tuple[int, int]:
    """(settings per emitter batch, random first population) for a budget.

    About twenty emitter batches per run, 2 to 32 settings each (a device's small budget
    still gets several generations), and a tenth of the budget (at least one round of
    both emitters) as the random start.
    """
    per_emitter = int(np.clip(budget // 40, 2, 32))
    n_init = min(budget, max(2 * per_emitter, budget // 10))
    return per_emitter, n_init


def check_budget(budget: int) -> int:
    if budget < MIN_BUDGET:
        raise ValueError(f"the budget must be at least {MIN_BUDGET} sounds, got {budget}")
    return budget


def uniform_settings(seed: int, budget: int, dim: int) -> np.ndarray:
    """The random baseline's settings; MAP-Elites starts from the first of them."""
    return np.random.default_rng(seed).uniform(size=(budget, dim)).astype(np.float32)


def run_random(
    evaluator: Evaluator,
    space: MapSpace,
    budget: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> ExploreResult:
    """Random sampling: ``budget`` uniform settings, each mapped as MAP-Elites would."""
    check_budget(budget)
    dim = evaluator.plant.num_knobs
    archive = space.archive(dim, seed)
    result = ExploreResult("random", space, archive, 0, 0)
    settings = uniform_settings(seed, budget, dim)
    per_emitter, n_init = batch_sizes(budget)
    bounds = [0, n_init, *range(n_init + 2 * per_emitter, budget, 2 * per_emitter), budget]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=False):  # MAP-Elites' batches
        try:
            rows = evaluator.evaluate(settings[start:stop], start)
        except EvaluationStopped as err:
            _stop(result, err, settings[start:], start, progress)
            break
        _add(archive, settings[start:stop], rows, start, space)
        _record(result, stop, progress, stop - start)
    result.takes = evaluator.takes
    return result


def _stop(
    result: ExploreResult,
    err: EvaluationStopped,
    settings: np.ndarray,
    first: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Keep what a failed batch heard before the device failed; mark the run stopped."""
    n = len(err.rows)
    if n:
        _add(result.archive, settings[:n], err.rows, first, result.space)
    _record(result, first + n, progress, n)
    result.stopped = f"{type(err.cause).__name__}: {err.cause}"


def run_map_elites(
    evaluator: Evaluator,
    space: MapSpace,
    budget: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> ExploreResult:
    """MAP-Elites with iso+line emitters over unit knob space (see the module docstring)."""
    check_budget(budget)
    dim = evaluator.plant.num_knobs
    archive = space.archive(dim, seed)
    per_emitter, n_init = batch_sizes(budget)
    emitters = [
        IsoLineEmitter(
            archive,
            iso_sigma=sigma,
            line_sigma=LINE_SIGMA,
            x0=np.full(dim, 0.5),
            bounds=[(0.0, 1.0)] * dim,
            batch_size=per_emitter,
            seed=seed + 1 + i,
        )
        for i, sigma in enumerate(ISO_SIGMAS)
    ]
    scheduler = Scheduler(archive, emitters)
    result = ExploreResult("map_elites", space, archive, 0, 0)

    first = uniform_settings(seed, budget, dim)[:n_init]
    try:
        _search(evaluator, space, scheduler, result, first, budget, seed, per_emitter, progress)
    except _Stopped as stopped:
        _stop(result, stopped.err, stopped.settings, stopped.first, progress)
    result.takes = evaluator.takes
    return result


class _Stopped(Exception):
    def __init__(self, err: EvaluationStopped, settings: np.ndarray, first: int):
        self.err, self.settings, self.first = err, settings, first


def _evaluate(evaluator: Evaluator, settings: np.ndarray, first: int) -> np.ndarray:
    try:
        return evaluator.evaluate(settings, first)
    except EvaluationStopped as err:
        raise _Stopped(err, settings, first) from err


def _search(
    evaluator: Evaluator,
    space: MapSpace,
    scheduler: Scheduler,
    result: ExploreResult,
    first: np.ndarray,
    budget: int,
    seed: int,
    per_emitter: int,
    progress: Callable[[int], None] | None,
) -> None:
    """MAP-Elites' loop, from its random first population to the end of the budget."""
    archive, dim = result.archive, first.shape[1]
    n_init = len(first)
    rows = _evaluate(evaluator, first, 0)
    _add(archive, first, rows, 0, space)
    used = _record(result, n_init, progress, n_init)
    while used < budget:
        if archive.empty:  # nothing audible yet: the emitters have no parent; draw anew
            settings = (
                np.random.default_rng([seed, used])
                .uniform(size=(2 * per_emitter, dim))
                .astype(np.float32)
            )
            settings = settings[: budget - used]
            _add(archive, settings, _evaluate(evaluator, settings, used), used, space)
        else:
            settings = scheduler.ask().astype(np.float32)
            n = min(len(settings), budget - used)
            rows = _evaluate(evaluator, settings[:n], used)
            if n == len(settings):
                scheduler.tell(
                    rows[:, OBJECTIVE_INDEX], space.measures(rows), **_fields(rows, used)
                )
            else:  # the budget's last, cut batch (see the module docstring)
                _add(archive, settings[:n], rows, used, space)
            settings = settings[:n]
        used = _record(result, used + len(settings), progress, len(settings))


def _record(
    result: ExploreResult, used: int, progress: Callable[[int], None] | None, step: int
) -> int:
    result.evaluations = used
    result.curve.append((used, result.filled, round(result.qd_score, 4)))
    if progress is not None:
        progress(step)
    return used


SEARCHES: dict[str, Callable[..., ExploreResult]] = {
    "map_elites": run_map_elites,
    "random": run_random,
}


def run(
    method: str,
    evaluator: Evaluator,
    space: MapSpace,
    budget: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> ExploreResult:
    """Run ``method`` (:data:`METHODS`)."""
    if method not in SEARCHES:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return SEARCHES[method](evaluator, space, budget, seed, progress)


def elites(result: ExploreResult) -> list[dict]:
    """The archive's elites, sorted by cell: cell (i, j), setting number, unit knobs, descriptors,
    objective (plain Python values)."""
    if not result.filled:
        return []
    data = result.archive.data()
    cells = result.archive.int_to_grid_index(data["index"])
    order = np.lexsort((cells[:, 1], cells[:, 0]))
    out = []
    for k in order:
        out.append(
            {
                "cell": [int(c) for c in cells[k]],
                "setting": int(data["setting"][k]),
                "unit": [float(v) for v in data["solution"][k]],
                "descriptors": {
                    n: float(v)
                    for n, v in zip(DESCRIPTOR_NAMES, data["descriptors"][k], strict=True)
                },
                "objective": float(data["objective"][k]),
            }
        )
    return out


def summary(results: Sequence[ExploreResult]) -> dict[str, float]:
    """Mean coverage and QD-score of several runs."""
    return {
        "coverage": float(np.mean([r.coverage for r in results])),
        "qd_score": float(np.mean([r.qd_score for r in results])),
    }
