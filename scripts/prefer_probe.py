"""Probe one preference-search setting on the simulated rater, seed by seed.

    OFFSET=1000 python scripts/prefer_probe.py NAME "{'lapse': 0.1}" 100 120

Runs one 40-vote session per seed in [first, stop) exactly as ``ddsp-gym bench prefer``
does (``play_session``: the same rater, utility and scoring; the search seeded
seed + $OFFSET, as ``--search-seed-offset``), prints each seed's fraction of the best
reachable utility at 10, 20, 30 and 40 votes and the mean and count within 90 % at 40;
with $SAVE, pickles {seed: (votes, fractions, best reachable)} there for
scripts/prefer_recommend.py.
The options are ``PreferenceSearch`` keywords. It is the quick loop used to choose
settings on the tuning seeds 100-119 (issue 26; its printouts are in
results/prefer_tuning/probes/); the best reachable utility of each seed is cached in
/tmp so repeated probes skip the dense search.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from ddsp_gym.preference.bench import play_session
from ddsp_gym.preference.rater import TimbreUtility

CACHE = Path("/tmp/prefer_probe_best.json")
VOTES = (10, 20, 30, 40)


def best_reachable(seed: int, utility: TimbreUtility) -> float:
    """The seed's best reachable utility (the benchmark's dense search), cached."""
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if str(seed) not in cache:
        cache[str(seed)] = utility.best_reachable(n=4096)
        CACHE.write_text(json.dumps(cache))
    return cache[str(seed)]


def main(argv: list[str]) -> int:
    name, options = argv[0], ast.literal_eval(argv[1])
    seeds = range(int(argv[2]), int(argv[3]))
    offset = int(os.environ.get("OFFSET", "1000"))
    at_40, sessions = [], {}
    for seed in seeds:
        start = time.perf_counter()
        utility = TimbreUtility(seed)
        best = best_reachable(seed, utility)
        votes, found = play_session(options, utility, seed, VOTES, {}, offset)
        fractions = {n: u / best for n, u in found.items()}
        sessions[seed] = (votes, fractions, best)
        at_40.append(fractions[40])
        print(seed, {n: round(f, 3) for n, f in fractions.items()},
              f"{time.perf_counter() - start:.1f}s", flush=True)  # fmt: skip
    if os.environ.get("SAVE"):
        Path(os.environ["SAVE"]).write_bytes(pickle.dumps(sessions))
    at_40 = np.array(at_40)
    print(name, "mean40", at_40.mean().round(3), "at90", int((at_40 >= 0.9).sum()), "/",
          len(at_40))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
