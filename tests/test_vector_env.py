"""The native vector env equals N single envs; the rollout equals stepping; no recompiles."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import ddsp_gym
from ddsp_gym import batching
from ddsp_gym.bench.compiles import count_compilations
from ddsp_gym.envs import compile, vector_env
from ddsp_gym.envs.rollout import init_rollout, rollout
from ddsp_gym.envs.vector_env import VectorDDSPEnv, reset_where, vec_reset, vec_step
from tests.conftest import TARGET_ENV_IDS, TASK_REWARD_IDS, V0_KWARGS


# Vector and single envs are compared in the v0 settings: the registry's log-difference
# observation magnifies float32 rounding in near-equal summaries (below 1e-3) by up to
# ~600x, which is what it is for. test_the_rl_defaults_vectorize_too checks the defaults.
def make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **{**V0_KWARGS, **kwargs})


def make_vec(env_id: str, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, **{**V0_KWARGS, **kwargs})


SINE = "ddsp_gym/SineTuner-v1"
# float32: vmapped, batched and eager FFTs round differently. Observations hold
# levels of near-silent mel bands in dB, the most sensitive numbers, hence OBS_TOL.
TOL = dict(rtol=1e-4, atol=1e-4)
OBS_TOL = dict(rtol=1e-3, atol=1e-3)


def _solving_actions(venv: VectorDDSPEnv, rng: np.random.Generator, solve: np.ndarray):
    """Random actions, except envs in ``solve`` play their target (absolute control)."""
    actions = rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32)
    target = np.asarray(venv.state.target_knobs)
    actions[solve] = 2.0 * target[solve] - 1.0
    return actions


def _assert_step_equal(native, sync):
    names = ("obs", "reward", "terminated", "truncated")
    for name, a, b in zip(names, native, sync, strict=False):
        if a.dtype == bool:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, **(OBS_TOL if name == "obs" else TOL), err_msg=name)


def test_make_vec_builds_the_native_env_for_every_id():
    for env_id in TARGET_ENV_IDS:
        assert gym.spec(env_id).vector_entry_point is not None
    venv = make_vec(SINE, num_envs=5)  # the vector entry point is the default
    assert isinstance(venv, VectorDDSPEnv)
    single = make(SINE)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.observation_space.shape == (5, single.observation_space.shape[0])
    assert venv.max_episode_steps == gym.spec(SINE).max_episode_steps
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP


@pytest.mark.parametrize("env_id", TASK_REWARD_IDS)
def test_equals_sync_vector_env_of_single_envs(env_id):
    """Same seeds -> same obs, rewards, terminations and next-step autoresets."""
    n, horizon = 3, 3
    native = make_vec(env_id, num_envs=n, max_episode_steps=horizon)
    sync = make_vec(env_id, num_envs=n, vectorization_mode="sync", max_episode_steps=horizon)
    obs_n, info_n = native.reset(seed=7)
    obs_s, info_s = sync.reset(seed=7)
    np.testing.assert_allclose(obs_n, obs_s, **OBS_TOL)
    for name in make(env_id).unwrapped.plant.knob_names:
        np.testing.assert_allclose(info_n["knobs"][name], info_s["knobs"][name], **TOL)
    rng = np.random.default_rng(0)
    for _ in range(2 * horizon + 2):  # two truncations and their resets
        actions = rng.uniform(-1, 1, native.action_space.shape).astype(np.float32)
        out_n = native.step(actions)
        out_s = sync.step(actions)
        _assert_step_equal(out_n, out_s)
        stepped = out_n[4]["_distance"]
        np.testing.assert_array_equal(stepped, out_s[4].get("_distance", np.zeros(n, bool)))
        if stepped.any():
            np.testing.assert_allclose(
                out_n[4]["distance"][stepped], out_s[4]["distance"][stepped], **TOL
            )


def test_terminations_and_next_step_autoreset_match_single_envs():
    n = 4
    native = make_vec(SINE, num_envs=n, max_episode_steps=5)
    sync = make_vec(SINE, num_envs=n, vectorization_mode="sync", max_episode_steps=5)
    native.reset(seed=3)
    sync.reset(seed=3)
    rng = np.random.default_rng(1)
    terminated_seen = 0
    for t in range(12):
        solve = np.array([t % 3 == 1, False, t % 4 == 2, t == 6])
        actions = _solving_actions(native, rng, solve)
        out_n = native.step(actions)
        out_s = sync.step(actions)
        _assert_step_equal(out_n, out_s)
        terminated_seen += int(out_n[2].sum())
    assert terminated_seen >= 3


def test_same_step_autoreset_matches_single_envs():
    n, horizon = 3, 4
    venv = make_vec(
        SINE, num_envs=n, max_episode_steps=horizon, autoreset_mode=AutoresetMode.SAME_STEP
    )
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    singles = [make(SINE, max_episode_steps=horizon) for _ in range(n)]
    obs, _ = venv.reset(seed=11)
    for i, env in enumerate(singles):
        np.testing.assert_allclose(obs[i], env.reset(seed=11 + i)[0], **OBS_TOL)
    rng = np.random.default_rng(2)
    resets = 0
    for t in range(2 * horizon + 1):
        solve = np.array([t == 1, False, t % 2 == 0])
        actions = _solving_actions(venv, rng, solve)
        obs, reward, terminated, truncated, info = venv.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(actions[i])
            np.testing.assert_allclose(reward[i], r, **TOL)
            assert (terminated[i], truncated[i]) == (te, tr)
            if te or tr:
                resets += 1
                assert info["_final_obs"][i] and not info["_distance"][i]
                np.testing.assert_allclose(info["final_obs"][i], o, **OBS_TOL)
                np.testing.assert_allclose(
                    info["final_info"]["distance"][i], inf["distance"], rtol=1e-3
                )
                o, _ = env.reset()  # the chain goes on: the next episode's target
            np.testing.assert_allclose(obs[i], o, **OBS_TOL)
    assert resets >= 4


def test_seeding_lists_none_and_reset_mask():
    venv = make_vec(SINE, num_envs=3)
    first, _ = venv.reset(seed=[5, 6, 7])
    again, _ = venv.reset(seed=5)
    np.testing.assert_array_equal(first, again)
    single = make(SINE)
    np.testing.assert_allclose(first[2], single.reset(seed=7)[0], **OBS_TOL)
    # seed=None continues every env's chain, like a single env's reset().
    following, _ = venv.reset()
    np.testing.assert_allclose(following[2], single.reset()[0], **OBS_TOL)
    assert not np.allclose(following, first)
    # A reset mask resets only the chosen envs.
    venv.reset(seed=5)
    before = np.asarray(venv.state.target_knobs)
    obs, info = venv.reset(options={"reset_mask": np.array([False, True, False])})
    after = np.asarray(venv.state.target_knobs)
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert not np.allclose(after[1], before[1])
    np.testing.assert_array_equal(info["_knobs"], [False, True, False])
    single.reset(seed=6)
    np.testing.assert_allclose(obs[1], single.reset()[0], **OBS_TOL)  # its second episode


def test_expose_grad_matches_single_envs():
    venv = make_vec("ddsp_gym/CutoffSweeper-v1", num_envs=3, expose_grad=True)
    singles = [make("ddsp_gym/CutoffSweeper-v1", expose_grad=True) for _ in range(3)]
    venv.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    actions = np.random.default_rng(0).uniform(-0.9, 0.9, venv.action_space.shape)
    actions = actions.astype(np.float32)
    _, _, _, _, info = venv.step(actions)
    assert info["reward_grad"].shape == (3, 1)
    for i, env in enumerate(singles):
        grad = env.step(actions[i])[4]["reward_grad"]
        np.testing.assert_allclose(info["reward_grad"][i], grad, rtol=1e-3, atol=1e-6)


def test_bad_actions_raise():
    venv = make_vec(SINE, num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        venv.step(np.array([[0.0], [np.nan]], np.float32))
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 1), np.float32))


def test_no_recompilation_across_resets_and_episodes():
    venv = make_vec(SINE, num_envs=4, max_episode_steps=3)
    # Both of XLA's CPU schedules (VolumeMatch's registry entry names "memory").
    singles = [make(i, max_episode_steps=3) for i in (SINE, "ddsp_gym/VolumeMatch-v1")]
    actions = np.zeros(venv.action_space.shape, np.float32)

    def play(seed):
        venv.reset(seed=seed)
        for single in singles:
            single.reset(seed=seed)
        for _ in range(7):  # crosses two truncations and autoresets
            venv.step(actions)
            for single in singles:
                _, _, te, tr, _ = single.step(actions[0])
                if te or tr:
                    single.reset()
        venv.reset(options={"reset_mask": np.array([True, False, True, False])})

    play(0)  # warm-up: compiles once
    with count_compilations() as seen:
        for seed in (1, 2, 3):
            play(seed)
    assert seen.count == 0


def test_a_mid_travel_start_compiles_the_step_once():
    """``random_start=False`` starts at float32 knobs, as a step leaves them: a weak-typed
    start made the second step a second compilation (SoundDesigner-v1's default)."""
    venv = make_vec(SINE, num_envs=2, max_episode_steps=5, random_start=False)
    single = make(SINE, max_episode_steps=5, random_start=False)
    actions = np.zeros(venv.action_space.shape, np.float32)
    venv.reset(seed=0)
    single.reset(seed=0)
    np.testing.assert_array_equal(single.unwrapped.state.knobs, [0.5])
    venv.step(actions)
    single.step(actions[0])  # the first step compiles
    with count_compilations() as seen:
        venv.step(actions)
        single.step(actions[0])
    assert seen.count == 0


def _random_policy(obs, key):
    return jax.random.uniform(key, (obs.shape[0], 1), minval=-1.0, maxval=1.0)


def test_rollout_is_jittable_and_equals_stepping():
    n, steps, horizon = 3, 7, 3
    fenv, params = ddsp_gym.make_functional(SINE, max_episode_steps=horizon)
    key = jax.random.PRNGKey(4)
    run = jax.jit(
        partial(
            rollout,
            fenv,
            params,
            _random_policy,
            num_envs=n,
            num_steps=steps,
        )
    )
    final, traj = run(key)
    assert traj.obs.shape == (steps, n, fenv.obs_size)
    assert traj.truncated.sum() == n * (steps // horizon)
    # Replay the rollout's actions through the same pure step, one jitted call at a time.
    start = jax.jit(partial(init_rollout, fenv, params, num_envs=n))(key)
    step = jax.jit(
        partial(
            vec_step,
            fenv,
            params=params,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
    )
    carry, obs = start.carry, start.obs
    for t in range(steps):
        np.testing.assert_allclose(traj.obs[t], obs, **OBS_TOL)
        carry, out = step(carry, traj.action[t])
        np.testing.assert_allclose(traj.reward[t], out.reward, **TOL)
        np.testing.assert_allclose(traj.next_obs[t], out.final_obs, **OBS_TOL)
        np.testing.assert_array_equal(traj.truncated[t], out.truncated)
        obs = out.obs
    np.testing.assert_allclose(final.obs, obs, **OBS_TOL)
    # It also vmaps over keys (independent batches of envs).
    keys = jax.random.split(key, 2)
    batched = jax.vmap(run)(keys)[1]
    assert batched.reward.shape == (2, steps, n)
    np.testing.assert_allclose(batched.reward[1], run(keys[1])[1].reward, **TOL)


@pytest.mark.parametrize("resetting", [(), (5,), (0, 15), tuple(range(0, 16, 2))])
def test_reset_where_resets_exactly_the_masked_envs(resetting):
    """None, one or two (one env at a time) or half (one batch) of 16 envs reset."""
    env = make(SINE).unwrapped
    fenv, params = env.functional, env.params
    chain = jax.vmap(jax.random.PRNGKey)(np.arange(16))
    carry, obs = vec_reset(fenv, chain, params)[:2]
    mask = np.isin(np.arange(16), resetting)
    new_chain, new_state, new_obs = jax.jit(partial(reset_where, fenv))(
        mask, carry.chain, carry.state, obs, params
    )
    single_reset = jax.jit(fenv.reset_from_chain)
    for i in range(16):
        if mask[i]:
            want = single_reset(carry.chain[i], params)
        else:
            want = (carry.chain[i], jax.tree.map(lambda leaf, i=i: leaf[i], carry.state), obs[i])
        got = (new_chain[i], jax.tree.map(lambda leaf, i=i: leaf[i], new_state), new_obs[i])
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g, w, **OBS_TOL)


# Chunking is the vector env's own code, the same for every id; these ids cover the
# paths under it: a hidden target, an effect's input signal, the goal tasks' reset search
# (a while loop under the chunk's vmap), a target given as a sound. Every id's vector env
# is checked unchunked by test_equals_sync_vector_env_of_single_envs.
CHUNKED_IDS = [
    SINE,
    "ddsp_gym/DelayTime-v1",
    "ddsp_gym/BrightnessStability-v1",
    "ddsp_gym/ResonanceSweetSpot-v1",
    "ddsp_gym/SpokenTimbre-v1",
]


@pytest.mark.parametrize("env_id", CHUNKED_IDS)
def test_chunked_stepping_equals_single_envs(monkeypatch, env_id):
    """Envs stepped and reset in chunks (2, 2 and a remainder of 1) as on a CPU with many
    envs; the goal task's reset searches its candidate settings under each chunk's vmap
    (a while loop that runs until every env of the chunk has its reference)."""
    monkeypatch.setattr(batching, "CPU_CHUNK", 2)
    _clear_compiled()  # trace anew with the small chunk ...
    try:
        n, horizon = 5, 2
        native = make_vec(env_id, num_envs=n, max_episode_steps=horizon)
        sync = make_vec(env_id, num_envs=n, vectorization_mode="sync", max_episode_steps=horizon)
        np.testing.assert_allclose(native.reset(seed=3)[0], sync.reset(seed=3)[0], **OBS_TOL)
        rng = np.random.default_rng(1)
        for _ in range(2 * horizon + 1):
            actions = rng.uniform(-1, 1, native.action_space.shape).astype(np.float32)
            _assert_step_equal(native.step(actions), sync.step(actions))
    finally:
        _clear_compiled()  # ... and leave no chunk-2 functions to other tests


def _clear_compiled() -> None:
    vector_env._vec_fns.cache_clear()
    compile.compiled.cache_clear()


@pytest.mark.parametrize("env_id", [SINE, "ddsp_gym/CutoffSweeper-v1"])
def test_the_rl_defaults_vectorize_too(env_id):
    """The registry's defaults (log_delta moves, log-difference observation, log reward):
    the native vector env equals single envs where the summaries are well-conditioned."""
    n = 3
    native = gym.make_vec(env_id, num_envs=n, max_episode_steps=4)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", max_episode_steps=4)
    np.testing.assert_allclose(native.reset(seed=2)[0], sync.reset(seed=2)[0], **OBS_TOL)
    rng = np.random.default_rng(3)
    for _ in range(6):
        actions = rng.uniform(-1, 1, native.action_space.shape).astype(np.float32)
        _assert_step_equal(native.step(actions), sync.step(actions))
