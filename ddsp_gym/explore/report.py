"""What an exploration leaves in its out folder.

* ``archive.json``: the run (source, backend, axes, ranges, objective, budget, coverage,
  QD-score, the curve) and one entry per elite: cell, knobs (unit and physical),
  descriptors, objective, WAV file name.
* ``wav/cell_I_J.wav``: each elite's sound.
* ``map.png``: the map, each filled cell coloured by a descriptor or the objective.
* ``index.html``: the same grid as a self-contained page (no scripts or styles fetched
  from anywhere): hover a cell for its knobs and descriptors, click it to hear it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.explore.descriptors import DESCRIPTOR_NAMES, DESCRIPTORS, OBJECTIVE_TEXT
from ddsp_gym.explore.evaluators import Evaluator
from ddsp_gym.explore.search import ExploreResult, elites

SCHEMA_VERSION = 1
COLOR_CHOICES: tuple[str, ...] = (*DESCRIPTOR_NAMES, "objective")


def cell_wav_name(cell: list[int]) -> str:
    return f"wav/cell_{cell[0]:02d}_{cell[1]:02d}.wav"


def archive_document(
    result: ExploreResult, evaluator: Evaluator, source: dict[str, Any], seed: int
) -> dict[str, Any]:
    """The ``archive.json`` document (see the module docstring)."""
    space = result.space
    plant = evaluator.plant
    entries = []
    for elite in elites(result):
        physical = plant.controls(np.asarray(elite["unit"], np.float32))
        entries.append(
            {
                **elite,
                "knobs": {name: float(physical[name]) for name in plant.knob_names},
                "wav": cell_wav_name(elite["cell"]),
            }
        )
    return {
        "schema": SCHEMA_VERSION,
        "source": source,
        "backend": evaluator.backend,
        "method": result.method,
        "seed": seed,
        "knob_names": list(plant.knob_names),
        "axes": [
            {
                "name": a,
                "label": DESCRIPTORS[a].axis_label(),
                "cells": c,
                "range": list(r),
                "log": DESCRIPTORS[a].log,
            }
            for a, c, r in zip(space.axes, space.cells, space.ranges, strict=True)
        ],
        "objective": OBJECTIVE_TEXT,
        "budget": result.evaluations,
        "takes": result.takes,
        "cells": int(np.prod(space.cells)),
        "filled": result.filled,
        "coverage": result.coverage,
        "qd_score": result.qd_score,
        "stopped": result.stopped,  # a device's error that ended the run early, or None
        "curve": [list(point) for point in result.curve],
        "elites": entries,
    }


def write_outputs(
    result: ExploreResult,
    evaluator: Evaluator,
    source: dict[str, Any],
    seed: int,
    out: Path,
    color: str = "loudness",
) -> dict[str, Path]:
    """Write archive.json, the elites' WAVs, map.png and index.html into ``out``."""
    from ddsp_gym.audio_io import save_audio

    if color not in COLOR_CHOICES:
        raise ValueError(f"unknown --color {color!r}; choose one of {', '.join(COLOR_CHOICES)}")
    out.mkdir(parents=True, exist_ok=True)
    doc = archive_document(result, evaluator, source, seed)
    for entry in doc["elites"]:
        audio = evaluator.audio(np.asarray(entry["unit"], np.float32), entry["setting"])
        save_audio(out / entry["wav"], np.asarray(audio, np.float32), evaluator.plant.sample_rate)
    paths = {"archive": out / "archive.json", "map": out / "map.png", "html": out / "index.html"}
    paths["archive"].write_text(json.dumps(doc, indent=1) + "\n")
    plot_map(doc, color, paths["map"])
    paths["html"].write_text(html_page(doc, color))
    return paths


def _value(entry: dict[str, Any], color: str) -> float:
    return entry["objective"] if color == "objective" else entry["descriptors"][color]


def color_grid(doc: dict[str, Any], color: str) -> np.ndarray:
    """(cells x, cells y) of the colour quantity per cell (NaN where empty); log10 on log
    descriptors, so the colours spread as the map's axes do."""
    nx, ny = (axis["cells"] for axis in doc["axes"])
    grid = np.full((nx, ny), np.nan)
    for entry in doc["elites"]:
        value = _value(entry, color)
        if color != "objective" and DESCRIPTORS[color].log:
            value = float(DESCRIPTORS[color].to_measure(value))
        grid[entry["cell"][0], entry["cell"][1]] = value
    return grid


def _color_label(color: str) -> str:
    return (
        "objective (clean and audible)"
        if color == "objective"
        else (
            ("log10 " if DESCRIPTORS[color].log else "")
            + DESCRIPTORS[color].axis_label().replace(", log scale", "")
        )
    )


def cell_edges(axis: dict[str, Any]) -> np.ndarray:
    """An axis' cell edges in descriptor units (equal steps of its map coordinate)."""
    desc = DESCRIPTORS[axis["name"]]
    low, high = desc.to_measure(np.array(axis["range"]))
    return desc.from_measure(np.linspace(low, high, axis["cells"] + 1))


def plot_map(doc: dict[str, Any], color: str, path: Path) -> Path:
    """The map as a heatmap: x and y the axes' descriptors, colour ``color``, empty white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = color_grid(doc, color)
    ax_x, ax_y = doc["axes"]
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=90)
    image = ax.pcolormesh(
        cell_edges(ax_x), cell_edges(ax_y), np.ma.masked_invalid(grid.T), cmap="viridis"
    )
    from matplotlib.ticker import NullFormatter

    if ax_x["log"]:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
    if ax_y["log"]:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(ax_x["label"])
    ax.set_ylabel(ax_y["label"])
    source = doc["source"].get("env") or doc["source"].get("plant")
    ax.set_title(
        f"{source} ({doc['backend']}, {doc['method']}): {doc['filled']}/"
        f"{doc['cells']} cells, QD-score {doc['qd_score']:.1f}",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label=_color_label(color))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _hex_colors(grid: np.ndarray) -> np.ndarray:
    """The viridis colour (#rrggbb) of each cell, scaled to the grid's min and max."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    finite = grid[np.isfinite(grid)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    scaled = (grid - low) / (high - low) if high > low else np.zeros_like(grid)
    cmap = colormaps["viridis"]
    return np.vectorize(lambda v: "" if np.isnan(v) else to_hex(cmap(v)), otypes=[object])(scaled)


def _tooltip(entry: dict[str, Any]) -> str:
    knobs = ", ".join(f"{k}={v:.4g}" for k, v in entry["knobs"].items())
    desc = ", ".join(f"{k}={v:.4g}" for k, v in entry["descriptors"].items())
    return f"cell {entry['cell']}\nknobs: {knobs}\n{desc}\nobjective={entry['objective']:.3f}"


def html_page(doc: dict[str, Any], color: str) -> str:
    """The clickable map (see the module docstring): a table, one <td> per cell, the top
    row the highest y; a click plays the cell's WAV in the page's one <audio>."""
    grid = color_grid(doc, color)
    colors = _hex_colors(grid)
    by_cell = {tuple(e["cell"]): e for e in doc["elites"]}
    ax_x, ax_y = doc["axes"]
    nx, ny = ax_x["cells"], ax_y["cells"]
    rows = []
    for j in reversed(range(ny)):
        cells = []
        for i in range(nx):
            entry = by_cell.get((i, j))
            if entry is None:
                cells.append("<td></td>")
                continue
            cells.append(
                f'<td class="on" style="background:{colors[i, j]}" '
                f'data-wav="{html.escape(entry["wav"])}" '
                f'title="{html.escape(_tooltip(entry))}"></td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    source = html.escape(str(doc["source"].get("env") or doc["source"].get("plant")))
    finite = grid[np.isfinite(grid)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Knob-space map: {source}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td {{ width: 22px; height: 22px; border: 1px solid #eee; padding: 0; }}
td.on {{ cursor: pointer; }}
td.on:hover, td.playing {{ outline: 2px solid #d33; }}
.axis {{ font-size: 0.9em; color: #444; }}
</style></head><body>
<h1>Knob-space map: {source}</h1>
<p>{doc["backend"]} backend, {html.escape(doc["method"])}, seed {doc["seed"]}:
{doc["filled"]} of {doc["cells"]} cells filled from {doc["budget"]} sounds
(coverage {doc["coverage"]:.1%}, QD-score {doc["qd_score"]:.1f}).
Colour: {html.escape(_color_label(color))}, {low:.3g} (dark) to {high:.3g} (yellow).
Hover a cell for its knobs, click it to hear it.</p>
<p class="axis">up: {html.escape(ax_y["label"])}, {ax_y["range"][0]:.4g} to
{ax_y["range"][1]:.4g}; right: {html.escape(ax_x["label"])}, {ax_x["range"][0]:.4g} to
{ax_x["range"][1]:.4g}</p>
<table id="map">
{chr(10).join(rows)}
</table>
<p><audio id="player" controls></audio></p>
<p class="axis">Quality (objective): {html.escape(doc["objective"])}</p>
<script>
const player = document.getElementById("player");
document.getElementById("map").addEventListener("click", (event) => {{
  const cell = event.target.closest("td.on");
  if (!cell) return;
  document.querySelectorAll("td.playing").forEach((c) => c.classList.remove("playing"));
  cell.classList.add("playing");
  player.src = cell.dataset.wav;
  player.play();
}});
</script>
</body></html>
"""
