"""PPO whose whole training loop is one jitted function of a key (purejaxrl's shape).

    train = make_train(PPOConfig(total_steps=1_000_000), fenv, env_params)
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))

PPO (Schulman et al. 2017, clipped surrogate) with GAE (Schulman et al. 2016), on the
functional core: the rollout steps ``num_envs`` envs through
:func:`ddsp_gym.envs.vector_env.vec_step` with same-step autoreset, the very step the
native vector env and :func:`ddsp_gym.envs.rollout.rollout` run (chunked vmap on CPU,
resets only where an episode ended), so the trainer's ceiling is the vector env's own
rate. Rollout and update live in one ``lax.scan``; nothing leaves the device until the
end (or the end of a chunk, :meth:`PPOTrainer.run`, when the caller logs between chunks).

Why not wrap rejax's PPO, which drives the env too (tests/test_functional.py)? rejax
steps ``jax.vmap(env.step)``: under vmap the auto-reset's ``lax.cond`` becomes a select,
so every env renders a new episode's target and start on every step, finished or not,
which at least doubles the cost of a step; and it keeps only the terminal flag, so
episodes cut by the time limit are not bootstrapped. Here truncation bootstraps from the
value of the observation before the reset, and termination (success) does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from gymnasium.vector import AutoresetMode
from jax import Array

from ddsp_gym.agents.jax_policy import (
    PolicyParams,
    action_mean,
    gaussian_entropy,
    gaussian_log_prob,
    init_policy,
    start_observations,
    value,
)
from ddsp_gym.envs.functional import EnvParams, FunctionalDDSPEnv
from ddsp_gym.envs.vector_env import VecCarry, vec_reset, vec_step


@dataclass(frozen=True)
class PPOConfig:
    """PPO's settings (static: they set shapes and loop lengths). YAML:
    ``agents/hyperparams/jax_ppo.yaml``."""

    total_steps: int = 1_000_000
    num_envs: int = 64
    num_steps: int = 128  # rollout length per env per update
    num_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    log_std_init: float = -0.5

    @property
    def batch_steps(self) -> int:
        """Env steps per update."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_steps)


class PPOState(NamedTuple):
    params: PolicyParams
    opt_state: optax.OptState
    carry: VecCarry
    obs: Array  # (N, obs_size)
    episode_return: Array  # (N,) return of each env's running episode
    key: Array
    steps: Array  # () int32 env steps so far


class Batch(NamedTuple):
    obs: Array
    action: Array  # unclipped sample
    log_prob: Array
    value: Array
    reward: Array
    next_value: Array  # value of the obs the action led to (before any reset)
    terminated: Array
    done: Array


class PPOMetrics(NamedTuple):
    """Per update."""

    steps: Array  # env steps after this update
    mean_reward: Array
    episodes: Array  # episodes that ended during the rollout
    successes: Array  # of which by success (termination)
    return_sum: Array  # their summed returns
    policy_loss: Array
    value_loss: Array
    entropy: Array


class PPOTrainer(NamedTuple):
    """The pure pieces: ``init(key)``, ``update(state)`` (one rollout + update),
    ``run(state, n)`` (``n`` updates in one scan) and ``train(key)`` (all of them)."""

    config: PPOConfig
    init: Callable[[Array], PPOState]
    update: Callable[[PPOState], tuple[PPOState, PPOMetrics]]
    run: Callable[[PPOState, int], tuple[PPOState, PPOMetrics]]
    train: Callable[[Array], tuple[PPOState, PPOMetrics]]


def gae(batch: Batch, gamma: float, lam: float) -> tuple[Array, Array]:
    """(advantages, value targets), (T, N) each, by generalised advantage estimation.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t), with s'_t the obs the
    step led to: a time-limit cut bootstraps, a success does not. The trace stops at
    every episode end (done_t), where the next row belongs to a new episode.
    """
    delta = batch.reward + gamma * (1.0 - batch.terminated) * batch.next_value - batch.value

    def back(next_adv, x):
        delta_t, done_t = x
        adv = delta_t + gamma * lam * (1.0 - done_t) * next_adv
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.zeros_like(delta[0]), (delta, batch.done), reverse=True)
    return adv, adv + batch.value


def ppo_loss(
    params: PolicyParams, batch: Batch, adv: Array, target: Array, config: PPOConfig, d: int
) -> tuple[Array, tuple[Array, Array, Array]]:
    """Clipped surrogate + value regression - entropy bonus, over a flat minibatch."""
    mean = action_mean(params, batch.obs, d)
    log_prob = gaussian_log_prob(batch.action, mean, params["log_std"])
    ratio = jnp.exp(log_prob - batch.log_prob)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
    policy_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    value_loss = 0.5 * jnp.mean((value(params, batch.obs, d) - target) ** 2)
    entropy = gaussian_entropy(params["log_std"])
    total = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    return total, (policy_loss, value_loss, entropy)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Adam with global-norm clipping; linear decay to 0 when ``anneal_lr``."""
    if config.anneal_lr:
        steps = config.num_updates * config.num_epochs * config.num_minibatches
        lr: float | optax.Schedule = optax.linear_schedule(config.learning_rate, 0.0, steps)
    else:
        lr = config.learning_rate
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))


def make_trainer(config: PPOConfig, fenv: FunctionalDDSPEnv, env_params: EnvParams) -> PPOTrainer:
    """PPO's pure pieces for this env (see :class:`PPOTrainer`)."""
    d = fenv.num_knobs
    n = config.num_envs
    if (config.num_envs * config.num_steps) % config.num_minibatches:
        raise ValueError("num_envs * num_steps must be a multiple of num_minibatches")
    optimizer = make_optimizer(config)

    def init(key: Array) -> PPOState:
        k_norm, k_net, k_env, k_run = jax.random.split(key, 4)
        obs0 = start_observations(fenv, env_params, k_norm)
        params = init_policy(k_net, obs0, d, config.hidden, config.log_std_init, value_head=True)
        carry, obs, _ = vec_reset(fenv, jax.random.split(k_env, n), env_params)
        return PPOState(
            params=params,
            opt_state=optimizer.init(params),
            carry=carry,
            obs=obs,
            episode_return=jnp.zeros(n),
            key=k_run,
            steps=jnp.array(0, jnp.int32),
        )

    def env_step(state: PPOState, _) -> tuple[PPOState, tuple[Batch, Array]]:
        key, k_act = jax.random.split(state.key)
        params = state.params
        mean = action_mean(params, state.obs, d)
        action = mean + jnp.exp(params["log_std"]) * jax.random.normal(k_act, mean.shape)
        carry, out = vec_step(
            fenv,
            state.carry,
            jnp.clip(action, -1.0, 1.0),
            env_params,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        done = out.terminated | out.truncated
        episode_return = state.episode_return + out.reward
        batch = Batch(
            obs=state.obs,
            action=action,
            log_prob=gaussian_log_prob(action, mean, params["log_std"]),
            value=value(params, state.obs, d),
            reward=out.reward,
            next_value=value(params, out.final_obs, d),
            terminated=out.terminated.astype(jnp.float32),
            done=done.astype(jnp.float32),
        )
        ended = jnp.where(done, episode_return, 0.0)
        new_state = state._replace(
            carry=carry,
            obs=out.obs,
            episode_return=jnp.where(done, 0.0, episode_return),
            key=key,
            steps=state.steps + n,
        )
        return new_state, (batch, ended)

    def minibatch_update(carry, minibatch):
        params, opt_state = carry
        batch, adv, target = minibatch
        grads, aux = jax.grad(ppo_loss, has_aux=True)(params, batch, adv, target, config, d)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def update(state: PPOState) -> tuple[PPOState, PPOMetrics]:
        state, (batch, ended) = jax.lax.scan(env_step, state, None, length=config.num_steps)
        adv, target = gae(batch, config.gamma, config.gae_lambda)
        flat = jax.tree.map(lambda x: x.reshape(config.batch_steps, *x.shape[2:]), batch)
        data = (flat, adv.reshape(-1), target.reshape(-1))

        def epoch(carry, key):
            order = jax.random.permutation(key, config.batch_steps)
            shuffled = jax.tree.map(
                lambda x: x[order].reshape(config.num_minibatches, -1, *x.shape[1:]), data
            )
            return jax.lax.scan(minibatch_update, carry, shuffled)

        key, k_epochs = jax.random.split(state.key)
        (params, opt_state), (pi_loss, v_loss, entropy) = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(k_epochs, config.num_epochs)
        )
        state = state._replace(params=params, opt_state=opt_state, key=key)
        metrics = PPOMetrics(
            steps=state.steps,
            mean_reward=batch.reward.mean(),
            episodes=batch.done.sum(),
            successes=batch.terminated.sum(),
            return_sum=ended.sum(),
            policy_loss=pi_loss.mean(),
            value_loss=v_loss.mean(),
            entropy=entropy.mean(),
        )
        return state, metrics

    def run(state: PPOState, updates: int) -> tuple[PPOState, PPOMetrics]:
        return jax.lax.scan(lambda s, _: update(s), state, None, length=updates)

    def train(key: Array) -> tuple[PPOState, PPOMetrics]:
        return run(init(key), config.num_updates)

    return PPOTrainer(config, init, update, run, train)


def make_train(
    config: PPOConfig, fenv: FunctionalDDSPEnv, env_params: EnvParams
) -> Callable[[Array], tuple[PPOState, PPOMetrics]]:
    """purejaxrl's ``make_train(config) -> train(key)``: jit it, vmap it over seeds."""
    return make_trainer(config, fenv, env_params).train
