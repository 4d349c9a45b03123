"""Entry points of ``ddsp_gym/FaustPatch-v1``: ``faust_code=`` and ``faust_fixed=`` are
folded into the Faust plant's config, so ``gym.make(id, faust_code=...)`` builds the env
around any Faust program (see :mod:`ddsp_gym.plants.faust`)."""

from __future__ import annotations

from typing import Any

from ddsp_gym.envs.gym_env import DDSPEnv
from ddsp_gym.envs.vector_env import VectorDDSPEnv


def _plant_config(
    plant_config: dict[str, Any] | None, faust_code: str | None, faust_fixed: Any
) -> dict[str, Any]:
    config = dict(plant_config or {})
    if faust_code is not None:
        config["code"] = faust_code
    if faust_fixed is not None:
        config["fixed"] = faust_fixed
    return config


def make_faust_env(
    faust_code: str | None = None,
    faust_fixed: Any = None,
    plant_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DDSPEnv:
    """A :class:`DDSPEnv` on the Faust program ``faust_code`` (default: the plant's
    low-pass-filtered sawtooth); ``faust_fixed`` sets its buttons/number entries."""
    return DDSPEnv(plant_config=_plant_config(plant_config, faust_code, faust_fixed), **kwargs)


def make_faust_vector_env(
    num_envs: int,
    faust_code: str | None = None,
    faust_fixed: Any = None,
    plant_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> VectorDDSPEnv:
    """The native vector env of :func:`make_faust_env`."""
    config = _plant_config(plant_config, faust_code, faust_fixed)
    return VectorDDSPEnv(num_envs, plant_config=config, **kwargs)
