"""``envs_registry.yaml`` -> ``gymnasium.register``: the one list of every env id."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

NAMESPACE = "ddsp_gym"
DEFAULT_ENTRY_POINT = "ddsp_gym.envs.gym_env:DDSPEnv"
# The native JAX vector env of every sim env: gym.make_vec(id, num_envs=N) steps all N
# in one jitted call (ddsp_gym/envs/vector_env.py).
DEFAULT_VECTOR_ENTRY_POINT = "ddsp_gym.envs.vector_env:VectorDDSPEnv"
# What an env is: "target" envs (DDSPEnv) match a target sound or reach a goal, one
# rendered note per step; "streaming" envs (docs/streaming.md) play one block of a
# continuous sound per step and have no target or success. A kind picks the entry points
# and tells registry-wide tests which guarantees an env keeps (tests/test_envs.py).
STREAMING_ENTRY_POINT = "ddsp_gym.streaming.gym_env:StreamingDDSPEnv"
KIND_ENTRY_POINTS: dict[str, tuple[str, str | None]] = {
    "target": (DEFAULT_ENTRY_POINT, DEFAULT_VECTOR_ENTRY_POINT),
    # No native vector env yet: gym.make_vec falls back on Gymnasium's sync vector env;
    # a JAX-native batch is jax.vmap of the functional step.
    "streaming": (STREAMING_ENTRY_POINT, None),
}
_REQUIRED = ("id", "seed_demo", "description", "max_episode_steps", "kwargs")


@dataclass(frozen=True)
class EnvEntry:
    """One env of the registry file."""

    id: str
    seed_demo: str
    description: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "target"
    entry_point: str = DEFAULT_ENTRY_POINT
    vector_entry_point: str | None = DEFAULT_VECTOR_ENTRY_POINT


def registry_path() -> Path:
    """The registry file packaged with ddsp_gym (in a source tree, a link to the top-level one)."""
    return Path(str(resources.files("ddsp_gym") / "envs_registry.yaml"))


def load_registry(path: str | Path | None = None) -> list[EnvEntry]:
    """Parse and validate the registry file."""
    path = Path(path) if path else registry_path()
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or not isinstance(document.get("envs"), list):
        raise ValueError(f"{path}: expected a mapping with a list under 'envs'")
    entries, seen = [], set()
    for i, raw in enumerate(document["envs"]):
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise ValueError(f"{path}: env #{i} lacks {missing}")
        if not raw["id"].startswith(f"{NAMESPACE}/"):
            raise ValueError(f"{path}: env id {raw['id']!r} must start with '{NAMESPACE}/'")
        if raw["id"] in seen:
            raise ValueError(f"{path}: env id {raw['id']!r} is listed twice")
        seen.add(raw["id"])
        kind = raw.get("kind", "target")
        if kind not in KIND_ENTRY_POINTS:
            raise ValueError(
                f"{path}: env {raw['id']!r} has kind {kind!r}; one of {sorted(KIND_ENTRY_POINTS)}"
            )
        entry_point, vector_entry_point = KIND_ENTRY_POINTS[kind]
        entries.append(
            EnvEntry(
                **{"entry_point": entry_point, "vector_entry_point": vector_entry_point, **raw}
            )
        )
    return entries


def register_envs(path: str | Path | None = None) -> list[str]:
    """Register every env of the registry file with Gymnasium; returns the ids."""
    ids = []
    for entry in load_registry(path):
        if entry.id not in gym.registry:
            gym.register(
                id=entry.id,
                entry_point=entry.entry_point,
                vector_entry_point=entry.vector_entry_point,
                max_episode_steps=entry.max_episode_steps,
                kwargs=dict(entry.kwargs),
            )
        ids.append(entry.id)
    return ids


def uses_task_reward(env_id: str) -> bool:
    """Is ``env_id``'s default reward the task's distance (fused, differentiable, vectorized)?

    False for an entry whose kwargs name another source (``reward: {source: physiology}``):
    such an env has no gradient and no native vector env, and its reward is not calibrated
    to score about -1 for a random policy.
    """
    reward = gym.spec(env_id).kwargs.get("reward")
    name = reward.get("source") if isinstance(reward, dict) else reward
    return name in (None, "task")


def ids_of_kind(kind: str) -> list[str]:
    """The registry's ids of one kind ("target" or "streaming"), in file order."""
    if kind not in KIND_ENTRY_POINTS:
        raise ValueError(f"kind must be one of {sorted(KIND_ENTRY_POINTS)}, not {kind!r}")
    return [entry.id for entry in load_registry() if entry.kind == kind]


def task_reward_ids() -> list[str]:
    """The target envs scored by their task's distance: the ones with a hidden target to
    recover, a gradient, a native vector env and a calibrated reward (the defaults of the
    search benchmarks, perf and recovery)."""
    return [i for i in ids_of_kind("target") if uses_task_reward(i)]


def registered_ids() -> list[str]:
    """Ids registered with Gymnasium under the ``ddsp_gym/`` namespace."""
    return sorted(i for i in gym.registry if i.startswith(f"{NAMESPACE}/"))
