"""What ``ddsp-gym bench perf`` measures and for how long: :data:`FULL` and :data:`QUICK`.

Kept apart from the measuring code, with no JAX import, so that a results file's
``meta.settings`` and the presets can be read without starting JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class PerfSettings:
    """What to measure and how long; :data:`FULL` and :data:`QUICK` are the two presets."""

    sample_rates: tuple[int, ...] = (16_000, 44_100)
    render_batches: tuple[int, ...] = (1, 32, 256)
    grad_batch: int = 32
    vector_sizes: tuple[int, ...] = (64, 256)
    sync_size: int = 64
    rollout_envs: int = 256
    rollout_steps: int = 50
    min_time: float = 0.25  # seconds per timing round
    rounds: int = 3
    compile_repeats: int = 3  # fresh compilations per judged compile time (best kept)
    pinned_single_env: bool = True  # also time gym.make envs in a process on one core
    async_single_env: bool = True  # ... and in a process with JAX's async CPU dispatch
    env_ids: tuple[str, ...] | None = None  # None: every registered env
    plants: tuple[str, ...] | None = None  # None: every plant in PLANTS
    sb3_env_ids: tuple[str, ...] | None = None  # None: the first env; (): no SB3 runs
    sb3_num_envs: int = 16
    sb3_n_steps: int = 64
    sb3_rollouts: int = 3
    external_batches: tuple[int, ...] = (32,)
    external_voices: tuple[str, ...] = ("voice", "adsr_sine")  # (): no other libraries
    external_seconds: float = 1.0
    external_rounds: int = 5  # theirs and ours alternate, best round of each kept
    # (batch, seconds) of 16 kHz audio whose MR-STFT alone is timed: the floor under an
    # env step (64 envs of 0.25 s) and under render + gradient (batch 32 of 0.5 s and 1 s).
    analysis_shapes: tuple[tuple[int, float], ...] = ((1, 0.25), (64, 0.25), (32, 0.5), (32, 1.0))
    quick: bool = False


FULL = PerfSettings()
QUICK = PerfSettings(
    sample_rates=(16_000,),
    render_batches=(32,),
    vector_sizes=(64,),
    sync_size=16,
    rollout_envs=64,
    rollout_steps=10,
    min_time=0.05,
    rounds=2,
    sb3_num_envs=8,
    sb3_n_steps=16,
    sb3_rollouts=1,
    compile_repeats=1,
    pinned_single_env=False,
    async_single_env=False,
    external_voices=("adsr_sine",),
    external_rounds=2,
    analysis_shapes=((64, 0.25),),
    quick=True,
)


def settings_for(quick: bool, **overrides: Any) -> PerfSettings:
    """The preset, with any non-None overrides (e.g. ``env_ids=("ddsp_gym/SineTuner-v1",)``)."""
    preset = QUICK if quick else FULL
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})
