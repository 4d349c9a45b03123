"""SpokenTimbre benchmark: CMA-ES on the embedding distance (no gradient) for each
spoken word, plus the proxy-vs-embedding rank agreement on held-out renders.

Writes ``results/spoken_timbre.json`` and ``.md`` (``scripts/spoken_timbre_bench.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cma
import numpy as np

from ddsp_gym.embedding.agreement import held_out_agreement, proxy_distances, render_batch
from ddsp_gym.embedding.models import cosine_distance, embed
from ddsp_gym.embedding.spoken import WORDS, speak
from ddsp_gym.plants import make_plant

MODELS = ("sound", "voice")


def embedding_objective(plant, target: np.ndarray):
    """unit knobs (d,) -> mean cosine distance over both models, and each model's."""
    sr = plant.sample_rate
    e_target = {m: embed(target, sr, m) for m in MODELS}

    def distances(knobs: np.ndarray) -> dict[str, float]:
        audio = render_batch(plant, np.asarray(knobs)[None])[0]
        return {m: cosine_distance(embed(audio, sr, m), e_target[m]) for m in MODELS}

    return distances


def cma_word(plant, target: np.ndarray, budget: int, popsize: int, seed: int) -> dict[str, Any]:
    """CMA-ES from mid-travel knobs on the mean embedding distance; best-so-far."""
    distances = embedding_objective(plant, target)
    x0 = np.full(plant.num_knobs, 0.5)
    start = distances(x0)
    best_x, best = x0, start
    es = cma.CMAEvolutionStrategy(
        x0, 0.3, {"bounds": [0, 1], "popsize": popsize, "seed": seed + 1, "verbose": -9}
    )
    evals = 1
    while evals + popsize <= budget:
        xs = es.ask()
        ds = [distances(np.asarray(x)) for x in xs]
        es.tell(xs, [float(np.mean(list(d.values()))) for d in ds])
        evals += popsize
        for x, d in zip(xs, ds, strict=True):
            if np.mean(list(d.values())) < np.mean(list(best.values())):
                best_x, best = np.asarray(x), d
    sr = plant.sample_rate
    proxy = proxy_distances(render_batch(plant, np.stack([x0, best_x])), target, sr)
    mean = lambda d: float(np.mean(list(d.values())))  # noqa: E731
    return {
        "start": {**start, "mean": mean(start), "proxy_db": float(proxy[0])},
        "best": {**best, "mean": mean(best), "proxy_db": float(proxy[1])},
        "best_knobs": [round(float(v), 4) for v in best_x],
        "evaluations": evals,
        "improved": mean(best) < mean(start),
        "relative_improvement": 1.0 - mean(best) / mean(start),
    }


def run_bench(
    out: str | Path = "results",
    budget: int = 41,
    popsize: int = 8,
    agreement_words: int = 6,
    agreement_renders: int = 40,
    seed: int = 0,
) -> dict[str, Any]:
    """Run both parts and write the results files; returns the report."""
    t0 = time.perf_counter()
    plant = make_plant("formant", duration=0.5)
    sr, n = plant.sample_rate, plant.n_samples
    targets = {w: speak(w, sr, n) for w in WORDS}
    words = {w: cma_word(plant, t, budget, popsize, seed) for w, t in targets.items()}
    t_cma = time.perf_counter() - t0
    held = held_out_agreement(
        plant, {w: targets[w] for w in WORDS[:agreement_words]}, agreement_renders, MODELS
    )
    rho = {m: [held[w][m].spearman for w in held] for m in MODELS}
    improved = sum(r["improved"] for r in words.values())
    report = {
        "plant": "formant (duration 0.5 s, 16 kHz)",
        "objective": "mean cosine distance of aisfx (sound) and resemblyzer (voice) embeddings",
        "search": f"CMA-ES sigma0 0.3, popsize {popsize}, budget {budget} renders, from mid knobs",
        "improved": improved,
        "total": len(words),
        "improved_fraction": improved / len(words),
        "median_relative_improvement": float(
            np.median([r["relative_improvement"] for r in words.values()])
        ),
        "words": words,
        "agreement": {
            "renders_per_word": agreement_renders,
            "per_word": {w: {m: held[w][m].__dict__ for m in MODELS} for w in held},
            "mean_spearman": {m: float(np.mean(v)) for m, v in rho.items()},
        },
        "wall_s": {"cma": t_cma, "total": time.perf_counter() - t0},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spoken_timbre.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "spoken_timbre.md").write_text(_markdown(report))
    return report


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# SpokenTimbre: CMA-ES on the embedding distance",
        "",
        "Made by `python scripts/spoken_timbre_bench.py` (ddsp_gym/embedding/bench.py).",
        f"Plant: {r['plant']}. Objective: {r['objective']}. Search: {r['search']}.",
        "",
        f"**Improved the embedding distance on {r['improved']} of {r['total']} words "
        f"({100 * r['improved_fraction']:.0f} %)**; median relative improvement "
        f"{100 * r['median_relative_improvement']:.1f} %.",
        "",
        "| word | start (mean) | best (mean) | sound start -> best | voice start -> best "
        "| proxy dB start -> best |",
        "|---|---|---|---|---|---|",
    ]
    for w, x in r["words"].items():
        s, b = x["start"], x["best"]
        lines.append(
            f"| {w} | {s['mean']:.4f} | {b['mean']:.4f} | {s['sound']:.4f} -> {b['sound']:.4f} "
            f"| {s['voice']:.4f} -> {b['voice']:.4f} | {s['proxy_db']:.2f} -> {b['proxy_db']:.2f} |"
        )
    a = r["agreement"]
    lines += [
        "",
        f"## Proxy vs embedding: Spearman rank correlation on {a['renders_per_word']} "
        "held-out random patches per word",
        "",
        "| word | sound rho | voice rho |",
        "|---|---|---|",
    ]
    for w, x in a["per_word"].items():
        lines.append(f"| {w} | {x['sound']['spearman']:.3f} | {x['voice']['spearman']:.3f} |")
    m = a["mean_spearman"]
    lines += [
        f"| **mean** | **{m['sound']:.3f}** | **{m['voice']:.3f}** |",
        "",
        f"Wall time {r['wall_s']['total']:.0f} s (CMA-ES {r['wall_s']['cma']:.0f} s).",
        "",
    ]
    return "\n".join(lines)
