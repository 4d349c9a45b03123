"""An amortized policy: a small MLP from the target's summary features to knob settings.

Trained by backprop through the differentiable plant: for a batch of training
targets, the network proposes knobs, the plant renders them, and the reward's
gradient flows back into the weights (the "differentiable simulator" route of
e.g. Engel et al., DDSP, ICLR 2020, applied to a synth's controls). An
optional policy-gradient term (REINFORCE with Gaussian exploration, Williams
1992) adds the gradient of the expected reward of perturbed knobs, which needs
no plant gradient. Once trained, it answers a new target with one query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddsp_gym.agents.base import QUERY_ENV_KWARGS, PlantOracle, SolveResult, Stop
from ddsp_gym.envs.functional import EnvParams, FunctionalDDSPEnv
from ddsp_gym.features.summary import SUMMARY_SIZE

Params = dict[str, jax.Array]


def init_mlp(key: jax.Array, n_in: int, n_hidden: int, n_out: int) -> Params:
    """Two-layer MLP weights (He-scaled normal for the tanh layer, small output layer)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (n_in, n_hidden)) * jnp.sqrt(1.0 / n_in),
        "b1": jnp.zeros(n_hidden),
        "w2": jax.random.normal(k2, (n_hidden, n_out)) * 0.1 / jnp.sqrt(n_hidden),
        "b2": jnp.zeros(n_out),
    }


def mlp_knobs(params: Params, features: jax.Array) -> jax.Array:
    """Target summary (S,) -> unit knob positions (d,) in (0, 1)."""
    hidden = jnp.tanh(features @ params["w1"] + params["b1"])
    return jax.nn.sigmoid(hidden @ params["w2"] + params["b2"])


def batch_loss(
    params: Params,
    key: jax.Array,
    fenv: FunctionalDDSPEnv,
    env_params: EnvParams,
    batch: int,
    pg_weight: float,
    pg_sigma: float,
) -> jax.Array:
    """Mean -reward of the network's knobs on ``batch`` fresh targets (+ a REINFORCE term)."""
    k_targets, k_noise = jax.random.split(key)
    _, states = jax.vmap(fenv.reset_env, in_axes=(0, None))(
        jax.random.split(k_targets, batch), env_params
    )
    knobs = jax.vmap(mlp_knobs, in_axes=(None, 0))(params, states.target_summary)

    def reward(state, k):
        return fenv.evaluate(state, k, env_params)[0]

    loss = -jnp.mean(jax.vmap(reward)(states, knobs))
    if pg_weight > 0.0:
        noisy = jax.lax.stop_gradient(
            jnp.clip(knobs + pg_sigma * jax.random.normal(k_noise, knobs.shape), 0.0, 1.0)
        )
        advantage = jax.lax.stop_gradient(jax.vmap(reward)(states, noisy))
        advantage = advantage - advantage.mean()
        log_prob = -jnp.sum((noisy - knobs) ** 2, axis=-1) / (2.0 * pg_sigma**2)
        loss = loss - pg_weight * jnp.mean(advantage * log_prob)
    return loss


@dataclass
class AmortizedPolicy:
    """A trained network, scored like the search agents: one query per target."""

    params: Params
    train_queries: int
    losses: list[float]
    name: str = "amortized"

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        oracle = PlantOracle(env, seed, budget)
        summary = jnp.asarray(oracle.base.state.target_summary)
        knobs = np.asarray(mlp_knobs(self.params, summary), np.float64)
        try:
            oracle.loss(2.0 * knobs - 1.0)
        except Stop:
            pass
        return oracle.result(wall_s=time.perf_counter() - start)


def train_amortized(
    env_id: str,
    queries: int,
    seed: int = 0,
    batch: int = 32,
    hidden: int = 64,
    learning_rate: float = 3e-3,
    pg_weight: float = 0.0,
    pg_sigma: float = 0.1,
) -> AmortizedPolicy:
    """Train on targets from a key stream apart from the env's seeded resets.

    ``queries`` plant renders in all: ``batch`` per update, twice that with the
    policy-gradient term (each perturbed sample is one more render).
    """
    base = gym.make(env_id, **QUERY_ENV_KWARGS).unwrapped
    fenv, env_params = base.functional, base.params
    per_update = batch * (2 if pg_weight > 0.0 else 1)
    updates = max(1, queries // per_update)
    key = jax.random.PRNGKey(seed)
    key, k_init = jax.random.split(key)
    params = init_mlp(k_init, SUMMARY_SIZE, hidden, fenv.num_knobs)
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)
    value_and_grad = jax.jit(
        jax.value_and_grad(batch_loss),
        static_argnums=(2, 4, 5, 6),
    )
    losses = []
    for _ in range(updates):
        key, k_batch = jax.random.split(key)
        loss, grads = value_and_grad(params, k_batch, fenv, env_params, batch, pg_weight, pg_sigma)
        update, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, update)
        losses.append(float(loss))
    return AmortizedPolicy(params, updates * per_update, losses)
