"""Which patch to name as found after N votes? Rules scored on saved probe sessions.

    OFFSET=1000 SAVE=/tmp/base.pkl python scripts/prefer_probe.py base "{}" 100 120
    OFFSET=1000 python scripts/prefer_recommend.py /tmp/base.pkl "{}"

For each saved session (scripts/prefer_probe.py) the model of its first N votes (30, 40)
names a patch by each rule, scored on the noiseless utility as a fraction of the best
reachable: ``heard`` (the search's answer: the heard patch of highest posterior mean),
``lcbK`` (the heard patch of highest mean - K std), ``seen2`` (the best heard patch
voted on at least twice), ``model`` / ``model_lcb1`` (the best of the search's
candidates and the heard patches by mean, or mean - std), ``model_dense`` (the same
with 6000 more patches near the incumbent), and ``oracle_heard``: the truly best patch
heard, the ceiling of any rule that names a heard patch.
"""

from __future__ import annotations

import ast
import os
import pickle
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ddsp_gym.preference.rater import TimbreUtility
from ddsp_gym.preference.search import PreferenceSearch


def rule_picks(search: PreferenceSearch, votes: list, seed: int, n: int) -> dict[str, np.ndarray]:
    """Each rule's named patch after the first ``n`` votes."""
    model = search.impl.model(votes)
    points = model.points
    mean, std = model.mean(points), model.std(points)
    counts = Counter(tuple(map(float, p)) for vote in votes for p in (vote.a, vote.b))
    seen = np.array([counts[tuple(map(float, p))] for p in points])
    picks = {"heard": points[np.argmax(model.latent)]}
    for k in (0.5, 1.0, 2.0):
        picks[f"lcb{k}"] = points[np.argmax(mean - k * std)]
    twice = np.where(seen >= 2, model.latent, -np.inf)
    picks["seen2"] = points[np.argmax(twice)] if (seen >= 2).any() else picks["heard"]
    incumbent = picks["heard"]
    candidates = np.concatenate([search.impl._candidates(tuple(votes), incumbent), points])
    c_mean, c_std = model.mean(candidates), model.std(candidates)
    picks["model"] = candidates[np.argmax(c_mean)]
    picks["model_lcb1"] = candidates[np.argmax(c_mean - c_std)]
    rng = np.random.default_rng([seed, n, 7])
    near = [incumbent + s * rng.standard_normal((2000, 4)) for s in (0.01, 0.03, 0.1)]
    dense = np.clip(np.concatenate([*near, candidates]), 0, 1)
    picks["model_dense"] = dense[np.argmax(model.mean(dense))]
    return picks


def main(argv: list[str]) -> int:
    sessions = pickle.loads(Path(argv[0]).read_bytes())
    options = ast.literal_eval(argv[1]) if len(argv) > 1 else {}
    offset = int(os.environ.get("OFFSET", "1000"))
    scores: dict[tuple[str, int], list[float]] = {}
    for seed, (votes, _, best) in sorted(sessions.items()):
        utility = TimbreUtility(seed)
        for n in (30, 40):
            search = PreferenceSearch(4, seed + offset, **options)
            picks = rule_picks(search, votes[:n], seed, n)
            values = utility(np.array(list(picks.values()))) / best
            for rule, value in zip(picks, values, strict=True):
                scores.setdefault((rule, n), []).append(float(value))
            heard = utility(search.impl.model(votes[:n]).points) / best
            scores.setdefault(("oracle_heard", n), []).append(float(heard.max()))
    for (rule, n), values in sorted(scores.items(), key=lambda item: (item[0][1], item[0][0])):
        x = np.array(values)
        print(f"{n} votes {rule:12s} mean {x.mean():.3f} within 90 %: {(x >= 0.9).sum()}/{len(x)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
