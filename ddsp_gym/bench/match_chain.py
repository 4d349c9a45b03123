"""``ddsp-gym bench chain``: staged vs joint fitting of a chained plant on sox's chains.

Each ``chain`` case of the evaluation set (:func:`~ddsp_gym.bench.evalset.chain_cases`:
a sox sawtooth note -> low-pass -> echo, truth recorded) is fitted by ``match`` with the
``saw_chain`` plant twice, with the same steps and seeds: stage by stage, earlier
stages frozen, then all together (:mod:`ddsp_gym.agents.staged`, what ``match --plant
saw_chain`` does), and jointly (``staged=False``: the single-stage schedule, a coarse
CMA-ES search over every knob, then the gradient). Both are scored against the truth
with :data:`~ddsp_gym.bench.match_eval.CRITERIA` and by the heard distance.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.bench.evalset import Case, build_evalset, load_evalset
from ddsp_gym.bench.match_eval import CRITERIA, knob_errors, passes

MODES = ("staged", "joint")
ECHO_OFF_MIX = 0.05  # a fit whose echo mix ended under this left the echo out
SAMPLE_RATE = 16_000


def fit_case(case: Case, folder: Path, out: Path, steps: int, seed: int, staged: bool) -> dict:
    """One ``match`` of ``case`` with its plant: knobs, errors, pass, distances, time."""
    from ddsp_gym.agents.match import heard_distance, match_file
    from ddsp_gym.audio_io import AudioConversionWarning, load_audio

    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        result = match_file(folder / case.target, case.plant, out, steps=steps, seed=seed,
                            show_progress=False, staged=staged)  # fmt: skip
        audio = load_audio(result.outputs["result"], SAMPLE_RATE)
        target = load_audio(result.outputs["target"], SAMPLE_RATE)
    errors = knob_errors(case, result.knobs)
    return {
        "knobs": result.knobs,
        "errors": errors,
        "pass": passes(case.kind, errors),
        "distance": result.distance,
        "distance_unit": result.distance_unit,
        "heard_db": heard_distance(audio, target, SAMPLE_RATE),
        "steps": result.steps,
        "wall_s": time.perf_counter() - began,
    }


def truth_distances(case: Case, folder: Path) -> tuple[float, float]:
    """The fine distance ``match`` scores at the case's recorded truth (its f0, length,
    cutoff, Q, echo time and mix; one echo: feedback 0), at the best level on a 1 dB
    grid: whether the objective itself prefers the truth to what the fits find. Then the
    same with the pitch at the analysis' f0, where ``match`` holds it."""
    from ddsp_gym.agents.match import env_settings_for_plant
    from ddsp_gym.analysis import analyze, prepare_target
    from ddsp_gym.audio_io import AudioConversionWarning, load_audio
    from ddsp_gym.envs.gym_env import DDSPEnv
    from ddsp_gym.plants import make_plant

    settings = env_settings_for_plant(case.plant)
    plant = make_plant(case.plant, **dict(settings.get("plant_config", {})))
    sr, n = plant.sample_rate, plant.n_samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        recording = load_audio(folder / case.target, sr)
    analysis = analyze(recording, sr)
    target, _ = prepare_target(recording, sr, n, analysis)
    env = DDSPEnv(plant=case.plant, target=target, input=None, **settings)
    env.reset(seed=0)
    t = case.truth
    knobs = {"frequency": t["f0_hz"], "length": t["length"], "cutoff": t["cutoff"],
             "resonance": t["resonance"], "time": t["time"], "feedback": 0.0,
             "mix": t["mix"]}  # fmt: skip
    level_spec = plant.knob_specs[plant.knob_names.index("level")]

    def best_over_level(pitch: float) -> float:
        distances = []
        for level in np.arange(level_spec.low, level_spec.high + 0.5, 1.0):
            physical = {**knobs, "frequency": pitch, "level": float(level)}
            unit = np.asarray(plant.knobs_from_physical(physical))
            distances.append(env.reward_of(2.0 * unit - 1.0)[1]["distance"])
        return float(min(distances))

    held_pitch = analysis.f0_hz if analysis.f0_hz is not None else t["f0_hz"]
    return best_over_level(t["f0_hz"]), best_over_level(held_pitch)


def evaluate_chain(
    folder: str | Path, steps: int, seeds: Sequence[int], progress: bool = True
) -> list[dict[str, Any]]:
    """Fit every chain case of the set in ``folder`` staged and jointly, per seed."""
    from tqdm import tqdm

    folder = Path(folder)
    cases = [c for c in load_evalset(folder) if c.kind == "chain"]
    if not cases:
        raise ValueError(f"{folder} has no chain cases: build it with the 'chain' group")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in tqdm(cases, desc="bench chain", unit="case", disable=not progress):
            at_truth, at_held_pitch = truth_distances(case, folder)
            for seed in seeds:
                row: dict[str, Any] = {"case": case.name, "seed": seed, "truth": case.truth,
                                       "source": case.source,
                                       "distance_at_truth": at_truth,
                                       "distance_at_truth_held_pitch": at_held_pitch}  # fmt: skip
                for mode in MODES:
                    out = Path(tmp) / case.name / f"{mode}_{seed}"
                    row[mode] = fit_case(case, folder, out, steps, seed, mode == "staged")
                rows.append(row)
    return rows


def summarize_fits(fits: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Of :func:`fit_case` results: fits, passes (all criteria) and passes per criterion,
    median heard and own distance, median wall time."""
    return {
        "fits": len(fits),
        "pass": int(sum(f["pass"] for f in fits)),
        **{f"{name}_ok": int(sum(f["errors"][name] <= tol for f in fits))
           for name, tol in CRITERIA["chain"]},
        "median_heard_db": float(np.median([f["heard_db"] for f in fits])),
        "median_distance": float(np.median([f["distance"] for f in fits])),
        "median_wall_s": float(np.median([f["wall_s"] for f in fits])),
    }  # fmt: skip


def summarize_chain(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mode: :func:`summarize_fits`, how often the echo was left out, the note length
    against the truth."""
    summary = {}
    for mode in MODES:
        fits = [r[mode] for r in rows]
        summary[mode] = {
            **summarize_fits(fits),
            "echo_off": int(sum(f["knobs"]["mix"] < ECHO_OFF_MIX for f in fits)),
            "note_length_pct_median": float(np.median(
                [100.0 * (f["knobs"]["length"] / r["truth"]["length"] - 1.0)
                 for f, r in zip(fits, rows, strict=True)])),
        }  # fmt: skip
    staged_closer = sum(r["staged"]["distance"] < r["joint"]["distance"] for r in rows)
    summary["staged"]["lower_distance_than_joint"] = int(staged_closer)
    for mode in MODES:
        for key in ("truth", "truth_held_pitch"):
            summary[mode][f"lower_distance_than_{key}"] = int(
                sum(r[mode]["distance"] < r[f"distance_at_{key}"] for r in rows)
            )
    return summary


def chain_markdown(rows: Sequence[dict[str, Any]], command: str, steps: int) -> str:
    summary = summarize_chain(rows)
    tolerances = ", ".join(f"{name} <= {tol:g}" for name, tol in CRITERIA["chain"])
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# Chained plant: staged vs joint fit on sox's saw -> low-pass -> echo",
        "",
        f"Made by `{command}` ({steps} plant queries per fit, seeds {seeds}). Cases: "
        "`chain_cases` in `ddsp_gym/bench/evalset.py` (sox, truth recorded); plant "
        "`saw_chain`; fine distance: MR-STFT (the `spectrum` task). *staged*: source, "
        "filter, effect in turn (earlier stages frozen, later ones bypassed), then all "
        "together (`agents/staged.py`); *joint*: `match(staged=False)`, coarse CMA-ES over "
        f"every knob, then the gradient. Pass: {tolerances} (all three). *heard*: log-mel "
        "L1 (dB), both at 0 dBFS RMS.",
        "",
        "| mode | fits | pass | pitch ok | cutoff ok | time ok | echo left out (mix < "
        f"{ECHO_OFF_MIX:g}) | note length vs truth (median) | median heard dB | "
        "median MR-STFT | median wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        s = summary[mode]
        lines.append(
            f"| {mode} | {s['fits']} | {s['pass']} | {s['pitch_cents_ok']} | "
            f"{s['cutoff_pct_ok']} | {s['time_pct_ok']} | {s['echo_off']} | "
            f"{s['note_length_pct_median']:+.0f} % | {s['median_heard_db']:.2f} | "
            f"{s['median_distance']:.3f} | {s['median_wall_s']:.1f} |"
        )
    closer = summary["staged"]["lower_distance_than_joint"]
    lines += [
        "",
        f"Staged reached a lower MR-STFT than joint on {closer} of {len(rows)} fits. "
        "Below the MR-STFT at the truth (*at truth*: the recorded settings, one echo, the "
        "best level on a 1 dB grid): staged "
        f"{summary['staged']['lower_distance_than_truth']}, joint "
        f"{summary['joint']['lower_distance_than_truth']} of {len(rows)}; below it with the "
        "pitch where `match` holds it, the analysis' f0 (*at truth, held f0*): staged "
        f"{summary['staged']['lower_distance_than_truth_held_pitch']}, joint "
        f"{summary['joint']['lower_distance_than_truth_held_pitch']}.",
        "",
        "| case | seed | mode | pitch cents | cutoff % | Q % | time % | mix abs | pass | "
        "heard dB | MR-STFT | at truth | at truth, held f0 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for mode in MODES:
            f, e = r[mode], r[mode]["errors"]
            lines.append(
                f"| {r['case']} | {r['seed']} | {mode} | {e['pitch_cents']:.1f} | "
                f"{e['cutoff_pct']:.1f} | {e['resonance_pct']:.0f} | {e['time_pct']:.1f} | "
                f"{e['mix_abs']:.2f} | {'yes' if f['pass'] else 'no'} | {f['heard_db']:.2f} | "
                f"{f['distance']:.3f} | {r['distance_at_truth']:.3f} | "
                f"{r['distance_at_truth_held_pitch']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def run_bench_chain(
    set_folder: str | Path, out: str | Path, steps: int, seeds: Sequence[int], command: str
) -> dict[str, dict[str, Any]]:
    """Build the chain cases if needed, fit them both ways, write ``match_chain.{json,md}``."""
    set_folder = Path(set_folder)
    if not (set_folder / "cases.json").is_file():
        build_evalset(set_folder, ["chain"])
    rows = evaluate_chain(set_folder, steps, seeds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_chain(rows)
    payload = {"command": command, "steps": steps, "seeds": list(seeds), "summary": summary,
               "rows": rows}  # fmt: skip
    (out / "match_chain.json").write_text(json.dumps(payload, indent=2))
    (out / "match_chain.md").write_text(chain_markdown(rows, command, steps))
    return summary
