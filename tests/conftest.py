"""Shared fixtures: every test gets the registered envs and a scratch folder."""

from __future__ import annotations

import gymnasium as gym
import pytest

import ddsp_gym


@pytest.fixture(scope="session")
def env_ids() -> list[str]:
    return list(ddsp_gym.ENV_IDS)


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` without the order/passive checkers, so tests see the raw behaviour."""
    return gym.make(env_id, disable_env_checker=True, **kwargs)
