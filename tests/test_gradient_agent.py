from __future__ import annotations

import numpy as np
import pytest

from ddsp_gym.agents import GradientAgent
from tests.conftest import make


def test_gradient_agent_tunes_the_sine_and_is_deterministic():
    env = make("ddsp_gym/SineTuner-v1", expose_grad=True)
    first = GradientAgent().solve(env, seed=4)
    again = GradientAgent().solve(env, seed=4)
    assert first.success and first.final_distance <= 5.0
    assert first.distances == again.distances
    assert first.distances[-1] < first.distances[0]


def test_gradient_agent_refuses_envs_without_gradients():
    with pytest.raises(ValueError, match="expose_grad=True"):
        GradientAgent().solve(make("ddsp_gym/SineTuner-v1"), seed=0)


def test_gradient_agent_respects_max_steps():
    env = make("ddsp_gym/EnvelopeShaper-v1", expose_grad=True)
    result = GradientAgent(learning_rate=1e-4).solve(env, seed=0, max_steps=3)
    assert result.steps == 3 and len(result.distances) == 3
    assert np.isfinite(result.best_distance)
