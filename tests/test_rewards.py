"""Reward sources: a reward from outside the sound's features, through the same env API."""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ddsp_gym.rewards import ExternalReward, Rating, TaskReward
from tests.conftest import make

VOLUME = "ddsp_gym/VolumeMatch-v1"


def _rms_db(audio: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


class LoudnessVote(ExternalReward):
    """A stand-in for a listener: likes sounds near ``goal_db`` RMS, counts its votes."""

    def __init__(self, goal_db: float) -> None:
        self.goal_db = goal_db
        self.votes = 0
        self.episodes: list[tuple[int, bool]] = []
        self.closed = False

    def begin_episode(self, target_audio: np.ndarray, target_known: bool) -> None:
        self.episodes.append((target_audio.size, target_known))

    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        self.votes += 1
        miss = abs(_rms_db(audio) - self.goal_db)
        return Rating(-miss, success=miss < 1.0, distance=miss, info={"gain": knobs["gain"]})

    def close(self) -> None:
        self.closed = True


def test_the_task_distance_is_the_default_source():
    env = make(VOLUME).unwrapped
    assert isinstance(env.reward_source, TaskReward) and env.differentiable


def test_an_external_source_scores_every_step_and_query_on_the_sim():
    voter = LoudnessVote(goal_db=-20.0)
    env = make(VOLUME, reward=voter)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    assert voter.episodes == [(base.plant.n_samples, True)]
    assert not base.differentiable and base.capabilities.differentiable  # the source has none
    for action in (-0.5, 0.2, 0.9):
        obs, reward, terminated, truncated, info = env.step(np.array([action], np.float32))
        miss = abs(_rms_db(base.current_audio()) - (-20.0))
        assert reward == pytest.approx(-miss, abs=1e-4) and info["distance"] == reward * -1
        assert terminated == info["success"] == (miss < 1.0)
        assert info["reward_source"] == {"gain": info["knobs"]["gain"]}
        assert "param_error" in info and np.isfinite(obs).all()
    steps = int(base.state.step_count)
    reward, info = base.reward_of(np.array([0.0], np.float32))
    assert int(base.state.step_count) == steps and voter.votes == 4
    # The JAX twin still has the task's gradient (for hybrid agents).
    _, grad = base.twin_reward_and_grad(np.array([0.0], np.float32))
    assert grad.shape == (1,) and np.isfinite(grad).all()
    with pytest.raises(NotImplementedError, match="LoudnessVote has no gradient"):
        base.reward_of(np.array([0.0], np.float32), with_grad=True)
    env.close()
    assert voter.closed


def test_an_external_source_passes_gymnasiums_checker_and_refuses_gradients():
    check_env(gym.make(VOLUME, reward=LoudnessVote(-20.0)).unwrapped, skip_render_check=True)
    with pytest.raises(ValueError, match="reward source LoudnessVote has none"):
        make(VOLUME, reward=LoudnessVote(-20.0), expose_grad=True)
    with pytest.raises(ValueError, match="task reward only"):
        gym.make_vec(VOLUME, num_envs=2, reward=LoudnessVote(-20.0))
    with pytest.raises(TypeError, match="RewardSource"):
        make(VOLUME, reward=lambda audio: 0.0)


def test_a_reward_source_can_be_named():
    env = make(VOLUME, reward="task")
    assert isinstance(env.unwrapped.reward_source, TaskReward)
    env = make(VOLUME, reward={"source": "task"})
    assert isinstance(env.unwrapped.reward_source, TaskReward) and env.unwrapped.differentiable
    with pytest.raises(ValueError, match="unknown reward source 'nope'"):
        make(VOLUME, reward="nope")
    with pytest.raises(TypeError, match="source name"):
        make(VOLUME, reward={"gain": 1.0})


class FadingVote(LoudnessVote):
    """A listener who leaves after ``patience`` votes: its ratings then ask to truncate."""

    def __init__(self, patience: int) -> None:
        super().__init__(goal_db=-20.0)
        self.patience = patience

    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        if self.votes >= self.patience:
            return Rating(0.0, info={"gone": True}, truncate=True)
        return super().rate(audio, knobs)


def test_a_rating_can_truncate_the_episode_without_an_error():
    voter = FadingVote(patience=2)
    env = make(VOLUME, reward=voter)
    env.reset(seed=0)
    flags = [env.step(np.array([0.1], np.float32))[2:4] for _ in range(3)]
    assert [truncated for _, truncated in flags] == [False, False, True]
    _, reward, terminated, truncated, info = env.step(np.array([0.1], np.float32))
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["reward_source"] == {"gone": True}
    # A query reports the rating but steps nothing.
    assert env.unwrapped.reward_of(np.array([0.1], np.float32))[1]["reward_source"] == {
        "gone": True
    }
