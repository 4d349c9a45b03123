"""Measure the explorer's fixed descriptor ranges per plant -> ddsp_gym/explore/ranges.json.

    python scripts/explore_ranges.py [PLANT ...]     (default: every plant in PLANTS)

Plants already stored keep their ranges unless named. See ddsp_gym/explore/ranges.py.
"""

from __future__ import annotations

import sys

from ddsp_gym.explore.ranges import load_ranges, measure_ranges, write_ranges
from ddsp_gym.plants import PLANTS, make_plant


def main(names: list[str]) -> None:
    stored = load_ranges()
    for name in names or list(PLANTS):
        try:
            stored[name] = measure_ranges(make_plant(name))
        except ValueError as err:  # a plant with too few audible settings: left out
            print(f"{name}: skipped ({err})")
            continue
        print(name, stored[name])
    print("wrote", write_ranges(dict(sorted(stored.items()))))


if __name__ == "__main__":
    main(sys.argv[1:])
