"""The speed benchmark's files: ``perf.json`` (every number) and ``perf.md`` (its tables).

:func:`format_markdown` reads nothing but the results dict, so a ``perf.md`` can be made
again from any ``perf.json`` (no JAX needed). The report states measurements and the
ratios measured in the same run; it judges nothing against fixed bars (why:
:mod:`ddsp_gym.bench.perf`).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.bench.processes import FRESH_PROCESS_COLUMNS


def one_line(err: BaseException) -> str:
    """An exception as one short line for a results file: a failed measurement is
    recorded there and the run goes on."""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write the results atomically (a temporary file, then a rename): a run stopped
    while writing keeps the previous complete file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=json_default))
    tmp.replace(path)


def json_default(value: Any) -> Any:
    """JSON for what ``json`` cannot write: numpy scalars as numbers, the rest as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def perf_command(settings: dict[str, Any]) -> str:
    """The command line a results file's settings came from: its preset and its ids."""
    words = ["ddsp-gym", "bench", "perf"] + ["--quick"] * bool(settings["quick"])
    if settings.get("env_ids"):
        words += ["--envs", *settings["env_ids"]]
    if settings.get("plants"):
        words += ["--plants", *settings["plants"]]
    return shlex.join(words)


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, '-' where missing."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def cell(row: dict | None, wall: str, cpu: str) -> str:
    """'wall (per CPU-s)' of a result dict, '-' where missing."""
    if not row or wall not in row:
        return "-"
    return f"{fmt(row[wall])} ({fmt(row.get(cpu))})"


def env_steps(row: dict, key: str) -> str:
    """An analysis rate as env steps/s: its audio-s/s over one env's seconds of audio."""
    if key not in row:
        return "-"
    return fmt(row[key]["audio_s_per_s"] / row["duration_s"])


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def header_lines(results: dict[str, Any]) -> list[str]:
    """Title, machine and load, and how to read a cell."""
    meta = results["meta"]
    settings = meta["settings"]
    after = meta.get("load_average_after", [float("nan")])[0]
    return [
        f"# ddsp_gym speed (`{perf_command(settings)}`)",
        "",
        f"{meta['started']} | {meta['cpu']}, {meta['cpu_count']} cores | "
        f"jax {meta['jax']} ({meta['jax_backend']}, {meta.get('cpu_dispatch', '?')} CPU "
        f"dispatch, {meta.get('malloc', '?')} malloc) | {meta['float']} | "
        f"load average {meta['load_average_before'][0]:.1f} before, {after:.1f} after | "
        f"run {meta.get('wall_s', float('nan')):.0f} s",
        "",
        f"Each cell: wall-clock rate, best of {settings['rounds']} rounds of >= "
        f"{settings['min_time']} s, and in parentheses the rate per CPU-second of this "
        "process (all its threads): on a machine shared with other work the first counts "
        "the waiting, the second only the work. audio-s/s = seconds of audio per second. "
        "Memory: XLA's peak buffer need of the compiled function. CPU dispatch and malloc: "
        "as `ddsp_gym.runtime.tune_for_cpu()` sets them (the CLI calls it).",
    ]


def plant_lines(results: dict[str, Any]) -> list[str]:
    """The plants' table: render rates per rate and batch, gradient, compile, memory."""
    settings = results["meta"]["settings"]
    srs, batches = settings["sample_rates"], settings["render_batches"]
    header = ["plant", "knobs", "dur (s)"]
    header += [f"render {sr / 1000:g} kHz b{b}" for sr in srs for b in batches]
    header += ["render + MR-STFT grad 16 kHz b32", "compile fwd / grad (s)", "peak MB fwd / grad"]
    rows = []
    for row in results["plants"]:
        cells = [row["plant"], str(row["knobs"]), f"{row['duration_s']:g}"]
        cells += [
            cell(row["render"].get(f"{sr}/{b}"), "audio_s_per_s", "audio_s_per_cpu_s")
            for sr in srs
            for b in batches
        ]
        grad = row.get("grad", {})
        forward = row["render"].get(f"{srs[0]}/{settings['grad_batch']}", {})
        fc, gc = row.get("compile_forward") or {}, row.get("compile_grad") or {}
        cells += [
            cell(grad, "audio_s_per_s", "audio_s_per_cpu_s"),
            f"{fmt(fc.get('s'), 2)} / {fmt(gc.get('s'), 2)}",
            f"{fmt(forward.get('peak_mb'), 1)} / {fmt(grad.get('peak_mb'), 1)}",
        ]
        rows.append(cells)
    return ["## Plants (audio-s/s)", "", *table(header, rows)]


def env_lines(results: dict[str, Any]) -> list[str]:
    """The envs' table, with notes on its fresh-process columns and compile schedules."""
    settings = results["meta"]["settings"]
    lines = ["## Envs (env steps/s)", ""]
    sizes, sync = settings["vector_sizes"], settings["sync_size"]
    extra = [
        (key, title, note)
        for key, (_, title, note) in FRESH_PROCESS_COLUMNS.items()
        if any(key in row for row in results["envs"])
    ]
    if extra:
        lines += [f"'{title}': {note}." for _, title, note in extra] + [""]
    depth_first = [
        r["env"].split("/")[-1] for r in results["envs"] if r.get("cpu_schedule") == "memory"
    ]
    if depth_first:
        verb = "compiles its" if len(depth_first) == 1 else "compile their"
        lines += [
            "'gym.make' columns: single envs as `gym.make` makes them; "
            f"{', '.join(depth_first)} {verb} step with XLA:CPU's depth-first schedule "
            '(`env.unwrapped.cpu_schedule == "memory"`), the others with XLA\'s default.',
            "",
        ]
    lines += [
        f"'JAX rollout {settings['rollout_envs']}': `rollout_from`, "
        f"{settings['rollout_steps']} steps in one jitted `lax.scan` from envs already "
        "reset (as the vector columns, their first reset untimed).",
        "",
    ]
    header = ["env", "audio", "gym.make (1 env)"] + [title for _, title, _ in extra]
    header += [f"native vector {n}" for n in sizes]
    header += [f"SyncVectorEnv {sync}", f"native {sizes[0]} / Sync {sync}"]
    header += [f"JAX rollout {settings['rollout_envs']}"]
    rows = []
    for row in results["envs"]:
        cells = [
            row["env"].split("/")[-1],
            f"{row['duration_s']:g} s @ {row['sample_rate'] / 1000:g} kHz",
            cell(row.get("single"), "steps_per_s", "steps_per_cpu_s"),
        ]
        cells += [cell(row.get(key), "steps_per_s", "steps_per_cpu_s") for key, _, _ in extra]
        cells += [cell(row.get(f"native_{n}"), "steps_per_s", "steps_per_cpu_s") for n in sizes]
        cells += [
            cell(row.get(f"sync_{sync}"), "steps_per_s", "steps_per_cpu_s"),
            f"{fmt(row.get('native_over_sync'), 1)}x",
            cell(row.get("jax_rollout"), "steps_per_s", "steps_per_cpu_s"),
        ]
        rows.append(cells)
    return lines + table(header, rows)


def sb3_lines(results: dict[str, Any]) -> list[str]:
    """SB3 PPO's rates on the native batched env and on DummyVecEnv."""
    if not results["sb3"]:
        return []
    rows = [
        [
            r["env"].split("/")[-1],
            str(r["num_envs"]),
            cell(r, "native_steps_per_s", "native_steps_per_cpu_s"),
            cell(r, "dummy_steps_per_s", "dummy_steps_per_cpu_s"),
            f"{fmt(r.get('native_over_dummy'), 1)}x",
        ]
        for r in results["sb3"]
    ]
    header = ["env", "envs", "native batched env", "DummyVecEnv", "ratio"]
    return ["## SB3 PPO (timesteps/s, policy updates included)", "", *table(header, rows)]


ANALYSIS_NOTE = (
    "The four-resolution STFT every spectrum-scored env computes at each step (in "
    "the vector env's chunks), and its distance's value + gradient. 'env steps/s' "
    "is the spectra rate over the seconds of audio: what such an env's step costs "
    "before its render, summary and reward (timings are best-of-rounds, so a "
    "measured env can land a little above it). 'FFTs alone': the spectra's four "
    "FFTs, computed in the same chunks from frames made beforehand, as env "
    "steps/s: a ceiling no faster framing, magnitude or distance can lift. The "
    "gradient column is the loss's share of a plant's render + MR-STFT gradient "
    "at the same batch and duration."
)


def analysis_lines(results: dict[str, Any]) -> list[str]:
    """The MR-STFT-alone table."""
    if not results.get("analysis"):
        return []
    khz = results["analysis"][0]["sample_rate"] / 1000
    rows = [
        [
            str(r["batch"]),
            f"{r['duration_s']:g}",
            cell(r.get("spectra"), "audio_s_per_s", "audio_s_per_cpu_s"),
            env_steps(r, "spectra"),
            env_steps(r, "ffts"),
            cell(r.get("value_and_grad"), "audio_s_per_s", "audio_s_per_cpu_s"),
        ]
        for r in results["analysis"]
    ]
    header = [
        "batch",
        "dur (s)",
        "spectra",
        "env steps/s",
        "FFTs alone, env steps/s",
        "distance value + grad",
    ]
    title = f"## The MR-STFT alone ({khz:g} kHz audio-s/s, no plant)"
    return [title, "", ANALYSIS_NOTE, "", *table(header, rows)]


def external_lines(results: dict[str, Any]) -> list[str]:
    """Other libraries' voices beside ours, with the ratio measured in this run."""
    if not results["external"]:
        return []
    first = results["external"][0]
    title = (
        f"## Other libraries, same run ({first['sample_rate'] / 1000:g} kHz, "
        f"{first['seconds']:g} s voices on both sides, timed in alternating rounds, "
        "audio-s/s)"
    )
    rows = []
    for r in results["external"]:
        name = f"{r['library']} {r.get('version', '')}".strip()
        if "unavailable" in r:
            rows.append([name, r["voice"], str(r["batch"]), r["unavailable"], "", "", ""])
            continue
        rows.append(
            [
                name,
                r["voice"],
                str(r["batch"]),
                cell(r, "audio_s_per_s", "audio_s_per_cpu_s"),
                r.get("ours_plant", "-"),
                cell(r, "ours_audio_s_per_s", "ours_audio_s_per_cpu_s"),
                f"{fmt(r.get('ratio'), 1)}x ({fmt(r.get('cpu_ratio'), 1)}x)",
            ]
        )
    header = ["library", "voice", "batch", "theirs", "ours", "ours", "ratio"]
    return [title, "", *table(header, rows)]


def error_lines(results: dict[str, Any]) -> list[str]:
    """Every measurement that failed, one line each."""
    errors = [e for row in results["plants"] + results["envs"] for e in row.get("errors", [])]
    errors += [e.splitlines()[0] for e in results.get("errors", [])]
    if not errors:
        return []
    return ["## Errors", "", *(f"- {e}" for e in errors)]


def format_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables (what the docs quote)."""
    sections = [
        header_lines(results),
        plant_lines(results),
        env_lines(results),
        sb3_lines(results),
        analysis_lines(results),
        external_lines(results),
        error_lines(results),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"
