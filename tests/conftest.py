"""Shared fixtures: every test gets the registered envs and a scratch folder."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import gymnasium as gym
import jax
import pytest

import ddsp_gym

# XLA compilation dominates the suite's time on CPU, and many tests build envs of the
# same configuration afresh (each a new jit trace): JAX's persistent compilation cache
# turns the repeats into disk reads. Counting compilations still works (JAX reports a
# cache hit as a compile event too). DDSP_GYM_JAX_CACHE="" turns it off.
_JAX_CACHE = os.environ.get(
    "DDSP_GYM_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".jax_cache")
)
if _JAX_CACHE:
    jax.config.update("jax_compilation_cache_dir", _JAX_CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(scope="session")
def env_ids() -> list[str]:
    return list(ddsp_gym.ENV_IDS)


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` without the order/passive checkers, so tests see the raw behaviour."""
    return gym.make(env_id, disable_env_checker=True, **kwargs)


def require(need: str | object, reason: str) -> None:
    """Skip the calling test, saying ``reason``, unless ``need`` is met; under CI, fail.

    ``need`` is a module name that must import, or any condition (truthy = met); at a
    module's top level it skips (or fails) the whole module. A
    test of an optional dependency or device that skips silently would pass CI without
    testing anything: CI (the environment variable CI set) installs every extra and
    starts the rig (``make test``), so there a missing one is a failure.
    """
    if isinstance(need, str):
        try:
            importlib.import_module(need)
            return
        except ImportError as err:
            reason = f"{reason} ({need} does not import: {err})"
    elif need:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs this test for real, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture
def dawdreamer():
    """DawDreamer (the ``plugin`` extra; it embeds the Faust compiler), or a skip (CI: a fail)."""
    require("dawdreamer", "DawDreamer is needed: pip install 'ddsp_gym[plugin]'")
    import dawdreamer

    return dawdreamer
