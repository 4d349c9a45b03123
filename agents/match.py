"""Fit a plant to an audio file: the engine behind ``ddsp-gym match``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.audio_io import save_audio
from ddsp_gym.envs.gym_env import DDSPEnv
from ddsp_gym.plotting import save_comparison_png
from ddsp_gym.registry import load_registry
from ddsp_gym.tasks import TASKS

AGENTS = ("gradient",)


@dataclass
class MatchResult:
    """The best setting found: its knobs (physical units), its distance from the target,
    whether that distance reached the task's success threshold, and the files written."""

    knobs: dict[str, float]
    distance: float  # the best distance of the run (the reported knobs')
    distance_unit: str
    success: bool  # distance <= success_threshold
    steps: int
    outputs: dict[str, str]
    success_threshold: float


def env_settings_for_plant(plant: str) -> dict[str, Any]:
    """The task and its settings of the first registered env that matches with ``plant``.

    A plant is matched with the distance its own demo uses (e.g. fm2 with the FM
    bell's log-mel + flatness distance); plants only goal tasks use (they ignore the
    target) and plants no env uses get MR-STFT.
    """
    for entry in load_registry():
        if entry.kwargs.get("plant") == plant and not TASKS[entry.kwargs["task"]].is_goal:
            keep = ("task", "task_config", "plant_config", "success_threshold")
            return {k: v for k, v in entry.kwargs.items() if k in keep}
    return {"task": "spectrum"}


def match_file(
    target: str | Path,
    plant: str,
    out_dir: str | Path,
    input_path: str | Path | None = None,
    agent: str = "gradient",
    steps: int = 300,
    seed: int = 0,
    task: str | None = None,
    show_progress: bool = True,
) -> MatchResult:
    """Fit ``plant``'s knobs to the sound in ``target`` and write the results to ``out_dir``.

    Writes ``knobs.json`` (physical values), ``result.wav`` (the resynthesis),
    ``target.wav`` (the target as the plant hears it: mono, resampled, trimmed
    or padded to the plant's duration) and ``comparison.png`` (spectrograms and
    the loss curve).
    """
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; choose one of {AGENTS}")
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    settings = env_settings_for_plant(plant)
    if task is not None:
        if task in TASKS and TASKS[task].is_goal:
            raise ValueError(
                f"task {task!r} is a goal (it scores a property of the sound and ignores the "
                "target), so it cannot match a recording; use a matching task such as 'spectrum'"
            )
        settings = {"task": task}
    env = DDSPEnv(plant=plant, target=target, input=input_path, expose_grad=True, **settings)
    base_env = env
    out_dir = Path(out_dir)
    bar = tqdm(
        total=steps,
        desc=f"matching {Path(target).name} with {plant}",
        unit="step",
        disable=not show_progress,
    )

    best = math.inf

    def progress(step: int, info: dict[str, Any]) -> bool:
        # The bar shows the best distance so far: the one the result reports, whatever
        # the last step (a restart, an overshoot) scored.
        nonlocal best
        best = min(best, float(info["distance"]))
        bar.update(1)
        bar.set_postfix(best=f"{best:.4g}")
        return True

    # No restarts on a budget this small would waste it; the agent restarts on stalls.
    result = GradientAgent().solve(env, seed=seed, max_steps=steps, callback=progress)
    bar.close()
    best_knobs = (jnp.asarray(result.best_action) + 1.0) / 2.0
    plant_obj = base_env.plant
    state = base_env.state
    audio = np.asarray(plant_obj.render(best_knobs, state.render_key, base_env.params.input_audio))
    physical = {k: float(v) for k, v in plant_obj.controls(best_knobs).items()}
    target_audio = base_env.target_audio()
    sr = plant_obj.sample_rate
    outputs = {
        "result": str(save_audio(out_dir / "result.wav", audio, sr)),
        "target": str(save_audio(out_dir / "target.wav", target_audio, sr)),
        "png": str(
            save_comparison_png(
                out_dir / "comparison.png", audio, target_audio, sr, result.distances
            )
        ),
    }
    threshold = float(base_env.params.success_threshold)
    success = result.best_distance <= threshold
    report = {
        "plant": plant,
        "task": settings["task"],
        "knobs": physical,
        "knob_units": {s.name: s.unit for s in plant_obj.knob_specs},
        "distance": result.best_distance,
        "distance_unit": base_env.task.distance_unit,
        "success_threshold": threshold,
        "success": success,
        "steps": result.steps,
        "seed": seed,
    }
    outputs["knobs"] = str(out_dir / "knobs.json")
    (out_dir / "knobs.json").write_text(json.dumps(report, indent=2))
    return MatchResult(
        physical,
        result.best_distance,
        base_env.task.distance_unit,
        success,
        result.steps,
        outputs,
        threshold,
    )
