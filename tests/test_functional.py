"""The functional core with gymnax's signatures (``ddsp_gym.make_functional``)."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddsp_gym
from ddsp_gym.bench.compiles import count_compilations
from ddsp_gym.envs.functional import EnvParams
from tests.conftest import V0_KWARGS, make, require

VOLUME = "ddsp_gym/VolumeMatch-v1"


def test_make_functional_has_gymnax_signatures_spaces_and_default_params():
    env, params = ddsp_gym.make_functional(VOLUME)
    assert isinstance(params, EnvParams)
    assert int(params.max_steps_in_episode) == gym.spec(VOLUME).max_episode_steps
    assert env.default_params is params and env.num_actions == 1
    key = jax.random.PRNGKey(0)
    obs, state = env.reset(key, params)
    space = env.observation_space(params)
    assert obs.shape == space.shape and bool(space.contains(obs))
    action = env.action_space(params).sample(key)
    assert action.shape == (1,) and bool(env.action_space(params).contains(action))
    obs, state, reward, done, info = env.step(key, state, action, params)
    assert obs.shape == space.shape and reward.shape == () and done.dtype == jnp.bool_
    assert {"distance", "success", "terminated", "truncated", "discount"} <= set(info)
    np.testing.assert_array_equal(env.reset(key)[0], env.reset(key, params)[0])
    overridden, params_50 = ddsp_gym.make_functional(VOLUME, max_episode_steps=7, control="delta")
    assert int(params_50.max_steps_in_episode) == 7 and overridden.control == "delta"
    with pytest.raises(ValueError, match="sim env"):
        ddsp_gym.make_functional(VOLUME, backend="hardware")
    with pytest.raises(ValueError, match="task's distance"):
        ddsp_gym.make_functional(VOLUME, reward=object())


def test_a_gymnax_step_scores_as_the_gymnasium_env_does():
    env, params = ddsp_gym.make_functional("ddsp_gym/CutoffSweeper-v1", **V0_KWARGS)
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    action = jnp.array([0.3])
    gym_env = make("ddsp_gym/CutoffSweeper-v1").unwrapped
    gym_env.reset(seed=0)
    gym_env.state = state  # the same episode, stepped by the wrapper
    want_obs, want_reward, _, _, want_info = gym_env.step(np.asarray(action, np.float32))
    got_obs, _, reward, _, info = jax.jit(env.step_env)(
        jax.random.PRNGKey(9), state, action, params
    )
    np.testing.assert_allclose(got_obs, want_obs, rtol=1e-5, atol=1e-5)
    assert float(reward) == pytest.approx(want_reward, rel=1e-5, abs=1e-6)
    assert float(info["distance"]) == pytest.approx(want_info["distance"], rel=1e-5)


def test_step_resets_an_episode_that_ends_and_reports_why():
    env, params = ddsp_gym.make_functional(VOLUME, max_episode_steps=2, **V0_KWARGS)
    key = jax.random.PRNGKey(1)
    step = jax.jit(env.step)
    obs0, state = env.reset(key, params)
    target = state.target_knobs
    knobs = jnp.where(target > 0.5, target - 0.3, target + 0.3)  # far off: no success
    away = 2.0 * knobs - 1.0
    _, state, _, done, info = step(jax.random.PRNGKey(2), state, away, params)
    assert not bool(done) and int(state.step_count) == 1
    step_key = jax.random.PRNGKey(3)
    obs, state, _, done, info = step(step_key, state, away, params)
    assert bool(done) and bool(info["truncated"]) and not bool(info["terminated"])
    assert float(info["discount"]) == 1.0  # a time limit, not an end of the task
    # The state is the next episode's first, drawn from the step key's reset half.
    want_obs, want_state = env.reset_env(jax.random.split(step_key)[1], params)
    assert int(state.step_count) == 0
    np.testing.assert_allclose(obs, want_obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state.target_knobs, want_state.target_knobs)
    # Success ends an episode too, with no bootstrap from the next state (discount 0).
    _, state = env.reset(key, params)
    hit = env.action_for(state.knobs, state.target_knobs, params)
    _, _, _, done, info = step(step_key, state, hit, params)
    assert bool(done) and bool(info["terminated"]) and float(info["discount"]) == 0.0


def test_numeric_settings_are_traced_no_recompile_and_vmap():
    env, params = ddsp_gym.make_functional(VOLUME, **V0_KWARGS)
    key = jax.random.PRNGKey(5)
    _, state = env.reset(key, params)
    action = jnp.clip(2.0 * state.target_knobs - 1.0 + 0.1, -1.0, 1.0)  # a bit off target
    step = jax.jit(env.step_env)
    base = step(key, state, action, params)
    distance = float(base[4]["distance"])
    assert distance > 0.0
    with count_compilations() as compiles:
        for threshold, scale in ((0.5 * distance, 1.0), (2.0 * distance, 18.0), (0.0, 3.0)):
            changed = params._replace(
                success_threshold=jnp.float32(threshold),
                distance_scale=jnp.float32(scale),
                param_tolerance=jnp.float32(jnp.nan),  # judge by distance, not knobs
            )
            _, _, reward, done, info = step(key, state, action, changed)
            assert bool(info["success"]) == (distance <= threshold)
            assert float(reward) == pytest.approx(-distance / scale, rel=1e-5)
    assert compiles.count == 0

    def success_at(threshold):
        swept = params._replace(success_threshold=threshold, param_tolerance=jnp.nan)
        return env.step_env(key, state, action, swept)[4]["success"]

    sweep = jax.jit(jax.vmap(success_at))
    thresholds = jnp.array([0.0, 0.5, 2.0], jnp.float32) * distance
    np.testing.assert_array_equal(sweep(thresholds), [False, False, True])
    other = jnp.array([2.0, 0.0, 0.99], jnp.float32) * distance
    with count_compilations() as compiles:
        np.testing.assert_array_equal(sweep(other), [True, False, False])
    assert compiles.count == 0


@pytest.mark.slow
def test_rejax_ppo_trains_on_the_functional_env():
    """A pure-JAX RL library written for gymnax envs drives the env as it is."""
    require("rejax", "the gymnax-compatibility test needs rejax: pip install 'ddsp_gym[jax-rl]'")
    import rejax

    env, params = ddsp_gym.make_functional(VOLUME, control="delta", max_episode_steps=8)
    algo = rejax.PPO.create(
        env=env,
        env_params=params,
        num_envs=4,
        num_steps=16,
        num_epochs=1,
        num_minibatches=2,
        total_timesteps=384,
        eval_freq=128,
        skip_initial_evaluation=True,
    )
    train_state, (lengths, returns) = jax.jit(algo.train)(jax.random.PRNGKey(0))
    assert int(train_state.global_step) >= 384
    assert lengths.shape[0] == 3 and np.all(np.asarray(lengths) >= 1)
    assert np.all(np.isfinite(np.asarray(returns)))
