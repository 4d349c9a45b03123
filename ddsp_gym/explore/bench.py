"""MAP-Elites against random sampling at equal budget: coverage and QD-score per seed.

Both methods get the same map (axes, cells, the plant's fixed ranges), the same budget
of sounds heard, the same seeds, and start from the same random draw (random sampling
continues it, MAP-Elites mutates its elites). Written as ``NAME.json`` (every run, with
its curve) and ``NAME.md`` (means, spreads and per-seed wins) in the results folder.
"""

from __future__ import annotations

import json
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.explore.descriptors import DEFAULT_AXES, OBJECTIVE_TEXT
from ddsp_gym.explore.search import METHODS, MapSpace, run


def bench_runs(
    sources: Sequence[dict[str, Any]],
    budgets: Sequence[int],
    seeds: Sequence[int],
    cells: tuple[int, int],
    backend: str = "sim",
    axes: tuple[str, str] = DEFAULT_AXES,
    hardware: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per (source, budget, seed, method): filled cells, coverage, QD-score."""
    from ddsp_gym.explore.commands import build

    rows = []
    for source in sources:
        for budget in budgets:
            for seed in seeds:
                for method in METHODS:
                    evaluator, ranges = build(source, backend, seed, hardware, note=log)
                    try:
                        space = MapSpace(axes, cells, (ranges[axes[0]], ranges[axes[1]]))
                        overhead = evaluator.takes  # a device's reset takes
                        start = time.perf_counter()
                        result = run(method, evaluator, space, budget - overhead, seed)
                        seconds = time.perf_counter() - start
                    finally:
                        evaluator.close()
                    row = {
                        "source": source.get("env") or source.get("plant"),
                        "backend": backend,
                        "budget": budget,
                        "seed": seed,
                        "method": method,
                        "sounds": result.evaluations,
                        "takes": result.takes,
                        "silent_takes": getattr(evaluator, "silent", 0),
                        "cells": int(np.prod(cells)),
                        "filled": result.filled,
                        "coverage": round(result.coverage, 4),
                        "qd_score": round(result.qd_score, 3),
                        "seconds": round(seconds, 2),
                        "stopped": result.stopped,
                        "curve": result.curve,
                    }
                    rows.append(row)
                    log(
                        f"{row['source']} budget {budget} seed {seed} {method}: "
                        f"{row['filled']}/{row['cells']} cells, QD {row['qd_score']:.1f}"
                    )
    return rows


def table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (source, budget): both methods' mean and std of coverage and QD-score, and the
    seeds on which MAP-Elites' coverage beat, tied or lost to random sampling's."""
    out = []
    keys = sorted({(r["source"], r["budget"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for source, budget in keys:
        cell = [r for r in rows if r["source"] == source and r["budget"] == budget]
        by = {
            m: sorted((r for r in cell if r["method"] == m), key=lambda r: r["seed"])
            for m in METHODS
        }
        me, rnd = by["map_elites"], by["random"]
        diff = [a["filled"] - b["filled"] for a, b in zip(me, rnd, strict=True)]
        entry = {"source": source, "budget": budget, "seeds": len(me), "cells": cell[0]["cells"]}
        for m in METHODS:
            for key in ("coverage", "qd_score"):
                values = np.array([r[key] for r in by[m]], np.float64)
                entry[f"{m}_{key}"] = float(values.mean())
                entry[f"{m}_{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        entry["wins"] = sum(d > 0 for d in diff)
        entry["ties"] = sum(d == 0 for d in diff)
        entry["losses"] = sum(d < 0 for d in diff)
        out.append(entry)
    return out


def markdown(summary: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# {meta['title']}",
        "",
        f"Made by `{meta['command']}` ({meta['date']}, {meta['machine']}).",
        "",
        f"Map: {meta['axes'][0]} x {meta['axes'][1]}, {meta['cells'][0]} x {meta['cells'][1]} "
        f"cells over each plant's fixed 1st-99th percentile ranges "
        f"(ddsp_gym/explore/ranges.json); backend {meta['backend']}. Objective: "
        f"{OBJECTIVE_TEXT}. Coverage: filled cells / all cells; QD-score: sum of the "
        "elites' objectives. Budget: sounds heard by each method"
        + (" (takes on the device, its reset's included)" if meta["backend"] != "sim" else "")
        + "; both methods start from the same random draw.",
        "",
        "| source | budget | seeds | coverage MAP-Elites | coverage random | QD-score MAP-Elites "
        "| QD-score random | MAP-Elites more cells (win/tie/loss) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['source']} | {e['budget']} | {e['seeds']} "
            f"| {e['map_elites_coverage']:.1%} ± {e['map_elites_coverage_std']:.1%} "
            f"| {e['random_coverage']:.1%} ± {e['random_coverage_std']:.1%} "
            f"| {e['map_elites_qd_score']:.1f} ± {e['map_elites_qd_score_std']:.1f} "
            f"| {e['random_qd_score']:.1f} ± {e['random_qd_score_std']:.1f} "
            f"| {e['wins']}/{e['ties']}/{e['losses']} |"
        )
    lines += ["", "± is the standard deviation over seeds.", ""]
    if meta.get("notes"):
        lines += [*meta["notes"], ""]
    return "\n".join(lines)


def write_bench(
    rows: list[dict[str, Any]], meta: dict[str, Any], out: Path, name: str
) -> tuple[Path, Path]:
    """Write ``name``.json (meta, summary, every run) and ``name``.md into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = table(rows)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=1) + "\n"
    )
    stopped = [r for r in rows if r.get("stopped")]
    if stopped:  # say which runs a device cut short, and why
        meta = {
            **meta,
            "notes": [*meta.get("notes", []), "Runs the device cut short:", ""]
            + [
                f"- {r['source']} budget {r['budget']} seed {r['seed']} {r['method']}: "
                f"{r['sounds']} sounds, {r['stopped']}"
                for r in stopped
            ],
        }
    md_path.write_text(markdown(summary, meta))
    return json_path, md_path


def bench_meta(
    title: str, argv: Sequence[str], backend: str, axes: Sequence[str], cells: Sequence[int]
) -> dict[str, Any]:
    return {
        "title": title,
        "command": shlex.join(argv),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "backend": backend,
        "axes": list(axes),
        "cells": list(cells),
    }
