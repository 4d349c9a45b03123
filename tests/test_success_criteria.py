"""What users rely on in every env's observation and success rule, checked off the exact
target: the observation's three parts against the features of the sounds they describe,
and success flipping between 0.9 and 1.1 times each tolerance."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from ddsp_gym.features.summary import SUMMARY_SIZE, summary_features
from tests.conftest import HIDDEN_TARGET_IDS, TARGET_ENV_IDS, make

ENV_IDS = TARGET_ENV_IDS  # success and targets: a streaming env has neither
_summary = jax.jit(summary_features, static_argnums=1)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_observation_is_the_knobs_then_summaries_of_the_sound_and_the_target(env_id):
    env = make(env_id).unwrapped
    env.reset(seed=2)
    action = np.random.default_rng(2).uniform(-1, 1, env.action_space.shape).astype(np.float32)
    obs, *_ = env.step(action)
    d, sr = env.plant.num_knobs, env.plant.sample_rate
    np.testing.assert_allclose(obs[:d], np.asarray(env.state.knobs), atol=1e-6)
    current = np.asarray(_summary(env.current_audio(), sr))
    target = np.asarray(_summary(env.target_audio(), sr))
    # The step renders inside one fused computation, the check apart: float32 rounding,
    # which dB levels of near-silent bands enlarge.
    np.testing.assert_allclose(obs[d : d + SUMMARY_SIZE], current, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(obs[d + SUMMARY_SIZE :], target, rtol=1e-4, atol=2e-4)
    assert np.abs(current).max() > 0.05 and np.abs(target).max() > 0.05  # not empty


def _query(env, knobs: np.ndarray) -> dict:
    return env.reward_of((2.0 * knobs - 1.0).astype(np.float32))[1]


def _knobs_at_distance(env, center: np.ndarray, level: float) -> np.ndarray:
    """Knobs along one knob's travel from ``center`` whose distance is ``level`` (bisection).

    The distance at ``center`` is below ``level``; the first knob and direction whose end
    of travel lies above it brackets a crossing, which 24 halvings find to 1e-7 of travel.
    """
    for i in range(len(center)):
        for end in (1.0, 0.0):
            far = center.copy()
            far[i] = end
            if _query(env, far)["distance"] <= level:
                continue
            low, high = 0.0, 1.0  # fractions of the way from center to far
            for _ in range(24):
                mid = 0.5 * (low + high)
                probe = center + mid * (far - center)
                low, high = (mid, high) if _query(env, probe)["distance"] < level else (low, mid)
            return center + high * (far - center)
    raise AssertionError(f"no knob takes the distance from the target to {level}")


def _assert_flips_by_distance(env, center: np.ndarray) -> None:
    threshold = float(env.params.success_threshold)
    for factor, succeeds in ((0.9, True), (1.1, False)):
        info = _query(env, _knobs_at_distance(env, center, factor * threshold))
        assert info["distance"] == pytest.approx(factor * threshold, rel=0.03)
        assert info["success"] == succeeds, (factor, info["distance"], threshold)


@pytest.mark.parametrize("env_id", HIDDEN_TARGET_IDS)
def test_success_flips_between_0_9_and_1_1_times_the_tolerance(env_id):
    env = make(env_id).unwrapped
    env.reset(seed=4)
    center = np.asarray(env.state.target_knobs, np.float64)
    tolerance = float(env.params.param_tolerance)
    if math.isnan(tolerance):  # success by distance
        _assert_flips_by_distance(env, center)
        return
    # Success in knob space: every knob within the tolerance of the hidden target's.
    i = int(np.argmax(np.minimum(center, 1.0 - center)))  # the knob with room both ways
    step = 1.0 if center[i] < 0.5 else -1.0
    for factor, succeeds in ((0.9, True), (1.1, False)):
        knobs = center.copy()
        knobs[i] += step * factor * tolerance
        info = _query(env, knobs)
        assert info["param_error"] == pytest.approx(factor * tolerance, rel=1e-3)
        assert info["success"] == succeeds, (factor, info)
    # Given the same sound as a recording, its knobs unknown, the distance decides.
    recorded = make(env_id, target=env.target_audio()).unwrapped
    recorded.reset(seed=4)  # the same episode key: the same noise as the recording's
    assert "param_error" not in _query(recorded, center)
    _assert_flips_by_distance(recorded, center)
