"""The sound designer's benchmark: fixed prompts x start patches -> results/sound_designer.*

Per prompt and start patch: did every named descriptor move the asked way by at least
the asked change (:data:`ddsp_gym.design.designer.PASS_SHARE` of it), and did every
untouched descriptor stay within its lexicon bound? Run by
``python scripts/sound_designer_bench.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.design.designer import PASS_SHARE, ROUNDS, design, render_and_measure
from ddsp_gym.design.parser import default_lexicon
from ddsp_gym.features.timbre import DESCRIPTORS
from ddsp_gym.plants import make_plant

REACH_SAMPLES = 1024
# The plants the benchmark compares: the voice made for design, and FM2 for reference.
BENCH_PLANTS: tuple[str, ...] = ("designer_voice", "fm2")

# A fixed list: plain words, comparatives, intensities, negations and combinations.
PROMPTS: tuple[str, ...] = (
    "brighter",
    "slightly brighter",
    "much darker",
    "warmer",
    "thinner",
    "make it brighter, add a metallic edge",
    "more metallic",
    "less metallic",
    "purer and darker",
    "more sustained",
    "shorter",
    "much longer",
    "a bit brighter and more sustained",
    "darker, warmer and longer",
    "very bright and short",
    "not harsh, slightly darker",
    "mellow and ringing",
    "smoother",
    "rougher",
    "noisier",
    "louder",
    "quieter",
    "punchier",
    "breathy and bright",
)
# Start patches per plant, unit knobs. designer_voice (tilt_db, stretch, body_db,
# am_depth, attack_s, decay_s, noise, level_db): mid travel; a bell (brighter, more
# inharmonic, smoother, longer); a dark pluck (darker, fuller, fast attack, short decay).
# Each leaves room both ways on every descriptor a prompt below names: a patch already
# at an end of a knob (a pure sine, a note ringing to its end) cannot go further.
# fm2 (carrier_hz, ratio, index, index_decay, amp_decay): mid travel; a bell (ratio 1.4,
# long decays); a dark pluck (low index, short decays, ratio near 1.5).
START_PATCHES: dict[str, dict[str, list[float]]] = {
    "designer_voice": {
        "mid": [0.5] * 8,
        "bell": [0.45, 0.65, 0.4, 0.35, 0.3, 0.52, 0.4, 0.5],
        "dark_pluck": [0.58, 0.62, 0.45, 0.45, 0.25, 0.3, 0.5, 0.6],
    },
    "fm2": {
        "mid": [0.5, 0.5, 0.5, 0.5, 0.5],
        "bell": [0.6, 0.375, 0.6, 0.7, 0.8],
        "dark_pluck": [0.3, 0.55, 0.2, 0.3, 0.3],
    },
}


def reach(plant: str, starts: dict[str, list[float]], samples: int = REACH_SAMPLES) -> dict:
    """How far each descriptor can move at all from each start: the least and greatest
    change over ``samples`` uniformly random knob settings (no bound on the others).

    Tells a prompt the plant cannot follow (a fixed attack, a fixed level) from one the
    solver failed at.
    """
    import jax

    from ddsp_gym.design.designer import RENDER_KEY
    from ddsp_gym.features.timbre import descriptors

    plant_obj = make_plant(plant)
    key = jax.random.PRNGKey(RENDER_KEY)
    knobs = jax.random.uniform(jax.random.PRNGKey(1), (samples, plant_obj.num_knobs))
    heard = jax.jit(
        jax.vmap(lambda k: descriptors(plant_obj.render(k, key), plant_obj.sample_rate))
    )
    values = np.concatenate(
        [np.asarray(heard(chunk)) for chunk in np.split(knobs, max(1, samples // 128))]
    )
    table = {}
    for name, start in starts.items():
        base = render_and_measure(plant_obj, np.asarray(start, np.float32))[1]
        table[name] = {
            d: [float(values[:, i].min() - base[i]), float(values[:, i].max() - base[i])]
            for i, d in enumerate(DESCRIPTORS)
        }
    return table


def bench_plant(
    plant: str,
    steps: int = 150,
    restarts: int = 4,
    prompts: tuple[str, ...] = PROMPTS,
    reach_samples: int = REACH_SAMPLES,
) -> dict[str, Any]:
    """Design every prompt from every start patch of ``plant``: its report (one table)."""
    if plant not in START_PATCHES:
        raise ValueError(f"no start patches for {plant!r}; known: {sorted(START_PATCHES)}")
    start_time = time.perf_counter()
    cases = []
    for prompt in prompts:
        for start_name, start in START_PATCHES[plant].items():
            result = design(prompt, plant, np.asarray(start, np.float32), steps, restarts)
            cases.append(
                {
                    "prompt": prompt,
                    "start": start_name,
                    "goal": result.goal,
                    "success": result.success,
                    "targets_ok": all(ln.ok for ln in result.lines if ln.role == "target"),
                    "untouched_ok": all(ln.ok for ln in result.lines if ln.role == "untouched"),
                    "distance": result.distance,
                    "descriptors": {
                        ln.name: {
                            "role": ln.role,
                            "goal": ln.goal,
                            "achieved": ln.achieved,
                            "limit": ln.limit,
                            "ok": bool(ln.ok),
                        }
                        for ln in result.lines
                    },
                }
            )
    lexicon = default_lexicon()
    return {
        "reach": reach(plant, START_PATCHES[plant], reach_samples),
        "reach_samples": reach_samples,
        "plant": plant,
        "steps": steps,
        "restarts": restarts,
        "rounds": ROUNDS,
        "pass_share": PASS_SHARE,
        "bounds": lexicon.bounds,
        "steps_per_word": lexicon.steps,
        "start_patches": START_PATCHES[plant],
        "wall_s": time.perf_counter() - start_time,
        "cases": cases,
        "passed": sum(c["success"] for c in cases),
        "total": len(cases),
    }


def run_bench(
    out_dir: str | Path = "results",
    plants: str | tuple[str, ...] = BENCH_PLANTS,
    steps: int = 150,
    restarts: int = 4,
    prompts: tuple[str, ...] = PROMPTS,
    reach_samples: int = REACH_SAMPLES,
) -> dict[str, Any]:
    """Bench every plant of ``plants``; write sound_designer.{json,md} (a table per plant)."""
    names = (plants,) if isinstance(plants, str) else tuple(plants)
    unknown = [name for name in names if name not in START_PATCHES]
    if unknown or not names:
        raise ValueError(f"no start patches for {unknown or names}; known: {sorted(START_PATCHES)}")
    report = {
        "plants": {
            name: bench_plant(name, steps, restarts, prompts, reach_samples) for name in names
        }
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sound_designer.json").write_text(json.dumps(_rounded(report), indent=1))
    (out / "sound_designer.md").write_text(
        "\n".join(markdown(plant_report) for plant_report in report["plants"].values())
    )
    return report


def _rounded(value: Any, digits: int = 4) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits (a small file)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    return value


def _cell(case: dict[str, Any], reach: dict[str, list[float]]) -> str:
    """pass, or FAIL naming the short targets (``*``: beyond the plant's reach) and drifts."""
    if case["success"]:
        return "pass"
    short = []
    for name, d in case["descriptors"].items():
        if d["role"] == "target" and not d["ok"]:
            low, high = reach[name]
            short.append(name + ("*" if not low <= d["limit"] <= high else ""))
    drift = [n for n, d in case["descriptors"].items() if d["role"] == "untouched" and not d["ok"]]
    parts = [f"short: {', '.join(short)}"] if short else []
    parts += [f"drift: {', '.join(drift)}"] if drift else []
    return "FAIL (" + "; ".join(parts) + ")"


def markdown(report: dict[str, Any]) -> str:
    """The results table: one row per prompt, one column per start patch."""
    starts = list(report["start_patches"])
    lines = [
        f"## Sound designer benchmark: {report['plant']}",
        "",
        "Made by `python scripts/sound_designer_bench.py` (ddsp_gym/design/bench.py). "
        f"Adam, {report['steps']} steps x {report['restarts']} starts (the start patch and "
        f"jittered copies) per round, up to {report.get('rounds', 1)} rounds per case (a "
        "further round restarts around the best patch while it fails). A case passes "
        "when every descriptor the prompt names "
        f"moved the asked way by at least {report['pass_share']:g} x the asked change "
        "and every untouched descriptor drifted no more than its bound "
        "(coupled ones, warmth with brightness, are free).",
        "",
        f"**Passed {report['passed']} of {report['total']}** "
        f"({len(report['cases']) // len(starts)} prompts x {len(starts)} start patches) "
        f"in {report['wall_s']:.0f} s.",
        "",
        "| prompt | goal | " + " | ".join(starts) + " |",
        "|---|---|" + "---|" * len(starts),
    ]
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for case in report["cases"]:
        by_prompt.setdefault(case["prompt"], []).append(case)
    for prompt, cases in by_prompt.items():
        goal = ", ".join(f"{k} {v:+.3g}" for k, v in cases[0]["goal"].items())
        cells = " | ".join(_cell(c, report["reach"][c["start"]]) for c in cases)
        lines.append(f"| {prompt} | {goal} | {cells} |")

    def within_reach(case: dict[str, Any]) -> bool:
        span = report["reach"][case["start"]]
        return all(
            span[n][0] <= d["limit"] <= span[n][1]
            for n, d in case["descriptors"].items()
            if d["role"] == "target"
        )

    every = report["cases"]
    reachable = [c for c in every if within_reach(c)]
    beyond = len(every) - len(reachable)
    lines += [
        "",
        f"`*`: the asked change lies beyond what any of {report['reach_samples']} random "
        f"knob settings reaches from that start (table below): {beyond} of "
        f"{report['total']} cases ask for what the plant cannot do at all. Of the "
        f"{len(reachable)} within reach, {sum(c['success'] for c in reachable)} passed. "
        f"Named descriptors moved far enough in {sum(c['targets_ok'] for c in every)} of "
        f"{len(every)} cases; untouched ones stayed within their bounds in "
        f"{sum(c['untouched_ok'] for c in every)} of {len(every)}.",
        "",
        f"Reach: the least and greatest change of each descriptor over {report['reach_samples']} "
        "random knob settings (others unconstrained): a target outside it cannot be met.",
        "",
        "| descriptor | " + " | ".join(starts) + " |",
        "|---|" + "---|" * len(starts),
    ]
    for d in DESCRIPTORS:
        cells = " | ".join(
            f"{report['reach'][s][d][0]:+.2f} .. {report['reach'][s][d][1]:+.2f}" for s in starts
        )
        lines.append(f"| {d} | {cells} |")
    lines += [
        "",
        "Bounds on untouched drift: "
        + ", ".join(f"{k} {v:g}" for k, v in report["bounds"].items())
        + " (units: docs/sound_designer.md).",
        "",
    ]
    return "\n".join(lines)
