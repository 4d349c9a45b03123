"""Environments: the pure functional core, its Gymnasium wrapper and the native vector env."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ddsp_gym.envs.functional import (
    EnvParams,
    EnvState,
    FunctionalDDSPEnv,
    StepInfo,
    make_functional,
)

if TYPE_CHECKING:
    from ddsp_gym.envs.config import EnvConfig
    from ddsp_gym.envs.gym_env import DDSPEnv


def __getattr__(name: str) -> Any:
    # Lazy: the wrappers import the backends, which import pieces of this package.
    if name == "DDSPEnv":
        from ddsp_gym.envs.gym_env import DDSPEnv

        return DDSPEnv
    if name == "EnvConfig":
        from ddsp_gym.envs.config import EnvConfig

        return EnvConfig
    raise AttributeError(f"module 'ddsp_gym.envs' has no attribute {name!r}")


__all__ = [
    "DDSPEnv",
    "EnvConfig",
    "EnvParams",
    "EnvState",
    "FunctionalDDSPEnv",
    "StepInfo",
    "make_functional",
]
