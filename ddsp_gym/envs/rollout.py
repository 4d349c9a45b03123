"""A pure-JAX rollout for JAX-native agents: ``num_envs`` envs, ``num_steps`` steps, one scan.

    from functools import partial
    run = jax.jit(partial(rollout, fenv, params, policy_fn, num_envs=256, num_steps=100))
    final, traj = run(jax.random.PRNGKey(0))

The whole loop (policy, plant, features, reward, same-step autoreset) is one
``lax.scan``: jit it, ``vmap`` it over keys, or call it inside a training step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from gymnasium.vector import AutoresetMode
from jax import Array

from ddsp_gym.envs.functional import EnvParams, FunctionalDDSPEnv
from ddsp_gym.envs.vector_env import VecCarry, vec_reset, vec_step

# policy_fn(obs (N, obs_size), key) -> actions (N, d) in [-1, 1]
PolicyFn = Callable[[Array, Array], Array]


class Transition(NamedTuple):
    """One step of every env; ``rollout`` stacks them to (num_steps, num_envs, ...)."""

    obs: Array  # (N, obs_size) the obs the policy acted on
    action: Array  # (N, d) the action taken (clipped to [-1, 1])
    reward: Array  # (N,)
    terminated: Array  # (N,) bool
    truncated: Array  # (N,) bool
    next_obs: Array  # (N, obs_size) the obs the action led to (before any reset)
    distance: Array  # (N,) task distance after the step
    success: Array  # (N,) bool


class RolloutState(NamedTuple):
    """Where a rollout ended: pass it to :func:`rollout_from` to continue."""

    carry: VecCarry
    obs: Array  # (N, obs_size)
    key: Array


def init_rollout(
    fenv: FunctionalDDSPEnv, params: EnvParams, key: Array, num_envs: int
) -> RolloutState:
    """Reset ``num_envs`` envs whose key chains are ``jax.random.split`` of ``key``."""
    k_envs, k_policy = jax.random.split(key)
    carry, obs, _ = vec_reset(fenv, jax.random.split(k_envs, num_envs), params)
    return RolloutState(carry, obs, k_policy)


def rollout_from(
    fenv: FunctionalDDSPEnv,
    params: EnvParams,
    policy_fn: PolicyFn,
    start: RolloutState,
    num_steps: int,
) -> tuple[RolloutState, Transition]:
    """Run ``num_steps`` steps from ``start`` with same-step autoreset; episodes are
    truncated at ``params.max_steps_in_episode`` steps.

    Step t draws the policy key ``split(key)[1]``; episodes that end are reset
    in the same step from their env's key chain, as in
    ``VectorDDSPEnv(autoreset_mode=SAME_STEP)``.
    """

    def one_step(state: RolloutState, _) -> tuple[RolloutState, Transition]:
        key, k_act = jax.random.split(state.key)
        action = jnp.clip(policy_fn(state.obs, k_act).astype(jnp.float32), -1.0, 1.0)
        carry, out = vec_step(
            fenv,
            state.carry,
            action,
            params,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        transition = Transition(
            obs=state.obs,
            action=action,
            reward=out.reward,
            terminated=out.terminated,
            truncated=out.truncated,
            next_obs=out.final_obs,
            distance=out.info.distance,
            success=out.info.success,
        )
        return RolloutState(carry, out.obs, key), transition

    return jax.lax.scan(one_step, start, None, length=num_steps)


def rollout(
    fenv: FunctionalDDSPEnv,
    params: EnvParams,
    policy_fn: PolicyFn,
    key: Array,
    num_envs: int,
    num_steps: int,
) -> tuple[RolloutState, Transition]:
    """Reset ``num_envs`` envs from ``key`` and run ``num_steps`` steps; pure and jittable.

    Args:
        fenv: the functional env (``env.unwrapped.functional``); static under jit.
        params: its ``EnvParams`` (``env.unwrapped.params``).
        policy_fn: ``(obs (N, obs_size), key) -> actions (N, d)``; static under jit.
        key: PRNG key for the env chains and the policy.
        num_envs, num_steps: static sizes.
    Returns:
        (final :class:`RolloutState`, :class:`Transition` with leaves (num_steps, num_envs, ...)).
    """
    start = init_rollout(fenv, params, key, num_envs)
    return rollout_from(fenv, params, policy_fn, start, num_steps)
