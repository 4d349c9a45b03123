"""Streaming envs: block-edge continuity, carried state, per-block gradients, rewards."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.bench.compiles import count_compilations
from ddsp_gym.streaming import STREAM_PLANTS, knob_ramp, render_stream
from ddsp_gym.streaming.functional import make_stream_params
from tests.conftest import STREAMING_ENV_IDS, make

N_BLOCKS = 8


def _knob_points(d: int, seed: int) -> jnp.ndarray:
    """N_BLOCKS + 1 random knob positions: every block ramps a long way."""
    return jax.random.uniform(jax.random.PRNGKey(seed), (N_BLOCKS + 1, d))


def _plant_input(plant, n: int) -> jnp.ndarray | None:
    if not plant.needs_input:
        return None
    t = np.arange(n) / plant.sample_rate
    # Notes every 0.15 s with a fast decay: onsets inside blocks and across edges.
    env = np.exp(-(t % 0.15) * 30.0)
    return jnp.asarray(0.5 * env * np.sign(np.sin(2 * np.pi * 110.0 * t)), jnp.float32)


@pytest.mark.parametrize("name", sorted(STREAM_PLANTS))
def test_blocks_streamed_equal_one_long_render_of_the_same_ramps(name):
    plant = STREAM_PLANTS[name]()
    n = plant.block_size
    points = _knob_points(plant.num_knobs, 0)
    audio_in = _plant_input(plant, N_BLOCKS * n)
    key = jax.random.PRNGKey(1)
    streamed, end_state = jax.jit(lambda p, x: render_stream(plant, plant.init_state(), p, key, x))(
        points, audio_in
    )
    ramps = jnp.concatenate([knob_ramp(points[b], points[b + 1], n) for b in range(N_BLOCKS)])
    long, long_state = jax.jit(lambda r, x: plant.render_samples(plant.init_state(), r, key, x))(
        ramps, audio_in
    )
    streamed, long = np.asarray(streamed), np.asarray(long)
    assert np.abs(streamed).max() > 0.01  # a sound, not silence
    np.testing.assert_allclose(streamed, long, atol=2e-4 * np.abs(long).max())
    for a, b in zip(jax.tree.leaves(end_state), jax.tree.leaves(long_state), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # No click at block edges: the largest sample-to-sample step across an edge is no
    # larger than the largest inside the blocks.
    jumps = np.abs(np.diff(streamed))
    edges = np.arange(n - 1, N_BLOCKS * n - 1, n)
    assert jumps[edges].max() <= jumps.max() and jumps[edges].max() < 0.2


def test_knob_ramp_reaches_the_new_position_on_the_last_sample():
    ramp = np.asarray(knob_ramp(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]), 4))
    np.testing.assert_allclose(ramp, [[0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1.0, 0.0]])


def test_the_drone_carries_its_state_across_blocks():
    plant = STREAM_PLANTS["drone"]()
    knobs = jnp.full((plant.num_knobs,), 0.5)
    key = jax.random.PRNGKey(0)
    first, state = plant.render_block(plant.init_state(), knobs, knobs, key)
    second, _ = plant.render_block(state, knobs, knobs, key)
    fresh, _ = plant.render_block(plant.init_state(), knobs, knobs, key)
    # Continuing is not starting over: the phases and the filter memory moved on ...
    assert not np.allclose(second, fresh, atol=1e-3)
    np.testing.assert_array_equal(first, fresh)  # ... and a render is a pure function
    # ... and the step from block one into block two is as smooth as inside a block.
    joined = np.concatenate([first, second])
    assert (
        abs(joined[plant.block_size] - joined[plant.block_size - 1]) <= np.abs(np.diff(first)).max()
    )


@pytest.mark.parametrize("env_id", STREAMING_ENV_IDS)
def test_same_seed_same_stream_other_seed_other_stream(env_id):
    actions = np.random.default_rng(1).uniform(-1, 1, (6, *make(env_id).action_space.shape))
    runs = []
    for _ in range(2):
        env = make(env_id)
        obs, _ = env.reset(seed=5)
        out = [env.step(a.astype(np.float32)) for a in actions]
        runs.append((obs, [o[1] for o in out], env.unwrapped.current_audio()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    other = make(env_id)
    other.reset(seed=6)
    for a in actions:
        other.step(a.astype(np.float32))
    assert not np.allclose(other.unwrapped.current_audio(), runs[0][2])


@pytest.mark.parametrize("env_id", STREAMING_ENV_IDS)
def test_reward_terms_sum_to_the_reward_and_slew_charges_moves(env_id):
    env = make(env_id, random_start=False)
    env.reset(seed=0)
    d = env.action_space.shape[0]
    _, reward, terminated, truncated, info = env.step(np.ones(d, np.float32))
    terms = [k for k in info if k not in ("peak", "loudness_db", "knobs", "xruns")]
    assert sum(info[k] for k in terms) == pytest.approx(reward, rel=1e-5, abs=1e-5)
    params = env.unwrapped.params
    moved = d * float(params.max_delta) ** 2  # every knob moved by max_delta
    assert info["slew"] == pytest.approx(-float(params.slew_penalty) * moved, rel=1e-5)
    assert not terminated and not truncated and info["xruns"] == 0
    assert set(info["knobs"]) == set(env.unwrapped.plant.knob_names)


def test_a_mid_travel_start_compiles_the_step_once():
    """The start knobs are float32, as a step leaves them: a weak-typed start made the
    second step a second compilation."""
    env = make("ddsp_gym/Drone-v0", control="absolute", random_start=False)
    env.reset(seed=0)
    hold = np.zeros(env.action_space.shape, np.float32)
    env.step(hold)  # compiles
    with count_compilations() as seen:
        env.step(hold)
    assert seen.count == 0


def test_a_held_drone_grows_stale_and_moving_knobs_sound_new():
    env = make("ddsp_gym/Drone-v0", control="absolute", random_start=False)
    env.reset(seed=0)
    # Detune 0: no beating between the saws, so a held drone's blocks all sound alike.
    hold = np.array([0.0, -1.0, 0.0, -0.5, 0.0], np.float32)
    held = [env.step(hold)[4]["novelty"] for _ in range(24)]
    # Once the archive has heard the held drone, nothing is novel any more (the soft
    # minimum sits a little below zero, at most t log A = 0.04 times the weight).
    assert max(held[-8:]) < 0.1 < held[0]
    rng = np.random.default_rng(0)
    moving = [env.step(rng.uniform(-1, 1, 5).astype(np.float32))[4]["novelty"] for _ in range(8)]
    assert min(moving) > 0.1 and np.mean(moving) > 1.0


def test_a_screaming_filter_and_clipping_are_charged():
    env = make("ddsp_gym/Drone-v0", control="absolute", random_start=False)
    env.reset(seed=0)
    # Pitch low, cutoff and resonance at the top, level at the top: risky and loud.
    info = env.step(np.array([-1.0, 0.0, 1.0, 1.0, 1.0], np.float32))[4]
    assert info["control_risk"] < 0.0
    env = make("ddsp_gym/Drone-v0", control="absolute", random_start=False, clip_penalty=1.0)
    env.reset(seed=0)
    loud = [env.step(np.array([-0.6, 0.0, -0.2, 1.0, 1.0], np.float32))[4] for _ in range(3)]
    quiet = env.step(np.array([-0.6, 0.0, -0.2, -1.0, -1.0], np.float32))[4]
    assert loud[-1]["peak"] > quiet["peak"] and quiet["clipping"] == 0.0


@pytest.mark.slow  # compiles the vmapped auto-resetting step (tests/test_envs.py: step_env)
def test_vmapped_streams_over_keys_equal_single_streams():
    env = make("ddsp_gym/Drone-v0").unwrapped
    fenv, params = env.functional, env.params
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (4, 5), minval=-1, maxval=1)
    _, states = jax.vmap(fenv.reset, in_axes=(0, None))(keys, params)
    out = jax.jit(jax.vmap(fenv.step, in_axes=(0, 0, 0, None)))(keys, states, actions, params)
    for i in range(4):
        state_i = jax.tree.map(lambda leaf, i=i: leaf[i], states)
        single = jax.jit(fenv.step)(keys[i], state_i, actions[i], params)
        np.testing.assert_allclose(out[2][i], single[2], rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:.*render_mode='human'")  # Gymnasium's, before ours
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(loudness="loud"), TypeError, "unknown keyword argument"),
        (dict(control="sideways"), ValueError, "control must be one of"),
        (dict(render_mode="human"), ValueError, "render_mode must be None"),
        (dict(max_delta=0.0), ValueError, "max_delta"),
        (dict(novelty_weight=float("nan")), ValueError, "novelty_weight must be finite"),
        (dict(input=np.zeros(100)), ValueError, "instrument"),
        (dict(plant="theremin"), ValueError, "unknown streaming plant"),
    ],
)
def test_bad_streaming_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        gym.make("ddsp_gym/Drone-v0", disable_env_checker=True, **kwargs)


def test_make_stream_params_refuses_unknown_names():
    with pytest.raises(TypeError, match="unknown stream params"):
        make_stream_params(volume=1.0)


def test_the_jam_partner_estimates_the_tempo_from_the_ticks():
    env = make("ddsp_gym/JamPartner-v0")
    env.reset(seed=2)
    for _ in range(40):
        obs, *_ = env.step(np.zeros(8, np.float32))
    tempo = float(env.unwrapped.state.task.clock.tempo_bpm)
    assert obs[-3] * 200.0 == pytest.approx(tempo, rel=0.02)
    assert obs[-2] ** 2 + obs[-1] ** 2 == pytest.approx(1.0, abs=1e-4)  # a phase on the circle


def test_onsets_on_the_beat_score_and_onsets_off_it_cost():
    from ddsp_gym.streaming.performance import TICKS_PER_BEAT, tick_times
    from ddsp_gym.streaming.tasks import BlockContext, JamPartner

    task, plant = JamPartner(), STREAM_PLANTS["pulse_voice"]()
    n, sr = plant.block_size, plant.sample_rate
    state = task.init(jax.random.PRNGKey(0), plant, jnp.zeros(28))
    params = make_stream_params(latency_s=0.02)
    beats = np.asarray(tick_times(state.clock, jnp.arange(4, 200) * TICKS_PER_BEAT))
    heard = beats - 0.02  # rendered then, heard 20 ms later: on the beat
    into_block = heard % (n / sr)
    # A beat whose sound starts 8-20 ms into a block: one 40 ms later is in the block too.
    heard_at = float(heard[(into_block > 0.008) & (into_block < 0.02)][0])
    block = int(heard_at * sr) // n
    t0 = block * n / sr

    def burst_at(t: float) -> jnp.ndarray:
        s = np.arange(n) / sr + t0 - t
        return jnp.asarray(np.where(s >= 0, np.exp(-s * 80.0), 0.0) * np.sin(2 * np.pi * 220 * s))

    def alignment(audio):
        ctx = BlockContext(audio, jnp.zeros(28), jnp.asarray(block), None, sr)
        return float(task.score(state, ctx, params)[0]["beat_alignment"])

    on = alignment(burst_at(heard_at))
    off = alignment(burst_at(heard_at + 0.04))
    assert on > 0.5 and off < on - 0.5, (on, off)


def test_the_performer_loops_a_recorded_input():
    recording = np.sin(2 * np.pi * 3.0 * np.arange(3000) / 16_000).astype(np.float32)
    env = make("ddsp_gym/PerformerAssistant-v0", input=recording).unwrapped
    env.reset(seed=0)
    fenv, state = env.functional, env.state
    got = np.asarray(fenv.task.input_block(state.task, jnp.asarray(5), env.params, fenv.plant))
    n = fenv.plant.block_size
    np.testing.assert_array_equal(got, recording[(5 * n + np.arange(n)) % 3000])


def test_echoes_fill_a_sparse_input_and_raise_its_density():
    from ddsp_gym.streaming.rewards import temporal_density

    plant = STREAM_PLANTS["filter_delay"]()
    n = plant.block_size
    t = np.arange(12 * n) / plant.sample_rate
    # Short stabs every 0.3 s: most blocks hold a stab's first few ms, or nothing.
    stabs = jnp.asarray(np.exp(-(t % 0.3) * 100.0) * np.sin(2 * np.pi * 220 * t), jnp.float32)
    # drive 0, cutoff open, resonance low, delay shortest, feedback and mix as given.
    dry = jnp.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    wet = jnp.array([0.0, 1.0, 0.0, 0.0, 0.8, 0.6])
    ramp = lambda k: jnp.tile(k, (12 * n, 1))  # noqa: E731
    key = jax.random.PRNGKey(0)
    out_dry = plant.render_samples(plant.init_state(), ramp(dry), key, stabs)[0]
    out_wet = plant.render_samples(plant.init_state(), ramp(wet), key, stabs)[0]

    def density(audio) -> float:  # over the blocks after the delay line has filled
        return float(np.mean([temporal_density(audio[b * n : (b + 1) * n]) for b in range(4, 12)]))

    assert density(out_wet) > density(out_dry) + 0.1, (density(out_wet), density(out_dry))


def test_make_vec_of_a_streaming_id_is_gymnasiums_sync_vector_env():
    venv = gym.make_vec("ddsp_gym/Drone-v0", num_envs=2)
    assert isinstance(venv, gym.vector.SyncVectorEnv)
    obs, _ = venv.reset(seed=0)
    single = make("ddsp_gym/Drone-v0")
    np.testing.assert_array_equal(obs[1], single.reset(seed=1)[0])


def test_make_functional_gives_a_streams_pure_pair():
    import ddsp_gym
    from ddsp_gym.streaming.functional import StreamingEnv

    fenv, params = ddsp_gym.make_functional("ddsp_gym/Drone-v0", max_episode_steps=2)
    assert isinstance(fenv, StreamingEnv) and int(params.max_steps_in_episode) == 2
    key = jax.random.PRNGKey(0)
    obs, state = fenv.reset(key, params)
    step = jax.jit(fenv.step)
    for t in range(2):
        obs, state, reward, done, _ = step(key, state, jnp.zeros(5), params)
        assert bool(done) == (t == 1)
    assert int(state.step_count) == 0  # auto-reset: a new stream began


def test_the_sb3_stream_vec_env_truncates_at_the_horizon_and_evaluates():
    from ddsp_gym.agents.stream_bench import StreamVecEnv, evaluate, random_walk
    from ddsp_gym.streaming.gym_env import make_streaming_functional

    fenv, params = make_streaming_functional("ddsp_gym/Drone-v0", max_episode_steps=3)
    venv = StreamVecEnv(fenv, params, 4, seed=0)
    assert venv.reset().shape == (4, fenv.obs_size)
    for t in range(3):
        obs, reward, done, infos = venv.step(np.zeros((4, 5), np.float32))
        assert obs.shape == (4, fenv.obs_size) and np.all(np.isfinite(reward))
        assert done.all() == (t == 2)
    assert infos[0]["episode"]["l"] == 3 and infos[0]["TimeLimit.truncated"]
    means = evaluate(fenv, params, random_walk(5), seed=0, streams=2, blocks=3)
    assert set(means) >= {"reward", "novelty", "stability", "clipped_block_share"}
    assert all(np.isfinite(v) for v in means.values())
    parts = means["novelty"] + means["stability"] + means["slew"]
    assert means["reward"] == pytest.approx(parts, abs=1e-5)  # the terms sum to the reward
