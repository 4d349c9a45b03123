"""``ddsp-gym bench hw``: the search agents on a real synth (or the rig's).

Each agent works on hidden patches played on the device: reset seed
``EVAL_SEED_OFFSET + i`` picks the sim's hidden knobs for that seed, the device
plays them (the recorded target), and every query is a take on the device,
scored by the same task code as the sim. The hybrid agent steers by the sim
twin's gradient against the recorded target (no take, no budget) and by SPSA
from the takes' rewards (:mod:`ddsp_gym.agents.hybrid`).

``knobs`` limits the search to a subset of the env's knobs: the others are held
at the hidden patch's own (quantized) values, so the patch is hidden "over"
those knobs only. A take lasts at least the note plus its tail (the physical
limit, recorded per cell), plus the knob map's settle time and the round-trip
latency; the cell records the measured wall time per query next to it, and
the xrun retries the backend made.

With ``blind=True`` the agents get no hidden knobs at all: each seed's hidden
patch is played once and saved as a WAV file (float samples: a 16-bit file of a
quiet take adds quantization noise to every distance) with the device values that
made it; the agents then work on ``gym.make(env, target=that_wav)``, as with a
sound a musician brings, and success is the device's noise-aware rule on the
sound (:func:`ddsp_gym.backends.hardware.success_rule`). The hidden values are
kept for the record (``true_sent``) next to the best query's (``best_sent``).

Runs are stored per seed, so an interrupted benchmark resumes at the next seed.
Each run records the code version that made it (:mod:`ddsp_gym.agents.provenance`);
a cell's runs from another version are dropped and its seeds played again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import soundfile as sf
from tqdm import tqdm

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents import provenance
from ddsp_gym.agents.base import QUERY_ENV_KWARGS, SolveResult
from ddsp_gym.agents.benchmark import (
    SEARCH_AGENTS,
    eval_seeds,
    fmt,
    make_search_agent,
    summarize,
    write_json_atomic,
)
from ddsp_gym.backends.hardware import HardwareBackend
from ddsp_gym.catalog import DEFAULT_HW_ENV, HW_AGENTS
from ddsp_gym.plants import make_plant


class KnobSubset:
    """An env seen through a subset of its knobs; the others sit at the hidden patch's values.

    A :class:`ddsp_gym.agents.base.QueryableEnv` on the reduced action vector; logs
    every query's wall time and the backend's take attempts (1 + xrun retries).
    """

    def __init__(self, env: gym.Env, knobs: Sequence[str] | None = None) -> None:
        self.env = env
        self.base = env.unwrapped
        names = list(self.base.plant.knob_names)
        knobs = list(knobs or names)
        unknown = [k for k in knobs if k not in names]
        if unknown:
            raise ValueError(f"{unknown} are not knobs of this env; its knobs are {names}")
        self.knobs = knobs
        self.free = np.array([names.index(k) for k in knobs])
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(knobs),), np.float32)
        self.config = self.base.config
        self.capabilities = self.base.capabilities
        self.differentiable = self.base.differentiable
        self.fixed = np.zeros(len(names), np.float32)
        self.reset_s = 0.0
        self.query_s: list[float] = []
        self.attempts: list[int] = []
        self.true_sent: dict[str, dict[str, float]] | None = None
        self.rule: dict[str, Any] | None = None  # the last query's success rule

    @property
    def unwrapped(self) -> KnobSubset:
        return self

    def reset(self, *, seed: int | None = None):
        start = time.perf_counter()
        obs, info = self.env.reset(seed=seed)
        self.reset_s = time.perf_counter() - start  # the target's and the start's takes
        # The hidden patch as an action (control="absolute": a = 2u - 1), quantized knobs.
        target = np.asarray(self.base.state.target_knobs, np.float32)
        self.fixed = (2.0 * target - 1.0).clip(-1, 1)
        self.true_sent = self.device_values(target) if bool(self.base.state.target_known) else None
        d = len(self.fixed)
        return np.asarray(obs)[:d][self.free], info

    def device_values(self, unit_knobs: np.ndarray) -> dict[str, dict[str, float]]:
        """{knob: {"sent": device value, "physical": twin's unit}} the device plays for
        ``unit_knobs`` (every knob of the env, quantized by its knob map); a backend
        that is no device (the sim standing in, in tests) sends nothing: "sent" None."""
        units = np.asarray(unit_knobs, np.float32)
        backend = self.base.backend
        if isinstance(backend, HardwareBackend):
            _, sent = backend.quantize(units)
            return {name: {"sent": s.value, "physical": s.physical} for name, s in sent.items()}
        specs = self.base.plant.knob_specs
        return {
            s.name: {"sent": None, "physical": float(s.to_physical(float(u)))}
            for s, u in zip(specs, units, strict=True)
        }

    def recovered_values(self, action: np.ndarray) -> dict[str, dict[str, float]]:
        """:meth:`device_values` of an action of this subset (control="absolute")."""
        return self.device_values((self.full_action(action) + 1.0) / 2.0)

    def full_action(self, action: np.ndarray) -> np.ndarray:
        """The env's action: the free knobs from ``action``, the rest at the hidden patch."""
        full = self.fixed.copy()
        full[self.free] = np.asarray(action, np.float32)
        return full

    def reward_of(self, action, with_grad: bool = False) -> tuple[float, dict[str, Any]]:
        # with_grad is passed on: the device backend refuses it (the twin's gradient is
        # twin_reward_and_grad), so no gradient ever comes back to cut to the subset.
        start = time.perf_counter()
        reward, info = self.base.reward_of(self.full_action(action), with_grad=with_grad)
        self.query_s.append(time.perf_counter() - start)
        report = info.get("hardware", {})
        self.attempts.append(int(report.get("attempts", 1)))
        self.rule = report.get("success_rule", self.rule)
        return reward, info

    def twin_reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        reward, grad = self.base.twin_reward_and_grad(self.full_action(action))
        return reward, np.asarray(grad)[self.free]


def make_hw_env(
    env_id: str, budget: int, hardware: dict[str, Any] | None, target: str | None = None
) -> gym.Env:
    """The hardware env, devices opened, latency known and the scoring code compiled."""
    env = gym.make(
        env_id,
        backend="hardware",
        hardware=hardware or {},
        max_episode_steps=budget,
        target=target,
        **QUERY_ENV_KWARGS,
    )
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    env.unwrapped.reward_of(zero)
    env.unwrapped.twin_reward_and_grad(zero)
    return env


def physical_limit(env: gym.Env) -> dict[str, float]:
    """Seconds a take cannot beat: the note and its tail; and the take's floor with overheads."""
    base = env.unwrapped
    hw = base.backend
    note = float(base.plant.duration)
    tail = float(hw.config.tail_s)
    latency = float(hw.latency_frames) / float(hw.samplerate)
    return {
        "note_s": note,
        "tail_s": tail,
        "physical_limit_s": note + tail,
        "settle_s": float(hw.settle_s),
        "latency_s": latency,
        "take_floor_s": note + tail + float(hw.settle_s) + latency,
    }


def run_record(seed: int, result: SolveResult, proxy: KnobSubset, reset_s: float) -> dict:
    """One seed's outcome as stored in the results file."""
    return {
        "seed": seed,
        "success": bool(result.success),
        "queries": int(result.queries),
        "queries_to_success": result.queries_to_success,
        "twin_queries": int(result.twin_queries),
        "best_distance": float(result.best_distance),
        "final_distance": float(result.final_distance),
        "param_error": None if result.param_error is None else float(result.param_error),
        "distances": [float(d) for d in result.distances],
        "wall_s": float(result.wall_s),
        "reset_s": float(reset_s),
        "query_s": [round(s, 4) for s in proxy.query_s],
        "retries": int(sum(a - 1 for a in proxy.attempts)),
        # What the device was sent: the hidden patch's values and the best query's.
        "true_sent": proxy.true_sent,
        "best_sent": proxy.recovered_values(result.best_action),
        "success_rule": None
        if proxy.rule is None
        else {
            k: proxy.rule[k] for k in ("threshold", "sim_threshold", "noise_floor", "decided_by")
        },
    }


def as_result(record: dict[str, Any]) -> SolveResult:
    return SolveResult(
        success=record["success"],
        steps=0,
        final_distance=record["final_distance"],
        best_distance=record["best_distance"],
        best_action=np.zeros(0, np.float32),
        param_error=record["param_error"],
        distances=record["distances"],
        queries=record["queries"],
        queries_to_success=record["queries_to_success"],
        wall_s=record["wall_s"],
        twin_queries=record["twin_queries"],
    )


def hw_cell(
    env_id: str,
    agent: str,
    knobs: Sequence[str],
    budget: int,
    runs: Sequence[dict[str, Any]],
    limit: dict[str, float],
    task: Any,
) -> dict[str, Any]:
    """The table cell of one agent's seeds, with the hardware's timing next to the limit."""
    cell = summarize(env_id, agent, [as_result(r) for r in runs], budget, 0.0, task)
    query_s = np.concatenate([np.asarray(r["query_s"], np.float64) for r in runs])
    total_s = sum(r["wall_s"] + r["reset_s"] for r in runs)
    queries = sum(r["queries"] for r in runs)
    cell.update(
        backend="hardware",
        knobs=list(knobs),
        wall_s=float(total_s),
        median_query_s=float(np.median(query_s)),
        # Everything the cell spent (agent, twin gradients, the two takes of each reset) per query.
        wall_s_per_query=float(total_s / max(queries, 1)),
        median_twin_queries=float(np.median([r["twin_queries"] for r in runs])),
        retries=int(sum(r["retries"] for r in runs)),
        **limit,
    )
    return cell


def cell_id(
    env_id: str, agent: str, knobs: Sequence[str], budget: int, seeds: int, blind: bool = False
) -> str:
    key = f"{env_id}|{agent}|{','.join(knobs)}|{budget}|{seeds}"
    return f"{key}|blind" if blind else key


def record_targets(
    env_id: str, hardware: dict[str, Any] | None, seeds: Sequence[int], folder: Path
) -> dict[int, dict[str, Any]]:
    """Blind targets: each seed's hidden patch played on the device and saved as
    ``<env>_<seed>.wav`` (float) and ``.json`` (hidden unit knobs, device values);
    targets already on disk are kept, so a rerun plays against the same sounds."""
    folder.mkdir(parents=True, exist_ok=True)
    targets: dict[int, dict[str, Any]] = {}
    env = None
    try:
        for seed in seeds:
            wav = folder / f"{env_id.split('/')[-1]}_{seed}.wav"
            meta = wav.with_suffix(".json")
            if wav.is_file() and meta.is_file():
                targets[seed] = json.loads(meta.read_text())
                continue
            if env is None:
                env = gym.make(env_id, backend="hardware", hardware=hardware or {})
            env.reset(seed=seed)
            base = env.unwrapped
            hidden = np.asarray(base.state.target_knobs, np.float32)
            sf.write(str(wav), base.target_audio(), base.plant.sample_rate, subtype="FLOAT")
            targets[seed] = {
                "seed": seed,
                "wav": str(wav),
                "hidden_unit": hidden.tolist(),
                "true_sent": KnobSubset(env).device_values(hidden),
            }
            meta.write_text(json.dumps(targets[seed], indent=1))
    finally:
        if env is not None:
            env.close()
    return targets


def searched_knobs(env_id: str, knobs: Sequence[str] | None) -> list[str]:
    """The knobs a run searches (all of the env's plant when ``knobs`` is None), read off
    the registry without opening a device: :class:`KnobSubset`'s ``knobs``."""
    if knobs:
        return list(knobs)
    kwargs = gym.spec(env_id).kwargs
    return list(make_plant(kwargs["plant"], **(kwargs.get("plant_config") or {})).knob_names)


def drop_stale_runs(document: dict[str, Any], key: str, version: str) -> list[dict[str, Any]]:
    """The cell's stored runs of ``version``; runs of other versions are dropped, and the
    cell made of them with them."""
    runs = document["runs"].setdefault(key, [])
    current = [r for r in runs if provenance.is_current(r, version)]
    if len(current) != len(runs):
        document["runs"][key] = current
        document["cells"].pop(key, None)
    return document["runs"][key]


def load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {"runs": {}, "cells": {}}


def format_table(cells: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per (env, knobs, agent), timing next to the physical limit."""
    return "\n".join(table_lines(cells))


def table_lines(cells: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`format_table`'s lines: header, rule, one row per cell."""
    lines = [
        "| env | knobs | agent | success | median queries to success | median best distance "
        "| median param error | median s/query (take) | s/query (all) | note + tail "
        "| xrun retries | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['env'].split('/')[-1]} | {', '.join(c['knobs'])} | {c['agent']} "
            f"| {c['successes']}/{c['seeds']} | {fmt(c['median_queries_to_success'], '.0f')} "
            f"| {fmt(c['median_best_distance'], '.3g')} {c['distance_unit']} "
            f"| {fmt(c['median_param_error'], '.3f')} | {c['median_query_s']:.3f} s "
            f"| {c['wall_s_per_query']:.3f} s | {c['physical_limit_s']:.3f} s "
            f"| {c['retries']} | {c['wall_s'] / 60:.1f} min |"
        )
    return lines


def run_lines(document: dict[str, Any]) -> list[str]:
    """One row per run that knows its target's device values: what was sent for the
    hidden patch, what the best query sent, and the rule that judged success."""
    lines = [
        "| env | agent | seed | success | takes | best distance | threshold (rule) "
        "| hidden: sent (physical) | best query: sent (physical) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in document.get("runs", {}).items():
        env, agent = key.split("|")[:2]
        for r in sorted(runs, key=lambda r: r["seed"]):
            if not r.get("true_sent"):
                continue
            rule = r.get("success_rule") or {}
            threshold = f"{rule['threshold']:.3g} ({rule['decided_by']})" if rule else "–"
            lines.append(
                f"| {env.split('/')[-1]} | {agent} | {r['seed']} "
                f"| {'yes' if r['success'] else 'no'} | {r['queries']} "
                f"| {r['best_distance']:.3g} | {threshold} "
                f"| {_values(r['true_sent'])} | {_values(r['best_sent'])} |"
            )
    return lines if len(lines) > 2 else []


def _values(sent: dict[str, dict[str, float]]) -> str:
    return ", ".join(
        f"{name} {v['sent']} ({v['physical']:.4g})" for name, v in sorted(sent.items())
    )


def format_report(cells: Sequence[dict[str, Any]], document: dict[str, Any] | None = None) -> str:
    commands = list(dict.fromkeys(c.get("command") for c in cells if c.get("command")))
    made = "\n".join(f"    {command}" for command in commands)
    limit = cells[0] if cells else {}
    timing = (
        f"A take cannot be shorter than the note plus its tail ({limit.get('note_s', 0):.2f} s + "
        f"{limit.get('tail_s', 0):.2f} s = {limit.get('physical_limit_s', 0):.2f} s, the physical "
        f"limit); the backend adds the knob map's settle time ({limit.get('settle_s', 0):.3f} s) "
        f"and the round-trip latency it records ({limit.get('latency_s', 0) * 1e3:.1f} ms): "
        f"{limit.get('take_floor_s', 0):.3f} s. 's/query (take)' is the median wall time of one "
        "query (a take, scored); 's/query (all)' divides the cell's whole wall time (agent, "
        "sim-twin gradients, the target and start takes of each reset) by its queries."
    )
    note = (
        "Budget: `budget` hardware queries (takes) per hidden patch; the hybrid's sim-twin "
        "gradients are no takes and do not count. Knobs not listed are held at the hidden "
        "patch's values. Hidden patches: reset seeds 10000..10000+seeds-1."
    )
    if any(c.get("blind") for c in cells):
        note += (
            " Blind cells: each hidden patch was played once and saved as a float WAV "
            "(`<results>_targets/`); the agents got only that sound (`target=`), and success "
            "is the device's noise-aware rule on the sound: distance <= max(sim threshold, "
            "2 x the take noise `ddsp-gym hw calibrate` stored)."
        )
    table = provenance.dated_table(table_lines(cells), cells)
    runs = run_lines(document or {})
    per_run = "\n\nPer run (device values sent):\n\n" + "\n".join(runs) if runs else ""
    return f"{table}\n\nMade with:\n\n{made}\n\n{timing}\n\n{note}{per_run}\n"


def run_hw_benchmark(
    envs: Sequence[str] | None = None,
    agents: Sequence[str] = HW_AGENTS,
    budget: int = 60,
    seeds: int = 10,
    out: str | Path = "results/hw_bench.json",
    hardware: dict[str, Any] | None = None,
    knobs: Sequence[str] | None = None,
    progress: bool = True,
    command: str | None = None,
    blind: bool = False,
) -> list[dict[str, Any]]:
    """Run every (env, agent) seed not already in ``out`` from this code version (see
    :func:`ddsp_gym.agents.provenance.code_version`); returns this config's cells.

    A cell's stored runs from another code version, or from before versions were
    recorded, are dropped and their seeds played again. ``blind``: WAV targets
    (see the module docstring), saved in ``<out stem>_targets/``.
    """
    bad = [a for a in agents if a not in SEARCH_AGENTS or a == "gradient"]
    if bad:
        raise ValueError(f"agents {bad} cannot run on hardware; choose from {list(HW_AGENTS)}")
    if blind and knobs:
        raise ValueError("blind targets hide every knob: --knobs does not apply")
    out = Path(out)
    document = load(out)
    version = provenance.code_version()
    envs = list(envs or [DEFAULT_HW_ENV])
    keys = [
        cell_id(e, a, searched_knobs(e, knobs), budget, seeds, blind) for e in envs for a in agents
    ]
    runs_of = document["runs"]
    provenance.announce_stale(
        sum(any(not provenance.is_current(r, version) for r in runs_of.get(k, [])) for k in keys)
    )
    wanted: list[dict[str, Any]] = []
    if blind:
        for env_id in envs:
            targets = record_targets(
                env_id, hardware, eval_seeds(seeds), out.with_name(f"{out.stem}_targets")
            )
            common = (env_id, agents, budget, seeds, out, hardware, progress, command)
            wanted += run_blind(*common, targets, document, version)
        return wanted
    for env_id in envs:
        env = make_hw_env(env_id, budget, hardware)
        proxy = KnobSubset(env, knobs)
        limit = physical_limit(env)
        try:
            for agent in agents:
                key = cell_id(env_id, agent, proxy.knobs, budget, seeds)
                runs = drop_stale_runs(document, key, version)
                done = {r["seed"] for r in runs}
                solver = make_search_agent(agent)
                bar = tqdm(eval_seeds(seeds), desc=f"{env_id.split('/')[-1]} {agent}",
                           disable=not progress)  # fmt: skip
                for seed in bar:
                    if seed in done:
                        continue
                    proxy.query_s, proxy.attempts = [], []
                    result = solver.solve(proxy, seed, budget)  # resets the proxy once
                    record = run_record(seed, result, proxy, proxy.reset_s)
                    runs.append({**record, provenance.VERSION_KEY: version})
                    bar.set_postfix(solved=sum(r["success"] for r in runs), q=result.queries)
                    document["cells"][key] = {
                        **hw_cell(
                            env_id, agent, proxy.knobs, budget, runs, limit, env.unwrapped.task
                        ),
                        "command": command,
                        provenance.VERSION_KEY: version,
                    }
                    write_json_atomic(out, document)
                    out.with_suffix(".md").write_text(
                        format_report(list(document["cells"].values()), document)
                    )
                if key in document["cells"]:
                    wanted.append(document["cells"][key])
        finally:
            env.close()
    return wanted


def run_blind(
    env_id: str,
    agents: Sequence[str],
    budget: int,
    seeds: int,
    out: Path,
    hardware: dict[str, Any] | None,
    progress: bool,
    command: str | None,
    targets: dict[int, dict[str, Any]],
    document: dict[str, Any],
    version: str,
) -> list[dict[str, Any]]:
    """:func:`run_hw_benchmark` on WAV targets: one env per (agent, seed), made with
    ``target=`` the seed's WAV; returns the cells."""
    first = make_hw_env(env_id, budget, hardware, target=targets[eval_seeds(seeds)[0]]["wav"])
    limit, task = physical_limit(first), first.unwrapped.task
    first.close()  # it compiled the scoring code for every env of this id with a WAV target
    cells = []
    for agent in agents:
        key = cell_id(env_id, agent, searched_knobs(env_id, None), budget, seeds, blind=True)
        runs = drop_stale_runs(document, key, version)
        done = {r["seed"] for r in runs}
        solver = make_search_agent(agent)
        bar = tqdm(eval_seeds(seeds), desc=f"{env_id.split('/')[-1]} {agent} (blind)",
                   disable=not progress)  # fmt: skip
        for seed in bar:
            if seed in done:
                continue
            target = targets[seed]
            env = gym.make(env_id, backend="hardware", hardware=hardware or {},
                           max_episode_steps=budget, target=target["wav"],
                           **QUERY_ENV_KWARGS)  # fmt: skip
            try:
                proxy = KnobSubset(env)
                result = solver.solve(proxy, seed, budget)
                record = run_record(seed, result, proxy, proxy.reset_s)
            finally:
                env.close()
            record.update(true_sent=target["true_sent"], target=target["wav"])
            runs.append({**record, provenance.VERSION_KEY: version})
            bar.set_postfix(solved=sum(r["success"] for r in runs), q=result.queries)
            document["cells"][key] = {
                **hw_cell(env_id, agent, proxy.knobs, budget, runs, limit, task),
                "blind": True,
                "command": command,
                provenance.VERSION_KEY: version,
            }
            write_json_atomic(out, document)
            out.with_suffix(".md").write_text(
                format_report(list(document["cells"].values()), document)
            )
        if key in document["cells"]:
            cells.append(document["cells"][key])
    return cells
