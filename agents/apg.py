"""Analytic policy gradient: backprop of the discounted return through the plant.

    trainer = make_trainer(APGConfig(), fenv, env_params)
    state = trainer.init(jax.random.PRNGKey(0))
    state, metrics = jax.jit(trainer.run, static_argnums=1)(state, 100)

Each update plays ``horizon`` steps of ``num_envs`` envs with the policy's actions
(plus optional Gaussian dither, reparameterised) through the functional core's pure
``transition``, and differentiates the discounted return of those steps with respect
to the policy's parameters: the gradient runs back through every reward, every
rendered sound and every observation the policy read (truncated backpropagation
through time, as in SHAC, Xu et al. ICLR 2022, without its critic). Env states carry
over between updates with the gradient stopped; episodes that end are reset between
updates. The amortized agent (:mod:`ddsp_gym.agents.amortized`) is the one-step case
with absolute control: a network from the target to knobs, trained on -reward.

The same update carries the hybrid policy gradient's extra terms
(:mod:`ddsp_gym.agents.hybrid_pg`): a score-function (REINFORCE) term whose advantage
is shaped by a differentiable closeness factor M, weighted by ``pg_coef`` (0 here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array

from ddsp_gym.agents.jax_policy import (
    PolicyParams,
    action_mean,
    gaussian_log_prob,
    init_policy,
    start_observations,
)
from ddsp_gym.batching import chunked_vmap
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv
from ddsp_gym.envs.vector_env import reset_where


@dataclass(frozen=True)
class APGConfig:
    """Settings (static: they set shapes and loop lengths). YAML: ``agents/hyperparams/apg.yaml``
    and ``hybrid_pg.yaml``."""

    num_envs: int = 64
    horizon: int = 8  # steps backpropagated per update
    gamma: float = 0.95
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    hidden: tuple[int, ...] = (64, 64)
    dither: float = 0.0  # std of the Gaussian added to actions (the hybrid schedules it)
    pg_coef: float = 0.0  # weight of the score-function term (hybrid only)
    closeness_gain: float = 0.0  # kappa of M = 1 + kappa * exp(-distance / threshold)

    @property
    def batch_steps(self) -> int:
        """Env steps (plant renders, each with its backward pass) per update."""
        return self.num_envs * self.horizon


class APGState(NamedTuple):
    params: PolicyParams
    opt_state: optax.OptState
    chain: Array  # (N, 2) each env's key chain (its resets)
    env_state: EnvState  # (N, ...)
    obs: Array  # (N, obs_size)
    key: Array
    steps: Array  # () int32 env steps so far


class APGMetrics(NamedTuple):
    """Per update."""

    steps: Array
    loss: Array  # the minimised objective
    mean_reward: Array  # over the steps played in live episodes
    episodes: Array  # episodes that ended during the update
    successes: Array  # of which by success
    grad_norm: Array


class Rollout(NamedTuple):
    reward: Array  # (H, N), 0 after an episode ended
    alive: Array  # (H, N) the step belongs to a live episode
    terminated: Array  # (H, N) success at this step
    distance: Array  # (H, N)
    log_prob: Array  # (H, N) of the played action (gradient through the mean only)


class APGTrainer(NamedTuple):
    """``init(key)``, ``update(state, dither, lr_scale)``, ``run(state, n, dither=, lr_scale=)``,
    ``loss(params, state, key, dither)`` (the objective, for tests) ."""

    config: APGConfig
    init: Callable[[Array], APGState]
    update: Callable[..., tuple[APGState, APGMetrics]]
    run: Callable[..., tuple[APGState, APGMetrics]]
    loss: Callable[..., tuple[Array, tuple]]


def closeness(distance: Array, threshold: Array) -> Array:
    """exp(-distance / threshold): 1 on target, ~0.37 at the success threshold, -> 0 far away.

    The hybrid's M(phi) = 1 + kappa * closeness weighs advantages of steps near the target
    up: there reward differences are small, yet they decide success.
    """
    return jnp.exp(-distance / jnp.maximum(threshold, 1e-12))


def discounted_to_go(reward: Array, gamma: float) -> Array:
    """G_t = sum_{k >= t} gamma^(k - t) r_k over the time axis 0 (no bootstrap)."""

    def back(g, r):
        g = r + gamma * g
        return g, g

    return jax.lax.scan(back, jnp.zeros_like(reward[0]), reward, reverse=True)[1]


def make_optimizer(config: APGConfig) -> optax.GradientTransformation:
    """Adam with global-norm clipping; the learning rate is a hyperparameter the hybrid's
    scheduler sets between updates (``optax.inject_hyperparams``)."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate),
    )


def make_trainer(config: APGConfig, fenv: FunctionalDDSPEnv, env_params: EnvParams) -> APGTrainer:
    """The APG's pure pieces for this env (see :class:`APGTrainer`)."""
    d, n, horizon = fenv.num_knobs, config.num_envs, config.horizon
    optimizer = make_optimizer(config)
    transition = chunked_vmap(fenv.transition, in_axes=(0, 0, None), whole_if_light=True)
    discounts = config.gamma ** jnp.arange(horizon, dtype=jnp.float32)

    def init(key: Array) -> APGState:
        k_norm, k_net, k_env, k_run = jax.random.split(key, 4)
        obs0 = start_observations(fenv, env_params, k_norm)
        params = init_policy(k_net, obs0, d, config.hidden, log_std=0.0)
        chain, env_state, obs = chunked_vmap(fenv.reset_from_chain, in_axes=(0, None))(
            jax.random.split(k_env, n), env_params
        )
        return APGState(
            params, optimizer.init(params), chain, env_state, obs, k_run, jnp.array(0, jnp.int32)
        )

    def play(params, env_state, obs, key, dither) -> tuple[Rollout, tuple]:
        """``horizon`` differentiable steps -> (rollout, (env state, obs, alive) at the end)."""
        noise = jax.random.normal(key, (horizon, n, d))

        def step(carry, eta):
            env_state, obs, alive = carry
            mean = action_mean(params, obs, d)
            action = mean + dither * eta
            env_state, obs, reward, terminated, info = transition(env_state, action, env_params)
            truncated = env_state.step_count >= env_params.max_steps_in_episode
            log_std = jnp.log(jnp.maximum(dither, 1e-6)) * jnp.ones(d)
            log_prob = gaussian_log_prob(jax.lax.stop_gradient(action), mean, log_std)
            out = Rollout(
                reward=jnp.where(alive, reward, 0.0),
                alive=alive,
                terminated=alive & terminated,
                distance=info.distance,
                log_prob=log_prob,
            )
            return (env_state, obs, alive & ~terminated & ~truncated), out

        init = (env_state, obs, jnp.ones(n, bool))
        end, rollout = jax.lax.scan(step, init, noise)
        return rollout, end

    def loss(params, state: APGState, key: Array, dither: Array) -> tuple[Array, tuple]:
        """-(mean over envs of the discounted return of the segment), plus the hybrid's
        shaped score-function term when ``pg_coef`` > 0."""
        rollout, end = play(params, state.env_state, state.obs, key, dither)
        pathwise = -jnp.mean(jnp.sum(discounts[:, None] * rollout.reward, axis=0))
        total = pathwise
        if config.pg_coef > 0.0:
            returns = jax.lax.stop_gradient(discounted_to_go(rollout.reward, config.gamma))
            advantage = returns - returns.mean(axis=1, keepdims=True)
            shaping = 1.0 + config.closeness_gain * closeness(
                rollout.distance, env_params.success_threshold
            )
            advantage = jax.lax.stop_gradient(advantage * shaping)
            advantage = advantage / (jnp.std(advantage) + 1e-8)
            score = -jnp.sum(rollout.alive * advantage * rollout.log_prob)
            total = total + config.pg_coef * score / jnp.maximum(rollout.alive.sum(), 1.0)
        return total, (rollout, end)

    def update(state: APGState, dither: Array, lr_scale: Array) -> tuple[APGState, APGMetrics]:
        key, k_play = jax.random.split(state.key)
        (value, (rollout, end)), grads = jax.value_and_grad(loss, has_aux=True)(
            state.params, state, k_play, dither
        )
        clip_state, adam_state = state.opt_state
        rate = jnp.asarray(config.learning_rate * lr_scale, jnp.float32)
        hyper = {**adam_state.hyperparams, "learning_rate": rate}
        adam_state = adam_state._replace(hyperparams=hyper)
        opt_state = (clip_state, adam_state)
        updates, opt_state = optimizer.update(grads, opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        env_state, obs, alive = jax.lax.stop_gradient(end)
        chain, env_state, obs = reset_where(fenv, ~alive, state.chain, env_state, obs, env_params)
        live = rollout.alive.sum()
        metrics = APGMetrics(
            steps=state.steps + config.batch_steps,
            loss=value,
            mean_reward=rollout.reward.sum() / jnp.maximum(live, 1.0),
            episodes=(~alive).sum(),
            successes=rollout.terminated.sum(),
            grad_norm=jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))),
        )
        new = APGState(params, opt_state, chain, env_state, obs, key, metrics.steps)
        return new, metrics

    def run(
        state: APGState, updates: int, dither: Array | float | None = None, lr_scale: float = 1.0
    ) -> tuple[APGState, APGMetrics]:
        dither = jnp.asarray(config.dither if dither is None else dither, jnp.float32)
        lr_scale = jnp.asarray(lr_scale, jnp.float32)
        return jax.lax.scan(lambda s, _: update(s, dither, lr_scale), state, None, length=updates)

    return APGTrainer(config, init, update, run, loss)
