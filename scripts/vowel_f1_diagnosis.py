"""Why the higher espeak-ng voice's F1 was fitted low (issue 25): the measurements.

    python scripts/vowel_f1_diagnosis.py [--set match_evalset] [-o results/vowel_f1_diagnosis]

For each vowel case of ``bench match``'s set: the file's f0 and where the LPC truth's F1
lies among its harmonics; the LPC F1/F2 of the part ``match`` fits (the first plant
duration after the onset) and of the middle the truth is measured on; and the
``lpc_envelope`` distance at a fit and at that fit with F1 set to the truth, for
the fits of results/match_vowels_rosenberg.json (Rosenberg source) and results/match_vowels.json
(sawtooth source), each rendered with the source it was fitted with. Writes
``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_gym.analysis import analyze, lpc_formants, prepare_target, sounding_span
from ddsp_gym.audio_io import load_audio
from ddsp_gym.bench.evalset import build_evalset, load_evalset
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import make_task

SR = 16_000
# The Rosenberg fits: the vowel rows of results/match_eval.json as made at b381015, before
# match switched to the sawtooth source.
FITS = {
    "rosenberg": "results/match_vowels_rosenberg.json",
    "sawtooth": "results/match_vowels.json",
}


def fitted_knobs(path: str) -> dict[str, dict[str, float]]:
    rows = json.loads(Path(path).read_text())["rows"]
    return {r["case"]: r["now"]["knobs"] for r in rows if r["kind"] == "vowel"}


def distance_at(plant, target: np.ndarray, knobs: dict[str, float]) -> float:
    task = make_task("lpc_envelope")
    unit = plant.knobs_from_physical({k: jnp.float32(v) for k, v in knobs.items()})
    audio = plant.render(unit, jax.random.PRNGKey(0), None)
    return float(task.distance(task.features(audio, SR), task.features(jnp.asarray(target), SR)))


def diagnose(case, folder: Path, fits: dict[str, dict[str, dict[str, float]]]) -> dict:
    recording = load_audio(folder / case.target, SR)
    analysis = analyze(recording, SR)
    row = {"case": case.name, "f0_hz": analysis.f0_hz, "truth": case.truth}
    row["f1_in_harmonics"] = case.truth["f1"] / analysis.f0_hz
    n = make_plant("formant").n_samples
    start, _ = prepare_target(recording, SR, n, analysis, None)
    first, end = sounding_span(recording, SR)
    middle = recording[(first + end - n) // 2 :][:n]
    row["lpc_start"] = lpc_formants(start, SR)[:2]
    row["lpc_middle"] = lpc_formants(middle, SR)[:2]
    for source, by_case in fits.items():
        plant = make_plant("formant", f0_hz=analysis.f0_hz, source=source)
        fit = by_case[case.name]
        at_truth = {**fit, "f1": case.truth["f1"]}  # in range: 200-1000 Hz
        row[source] = {"fit_f1": fit["f1"], "d_fit": distance_at(plant, start, fit),
                       "d_truth": distance_at(plant, start, at_truth)}  # fmt: skip
    return row


def to_markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# Vowels: why F1 was fitted low on the higher voice",
        "",
        f"Made by `{command}`. *F1/f0*: the LPC truth's F1 in harmonics of the file's f0. "
        "*LPC start / middle*: F1, F2 of the first 0.25 s after the onset (what `match` "
        "fits) and of the sound's middle 0.25 s (where the truth is measured). *d*: "
        "`lpc_envelope` distance (dB) from the start excerpt at the fit and at the fit with "
        "F1 at the truth, per source, with that source's "
        "fit (rosenberg: results/match_vowels_rosenberg.json, the Rosenberg pulse's fits made at "
        "b381015; sawtooth: results/match_vowels.json).",
        "",
        "| case | f0 Hz | truth F1, F2 | F1/f0 | LPC start | LPC middle | rosenberg: fit F1, "
        "d fit / d truth | sawtooth: fit F1, d fit / d truth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [f"{r[s]['fit_f1']:.0f}, {r[s]['d_fit']:.2f} / {r[s]['d_truth']:.2f}" for s in FITS]
        lines.append(
            f"| {r['case']} | {r['f0_hz']:.1f} | {r['truth']['f1']:.0f}, {r['truth']['f2']:.0f} "
            f"| {r['f1_in_harmonics']:.2f} | {r['lpc_start'][0]:.0f}, {r['lpc_start'][1]:.0f} "
            f"| {r['lpc_middle'][0]:.0f}, {r['lpc_middle'][1]:.0f} | {cells[0]} | {cells[1]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=Path("match_evalset"))
    parser.add_argument("-o", "--output", type=Path, default=Path("results/vowel_f1_diagnosis"))
    args = parser.parse_args(argv)
    if not (args.set / "cases.json").is_file():
        build_evalset(args.set, ["vowel"])
    fits = {source: fitted_knobs(path) for source, path in FITS.items()}
    cases = [c for c in load_evalset(args.set) if c.kind == "vowel"]
    rows = [diagnose(c, args.set, fits) for c in cases]
    command = shlex.join(["python", "scripts/vowel_f1_diagnosis.py"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(
        json.dumps({"command": command, "rows": rows}, indent=2)
    )
    args.output.with_suffix(".md").write_text(to_markdown(rows, command))
    print(to_markdown(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
