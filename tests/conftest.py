"""Shared fixtures: every test gets the registered envs and a scratch folder."""

from __future__ import annotations

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


@pytest.fixture
def dawdreamer():
    """DawDreamer (the ``plugin`` extra; it embeds the Faust compiler). Where it does not
    import, the test skips, saying so; under CI (``CI`` set), which installs every extra,
    it fails instead."""
    try:
        import dawdreamer
    except ImportError as err:
        message = f"DawDreamer does not import ({err}); pip install 'ddsp_gym[plugin]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return dawdreamer
