"""The hybrid agent on a gradient-free backend that offers its sim twin's gradient.

No rig needed: a sim env dressed as a hardware one answers reward queries (the
"takes") and, separately, twin gradients, as ``backend="hardware"`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddsp_gym.agents.base import PlantOracle
from ddsp_gym.agents.hybrid import HybridAgent
from ddsp_gym.backends.hardware import HardwareBackend
from tests.conftest import make


class TwinOnlyEnv:
    """Rewards by query only (no ``reward_grad``); gradients from ``twin_reward_and_grad``.

    ``twin_scale`` scales the twin's gradient: a twin whose loss is not the
    device's (only its direction should matter to the agent).
    """

    capabilities = HardwareBackend.capabilities
    differentiable = False

    def __init__(self, env_id: str, twin_scale: float = 1.0) -> None:
        self.env = make(env_id, expose_grad=False)
        self.inner = self.env.unwrapped
        self.config = self.inner.config
        self.action_space = self.env.action_space
        self.twin_scale = twin_scale
        self.takes = 0
        self.twin_calls = 0

    @property
    def unwrapped(self) -> TwinOnlyEnv:
        return self

    def reset(self, *, seed: int | None = None):
        return self.env.reset(seed=seed)

    def reward_of(self, action, with_grad: bool = False) -> tuple[float, dict[str, Any]]:
        assert not with_grad, "a hardware query never carries a gradient"
        self.takes += 1
        return self.inner.reward_of(action)

    def twin_reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        self.twin_calls += 1
        reward, grad = self.inner.twin_reward_and_grad(action)
        return reward, self.twin_scale * grad


def test_oracle_offers_the_twin_only_where_the_backend_has_no_gradient():
    assert PlantOracle(TwinOnlyEnv("ddsp_gym/SineTuner-v1"), 0, 5).has_twin
    sim = make("ddsp_gym/SineTuner-v1", expose_grad=False)
    assert not PlantOracle(sim, 0, 5).has_twin  # the sim stays on SPSA, as before
    assert not PlantOracle(make("ddsp_gym/SineTuner-v1", expose_grad=True), 0, 5).has_twin


def test_twin_gradients_cost_no_budget_and_are_counted_apart():
    env = TwinOnlyEnv("ddsp_gym/SineTuner-v1")
    oracle = PlantOracle(env, 0, 5)
    grad = oracle.twin_grad(np.zeros(1))
    reward, twin = env.inner.twin_reward_and_grad(np.zeros(1, np.float32))
    np.testing.assert_allclose(grad, -twin, rtol=1e-6)  # a loss gradient: -d reward
    assert oracle.queries == 0 and oracle.twin_queries == 1 and env.takes == 0


def test_hybrid_steers_by_the_twin_on_hardware_and_beats_spsa_alone():
    seeds, budget = [0, 1, 2, 3], 120
    twin_runs = []
    for seed in seeds:
        env = TwinOnlyEnv("ddsp_gym/SineTuner-v1", twin_scale=37.0)
        result = HybridAgent().solve(env, seed, budget)
        assert result.queries == env.takes <= budget  # only takes count
        assert result.twin_queries == env.twin_calls >= 1
        twin_runs.append(result)
    spsa = make("ddsp_gym/SineTuner-v1", expose_grad=False)
    spsa_runs = [HybridAgent().solve(spsa, seed, budget) for seed in seeds]
    assert all(r.twin_queries == 0 for r in spsa_runs)
    assert all(r.success for r in twin_runs)
    # The twin's direction saves queries over estimating it from rewards alone.
    twin_queries = np.median([r.queries for r in twin_runs])
    spsa_queries = np.median([r.queries for r in spsa_runs])
    assert twin_queries < spsa_queries, (twin_queries, spsa_queries)
