"""Choose the staged fit's refinement step (issue 25) on chains the evaluation set lacks.

    python scripts/chain_refine_tuning.py [--steps 200] [--seeds 0 1 2]
        [--cases 6] [-o results/chain_refine_tuning]

The staged fit of a chained plant ends with every knob refined together
(``agents/staged.py``). This fits six sox chains (saw -> low-pass -> echo, the same
recipe as the evaluation set's ``chain`` kind, other notes, cutoffs, Qs and echo times)
stage by stage with each refinement setting in :data:`SETTINGS`, and counts fits with
every setting right (pitch within 25 cents, cutoff within 10 %, echo time within 3 %) and
the fine distance reached. The evaluation set's chains are not used, so the chosen
setting can be reported on them. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from ddsp_gym.agents import staged
from ddsp_gym.bench.evalset import CHAIN_SETTINGS, chain_cases
from ddsp_gym.bench.match_chain import fit_case, summarize_fits
from ddsp_gym.bench.match_eval import CRITERIA

# (MIDI note, cutoff Hz, Q, echo ms), none of them in CHAIN_SETTINGS; spread the same way.
TUNING_SETTINGS = (
    (47, 800.0, 1.2, 140.0),
    (50, 1200.0, 0.707, 220.0),
    (55, 1800.0, 2.5, 100.0),
    (62, 2200.0, 1.0, 280.0),
    (66, 3500.0, 0.9, 160.0),
    (71, 700.0, 4.0, 320.0),
)
# (learning rate, patience) of the refinement; the first is the stages' own GradientAgent
# (what the refinement used before), the fourth the default (REFINE_LEARNING_RATE).
SETTINGS = ((0.1, 25), (0.05, 0), (0.02, 0), (0.01, 0), (0.005, 0))


def evaluate(folder: Path, steps: int, seeds: list[int], n_cases: int) -> list[dict]:
    cases = chain_cases(folder, TUNING_SETTINGS[:n_cases])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate, patience in tqdm(SETTINGS, desc="refinement settings", unit="setting"):
            staged.REFINE_LEARNING_RATE, staged.REFINE_PATIENCE = rate, patience
            for case in cases:
                for seed in seeds:
                    out = Path(tmp) / f"{case.name}_{rate}_{seed}"
                    fit = fit_case(case, folder, out, steps, seed, staged=True)
                    rows.append({"learning_rate": rate, "patience": patience,
                                 "case": case.name, "seed": seed, **fit})  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for rate, patience in SETTINGS:
        fits = [r for r in rows if r["learning_rate"] == rate and r["patience"] == patience]
        out.append({"learning_rate": rate, "patience": patience, **summarize_fits(fits)})
    return out


def markdown(summary: list[dict], command: str, steps: int, seeds: list[int]) -> str:
    names = [name for name, _ in CRITERIA["chain"]]
    lines = [
        "# The staged fit's refinement step, chosen on chains outside the evaluation set",
        "",
        f"Made by `{command}` ({steps} plant queries per fit, seeds {seeds}). Cases: "
        "`TUNING_SETTINGS` in `scripts/chain_refine_tuning.py` (sox saw -> lowpass -> echo "
        "as `chain_cases`, none of the evaluation set's settings "
        f"{[s[:4] for s in CHAIN_SETTINGS]}). *pass*: every criterion of the `chain` kind; "
        "*distance*: the fine MR-STFT `match` minimises.",
        "",
        "| refinement learning rate | restarts (patience) | fits | pass | "
        + " | ".join(f"{n} ok" for n in names)
        + " | median distance | median heard dB |",
        "|---|---|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for s in summary:
        patience = s["patience"] or "none"
        lines.append(
            f"| {s['learning_rate']:g} | {patience} | {s['fits']} | {s['pass']} | "
            + " | ".join(str(s[f"{n}_ok"]) for n in names)
            + f" | {s['median_distance']:.3f} | {s['median_heard_db']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="plant queries per fit (200)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cases", type=int, default=len(TUNING_SETTINGS),
                        help=f"fit the first N tuning chains ({len(TUNING_SETTINGS)})")  # fmt: skip
    parser.add_argument("--set", type=Path, default=Path("chain_tuningset"),
                        help="where the tuning chains are rendered (chain_tuningset)")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path,
                        default=Path("results/chain_refine_tuning"))  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.cases <= len(TUNING_SETTINGS):
        parser.error(f"--cases must be 1 to {len(TUNING_SETTINGS)}, got {args.cases}")
    args.set.mkdir(parents=True, exist_ok=True)
    rows = evaluate(args.set, args.steps, args.seeds, args.cases)
    summary = summarize(rows)
    given = sys.argv[1:] if argv is None else argv
    command = f"python scripts/chain_refine_tuning.py {shlex.join(given)}".strip()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "steps": args.steps, "seeds": args.seeds,
               "summary": summary, "rows": rows}  # fmt: skip
    args.output.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    args.output.with_suffix(".md").write_text(markdown(summary, command, args.steps, args.seeds))
    print(markdown(summary, command, args.steps, args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
