"""Guarantees every registered env keeps, checked over the whole registry."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import ddsp_gym
from ddsp_gym.tasks import TASKS
from ddsp_gym.tasks.goal import reference_setting
from tests.conftest import HIDDEN_TARGET_IDS, TARGET_ENV_IDS, TASK_REWARD_IDS, make

# Every env keeps the guarantees parametrized over ENV_IDS; those over TARGET_ENV_IDS
# are about a target and success, which a streaming env has not (tests/test_streaming.py
# checks a stream's counterparts: determinism of its audio, its reward terms).
ENV_IDS = list(ddsp_gym.ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    env = make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_follow_the_contract(env_id):
    env = make(env_id)
    d = env.unwrapped.plant.num_knobs
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (d,), np.float32)
    assert env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32


def _central_difference(env, action: np.ndarray, h: float) -> np.ndarray:
    grad = np.zeros_like(action)
    for i in range(action.size):
        step = np.zeros_like(action)
        step[i] = h
        up, _ = env.reward_and_grad(action + step)
        down, _ = env.reward_and_grad(action - step)
        grad[i] = (up - down) / (2 * h)
    return grad


FD_STEPS = (4e-3, 1e-3, 3e-4)


def _finite_difference_error(env, action: np.ndarray, grad: np.ndarray) -> float:
    """Relative error of ``grad`` against central differences, at the best of FD_STEPS.

    One step size cannot serve every env in float32: where the reward curves
    sharply (a penalty switching on) a large step's truncation error dominates,
    where the reward carries float32 rounding noise a small step amplifies it.
    A wrong gradient disagrees at every step size.
    """
    errors = []
    for h in FD_STEPS:
        fd = _central_difference(env, action, h)
        errors.append(np.linalg.norm(grad - fd) / max(np.linalg.norm(fd), 1e-3))
    return min(errors)


@pytest.mark.parametrize("env_id", TASK_REWARD_IDS)
def test_reward_grad_agrees_with_finite_differences(env_id):
    env = make(env_id, expose_grad=True).unwrapped
    rng = np.random.default_rng(0)
    errors = []
    for seed in range(3):
        env.reset(seed=seed)
        action = rng.uniform(-0.9, 0.9, env.action_space.shape).astype(np.float32)
        _, _, _, _, info = env.step(action)  # reward_grad of this very action...
        env.reset(seed=seed)  # ...from the same state as the probes below
        _, grad = env.reward_and_grad(action)
        # Two jitted functions: XLA may fuse them differently (float32 rounding).
        np.testing.assert_allclose(info["reward_grad"], grad, rtol=5e-5, atol=1e-6)
        errors.append(_finite_difference_error(env, action.astype(np.float64), grad))
    assert max(errors) < 1e-2, errors


@pytest.mark.parametrize("env_id", TARGET_ENV_IDS)
def test_same_seed_same_target_audio_and_rewards(env_id):
    actions = np.random.default_rng(1).uniform(-1, 1, (5, *make(env_id).action_space.shape))
    runs = []
    for _ in range(2):
        env = make(env_id)
        obs, _ = env.reset(seed=123)
        rewards = [env.step(a.astype(np.float32))[1] for a in actions]
        runs.append((obs, env.unwrapped.target_audio(), rewards))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
    other = make(env_id)
    other.reset(seed=124)
    assert not np.array_equal(other.unwrapped.target_audio(), runs[0][1])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vmapped_step_over_8_states_equals_8_single_steps(env_id):
    base = make(env_id).unwrapped
    fenv, params = base.functional, base.params
    keys = jax.random.split(jax.random.PRNGKey(7), 8)
    actions = jax.random.uniform(jax.random.PRNGKey(8), (8, fenv.num_knobs), minval=-1, maxval=1)
    _, states = jax.vmap(fenv.reset_env, in_axes=(0, None))(keys, params)
    batched = jax.jit(jax.vmap(fenv.step_env, in_axes=(0, 0, 0, None)))(
        keys, states, actions, params
    )
    single_step = jax.jit(fenv.step_env)
    for i in range(8):
        state_i = jax.tree.map(lambda leaf, i=i: leaf[i], states)
        single = single_step(keys[i], state_i, actions[i], params)
        # XLA compiles the filters' sample loop differently for a batch than for one
        # signal, so float32 rounding differs (~1e-6 of the audio); the observation's
        # dB levels of near-silent bands turn that into up to ~1e-4 (0.008 dB).
        for b_leaf, s_leaf in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(b_leaf[i], s_leaf, rtol=2e-5, atol=1e-4)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fuzz_random_and_extreme_actions_stay_finite(env_id):
    env = make(env_id)
    env.reset(seed=0)
    d = env.action_space.shape[0]
    rng = np.random.default_rng(0)
    actions = [np.full(d, -1.0), np.full(d, 1.0), np.full(d, 1e6), np.full(d, -1e6)]
    actions += list(rng.uniform(-1.0, 1.0, (1000, d)))
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(np.asarray(action, np.float32))
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        numbers = [v for v in info.values() if isinstance(v, float | np.ndarray)]
        assert numbers and all(np.all(np.isfinite(v)) for v in numbers)
        assert env_id not in TARGET_ENV_IDS or "distance" in info
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_non_finite_actions_raise_naming_the_entry(env_id, bad):
    env = make(env_id)
    env.reset(seed=0)
    d = env.action_space.shape[0]
    action = np.zeros(d, np.float32)
    action[d - 1] = bad
    name = env.unwrapped.plant.knob_names[d - 1]
    with pytest.raises(ValueError, match=rf"action\[{d - 1}\] \({name}\) is"):
        env.step(action)
    # Nothing was lost: the episode goes on.
    env.step(np.zeros(d, np.float32))


@pytest.mark.parametrize("env_id", TASK_REWARD_IDS)
def test_random_policy_scores_near_minus_one(env_id):
    env = make(env_id)
    rewards = []
    for seed in range(60):
        env.reset(seed=seed)
        rewards.append(env.step(env.action_space.sample())[1])
    assert -1.5 < np.mean(rewards) < -0.6


@pytest.mark.parametrize("env_id", HIDDEN_TARGET_IDS)
def test_info_reports_distance_success_knobs_and_param_error(env_id):
    env = make(env_id, expose_grad=True)
    env.reset(seed=3)
    base = env.unwrapped
    # Playing the hidden target's knobs is a success with zero parameter error.
    state = base.state
    action = np.asarray(base.functional.action_for(state.knobs, state.target_knobs, base.params))
    _, reward, terminated, _, info = env.step(action.astype(np.float32))
    assert info["success"] and terminated
    assert info["param_error"] == pytest.approx(0.0, abs=1e-5)
    assert info["distance"] <= base.params.success_threshold
    assert set(info["knobs"]) == set(base.plant.knob_names)
    assert info["reward_grad"].shape == env.action_space.shape


GOAL_ENV_IDS = [i for i in TARGET_ENV_IDS if TASKS[gym.spec(i).kwargs["task"]].is_goal]


@pytest.mark.parametrize("env_id", GOAL_ENV_IDS)
def test_goal_tasks_hidden_reference_meets_the_goal_in_every_episode(env_id):
    # A goal task's hidden "target" knobs are the best of random candidates heard with
    # the episode's own noise (tasks/goal.py): they must meet the goal in the episode.
    env = make(env_id).unwrapped
    for seed in range(24):
        env.reset(seed=seed)
        state = env.state
        action = np.asarray(env.functional.action_for(state.knobs, state.target_knobs, env.params))
        info = env.step(action.astype(np.float32))[4]
        assert info["success"], (seed, info["distance"])


class _KnobIsItsSound:
    """A one-knob plant whose sound is its knob value, for the reference search."""

    knob_names = ("x",)
    sample_rate = 1

    def render(self, knobs, key):
        return knobs


class _DistanceIsTheSound:
    """A goal task whose distance is the sound's value."""

    def features(self, audio, sample_rate):
        return audio[0]

    def distance(self, features, target_features):
        return features


@pytest.mark.parametrize("threshold", [0.2, 0.0])
def test_reference_search_stops_at_the_first_group_meeting_the_goal(threshold):
    key = jax.random.PRNGKey(3)
    best = reference_setting(_DistanceIsTheSound(), _KnobIsItsSound(), key, key, threshold, {})
    heard = np.asarray(jax.random.uniform(key, (256, 1)))[:, 0]
    if threshold:  # the best of the groups heard until one was within half the threshold
        first = next(g for g in range(32) if heard[8 * g : 8 * g + 8].min() <= 0.1)
        assert float(best[0]) == heard[: 8 * first + 8].min() <= 0.1
    else:  # none can meet a zero threshold: the best of all 256
        assert float(best[0]) == heard.min()
    with pytest.raises(ValueError, match="multiple of 8"):
        reference_setting(_DistanceIsTheSound(), _KnobIsItsSound(), key, key, 0.1, {}, 20)


def test_delta_control_nudges_knobs_and_clips_at_the_ends():
    env = make("ddsp_gym/SineTuner-v1", control="delta", max_delta=0.1, random_start=False)
    obs, _ = env.reset(seed=0)
    assert obs[0] == pytest.approx(0.5)
    obs, *_ = env.step(np.array([1.0], np.float32))
    assert obs[0] == pytest.approx(0.6)
    obs, *_ = env.step(np.array([-0.5], np.float32))
    assert obs[0] == pytest.approx(0.55)
    for _ in range(10):
        obs, *_ = env.step(np.array([1.0], np.float32))
    assert obs[0] == pytest.approx(1.0)


def test_delta_control_gradient_through_the_nudge():
    env = make("ddsp_gym/CutoffSweeper-v1", control="delta", expose_grad=True).unwrapped
    env.reset(seed=2)
    action = np.array([0.3], np.float32)
    _, grad = env.reward_and_grad(action)
    # h = 1e-2 in action space is a 1e-3 move of the knob (max_delta = 0.1).
    fd = _central_difference(env, action.astype(np.float64), 1e-2)
    np.testing.assert_allclose(grad, fd, rtol=1e-2, atol=1e-4)


def test_reward_and_grad_does_not_step():
    env = make("ddsp_gym/VolumeMatch-v1").unwrapped
    env.reset(seed=0)
    before = env.state
    reward, grad = env.reward_and_grad(np.array([0.2], np.float32))
    assert env.state is before and int(env.state.step_count) == 0
    assert np.isfinite(reward) and grad.shape == (1,)


def test_slew_penalty_charges_knob_moves():
    env = make("ddsp_gym/VolumeMatch-v1", slew_penalty=1.0, random_start=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0], np.float32))  # knob 0.5 -> 1.0
    assert info["penalty"] == pytest.approx(0.25, rel=1e-5)


def test_render_rgb_array_draws_current_and_target():
    env = make("ddsp_gym/CutoffSweeper-v1", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 10  # a picture, not a blank canvas


def test_step_before_reset_is_a_clear_error():
    with pytest.raises(RuntimeError, match="reset"):
        make("ddsp_gym/SineTuner-v1").unwrapped.step(np.zeros(1, np.float32))


def test_wrong_action_shape_is_a_clear_error():
    env = make("ddsp_gym/EnvelopeShaper-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\); this env expects \(4,\)"):
        env.step(np.zeros(2, np.float32))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(backend="cloud"), ValueError, "unknown backend 'cloud'"),
        # Without a plugin and knob map (or without DawDreamer) the plugin backend says so.
        (dict(backend="plugin"), (ValueError, ImportError), r"knob_map|ddsp_gym\[plugin\]"),
        (dict(control="sideways"), ValueError, "control must be one of"),
        (dict(render_mode="ascii"), ValueError, "render_mode must be one of"),
        (dict(max_delta=0.0), ValueError, "max_delta"),
    ],
)
def test_bad_env_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        make("ddsp_gym/SineTuner-v1", **kwargs)


def test_functional_reset_and_step_are_pure():
    base = make("ddsp_gym/EnvelopeShaper-v1").unwrapped
    fenv, params = base.functional, base.params
    key = jax.random.PRNGKey(0)
    obs_a, state_a = jax.jit(fenv.reset)(key, params)
    obs_b, state_b = fenv.reset(key, params)
    np.testing.assert_allclose(obs_a, obs_b, rtol=1e-3, atol=1e-4)  # jit may fuse float ops
    action = jnp.array([0.1, -0.2, 0.3, -0.4])
    out_1 = fenv.step(key, state_a, action, params)
    out_2 = fenv.step(key, state_a, action, params)
    for x, y in zip(jax.tree.leaves(out_1), jax.tree.leaves(out_2), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("expose_grad", [False, True])
def test_a_step_changes_only_the_fields_the_wrapper_carries_over(expose_grad):
    """DDSPEnv's jitted step returns only StepChange's fields and keeps the rest of the
    state; this holds while the functional step changes nothing else."""
    from ddsp_gym.envs.compile import StepChange

    env = make("ddsp_gym/CutoffSweeper-v1", expose_grad=expose_grad)
    env.reset(seed=3)
    base = env.unwrapped
    fenv, params = base.functional, base.params
    step = fenv.transition_with_grad if expose_grad else fenv.transition
    for action in (np.array([0.4], np.float32), np.array([-0.7], np.float32)):
        before = base.state
        expected = step(before, jnp.asarray(action), params)[0]
        env.step(action)
        after = base.state
        unchanged = set(before._fields) - set(StepChange._fields)
        for name in before._fields:
            for x, y in zip(
                jax.tree.leaves(getattr(after, name)),
                jax.tree.leaves(getattr(expected, name)),
                strict=True,
            ):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
        for name in unchanged:  # the functional step leaves them alone: the same arrays
            for x, y in zip(
                jax.tree.leaves(getattr(expected, name)),
                jax.tree.leaves(getattr(before, name)),
                strict=True,
            ):
                assert x is y, f"fenv.transition changed {name}; add it to StepChange"
    assert int(base.state.step_count) == 2
