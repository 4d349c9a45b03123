"""Parameter recovery: how often the gradient agent finds hidden knob settings.

For each env, seeds 0..K-1 each hide a knob setting (the env's own target
sampler); the gradient agent gets the env's episode budget with and without
restarts. Results are written after every env, so an interrupted run resumes;
each row records the code version that made it, and rows from another version
are run again (:mod:`ddsp_gym.agents.provenance`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents import provenance
from ddsp_gym.agents.base import QUERY_ENV_KWARGS
from ddsp_gym.agents.gradient import GradientAgent

VARIANTS: dict[str, GradientAgent] = {
    "no restarts": GradientAgent(patience=0),
    "restarts": GradientAgent(patience=25),
}


def recover_env(env_id: str, seeds: int, variant: str) -> dict:
    """One results row: success rate and spread for one env and agent variant."""
    env = gym.make(env_id, expose_grad=True, **QUERY_ENV_KWARGS)
    agent = VARIANTS[variant]
    start = time.perf_counter()
    results = [agent.solve(env, seed) for seed in range(seeds)]
    env.close()
    param_errors = [r.param_error for r in results if r.param_error is not None]
    return {
        "env_id": env_id,
        "variant": variant,
        "seeds": seeds,
        "recovered": sum(r.success for r in results),
        "median_steps": float(np.median([r.steps for r in results])),
        "median_param_error": float(np.median(param_errors)) if param_errors else None,
        "budget": env.spec.max_episode_steps,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def format_table(rows: list[dict]) -> str:
    """The Markdown table of the rows, one per (env, variant)."""
    return "\n".join(table_lines(rows))


def format_report(rows: list[dict]) -> str:
    """recovery.md: the table, dated by the rows' code versions."""
    return provenance.dated_table(table_lines(rows), rows) + "\n"


def table_lines(rows: list[dict]) -> list[str]:
    """:func:`format_table`'s lines: header, rule, one row per results row."""
    lines = [
        "| env | agent | recovered | median steps | median param error | budget | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        error = "n/a" if r["median_param_error"] is None else f"{r['median_param_error']:.3f}"
        lines.append(
            f"| {r['env_id']} | gradient, {r['variant']} | {r['recovered']}/{r['seeds']} | "
            f"{r['median_steps']:.0f} | {error} | {r['budget']} | {r['wall_s']:.0f} s |"
        )
    return lines


def _key(row: dict) -> tuple:
    return (row["env_id"], row["variant"], row["seeds"])


def run_recovery(env_ids: list[str], seeds: int, out_dir: str | Path) -> list[dict]:
    """Run (or resume) the recovery benchmark; writes recovery.json and recovery.md.

    Rows already stored for this code version (:func:`provenance.code_version`) are
    kept; a row of another version, or from before versions were recorded, is run
    again and replaced.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "recovery.json"
    version = provenance.code_version()
    rows: list[dict] = json.loads(json_path.read_text())["rows"] if json_path.is_file() else []
    done = {_key(r) for r in rows if provenance.is_current(r, version)}
    stale = {_key(r) for r in rows} - done
    cells = [(e, v) for e in env_ids for v in VARIANTS if (e, v, seeds) not in done]
    provenance.announce_stale(sum((e, v, seeds) in stale for e, v in cells))
    for env_id, variant in tqdm(cells, desc="recovery", unit="cell"):
        row = {**recover_env(env_id, seeds, variant), provenance.VERSION_KEY: version}
        rows = provenance.put(rows, row, _key)
        json_path.write_text(json.dumps({"rows": rows}, indent=2))
        (out_dir / "recovery.md").write_text(format_report(rows))
    return [r for r in rows if r["env_id"] in env_ids and r["seeds"] == seeds]
