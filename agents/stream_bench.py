"""PPO against a random-walk knob agent on a streaming env (results/drone_ppo.{json,md}).

The comparison the streaming issue asks for: does a learned drone agent beat a random
walk on its diversity reward at equal stability? Per seed, SB3 PPO (the registry's
``agents/hyperparams/ppo.yml`` entry, with the run's step budget) trains on N streams
stepped in one vmapped, jitted call (:class:`StreamVecEnv`); then the trained policy (as
trained, sampling its actions, and by its mean action) and the random walk (uniform
actions under delta control: each knob takes a random step of up to ``max_delta`` per
block) play the same evaluation streams.
Reported per agent: mean reward per block, its novelty term and the stability terms
(clipping, control risk, loudness drift), and the share of blocks that clip.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from ddsp_gym.streaming.functional import StreamingEnv, StreamParams
from ddsp_gym.streaming.gym_env import make_streaming_functional

EVAL_SEED_OFFSET = 10_000  # evaluation streams' keys: never trained on
# "ppo": the trained policy as it was trained (actions sampled from its Gaussian: for a
# novelty reward the spread is part of the strategy); "ppo_mean": its mean action.
AGENTS = ("ppo", "ppo_mean", "random_walk")
STABILITY_TERMS = ("clipping", "control_risk", "loudness_drift")


@functools.lru_cache(maxsize=8)
def _vector_fns(fenv: StreamingEnv) -> tuple[Callable, Callable, Callable]:
    """Jitted, vmapped reset, auto-resetting step and bare step of one functional env,
    compiled once per process (seeds and evaluations reuse them)."""
    return (
        jax.jit(jax.vmap(fenv.reset, in_axes=(0, None))),
        jax.jit(jax.vmap(fenv.step, in_axes=(0, 0, 0, None))),
        jax.jit(jax.vmap(fenv.step_env, in_axes=(0, 0, 0, None))),
    )


class StreamVecEnv(VecEnv):
    """SB3 VecEnv of N streams of one functional env, stepped by one jitted vmapped call
    (with gymnax auto-reset at the params' horizon)."""

    def __init__(self, fenv: StreamingEnv, params: StreamParams, num_envs: int, seed: int):
        obs_space = gym.spaces.Box(-5.0, 5.0, (fenv.obs_size,), np.float32)
        act_space = gym.spaces.Box(-1.0, 1.0, (fenv.num_actions,), np.float32)
        self.render_mode = None  # SB3's VecEnv asks its envs for it while initializing
        super().__init__(num_envs, obs_space, act_space)
        self.fenv, self.params = fenv, params
        self._key = jax.random.PRNGKey(seed)
        self._reset, self._step, _ = _vector_fns(fenv)
        self._state = None
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, int)

    def _keys(self) -> jax.Array:
        self._key, sub = jax.random.split(self._key)
        return jax.random.split(sub, self.num_envs)

    def reset(self) -> np.ndarray:
        obs, self._state = self._reset(self._keys(), self.params)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return np.asarray(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.float32)

    def step_wait(self):
        obs, self._state, reward, done, info = self._step(
            self._keys(), self._state, jnp.asarray(self._actions), self.params
        )
        obs, reward, done = np.asarray(obs), np.asarray(reward), np.asarray(done)
        self._returns += reward
        self._lengths += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            # The auto-reset already started the next stream: the last obs of the ended
            # one is not kept, and a truncation's bootstrap uses the new stream's value
            # (a small bias over 200-block streams with gamma 0.95).
            infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i])}
            infos[i]["TimeLimit.truncated"] = True
            self._returns[i], self._lengths[i] = 0.0, 0
        return obs, reward, done, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        raise NotImplementedError("StreamVecEnv has no per-env methods")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def evaluate(
    fenv: StreamingEnv, params: StreamParams, policy: Policy, seed: int, streams: int, blocks: int
) -> dict[str, float]:
    """Play ``streams`` evaluation streams of ``blocks`` blocks; mean terms per block."""
    keys = jax.random.split(jax.random.PRNGKey(EVAL_SEED_OFFSET + seed), streams)
    reset, _, step = _vector_fns(fenv)
    obs, state = reset(keys, params)
    rng = np.random.default_rng(seed)
    sums: dict[str, float] = {}
    clipped = 0
    for _ in range(blocks):
        actions = jnp.asarray(policy(np.asarray(obs), rng), jnp.float32)
        obs, state, reward, _, info = step(keys, state, actions, params)
        sums["reward"] = sums.get("reward", 0.0) + float(jnp.sum(reward))
        for name in ("novelty", *STABILITY_TERMS, "slew"):
            sums[name] = sums.get(name, 0.0) + float(jnp.sum(info[name]))
        clipped += int(jnp.sum(info["peak"] > 1.0))
    means = {k: v / (streams * blocks) for k, v in sums.items()}
    means["stability"] = sum(means[k] for k in STABILITY_TERMS)
    means["clipped_block_share"] = clipped / (streams * blocks)
    return means


def _policy(model: Any, deterministic: bool) -> Policy:
    """A trained SB3 model's policy: as trained (sampled from its Gaussian) or its mean."""
    return lambda obs, rng: model.predict(obs, deterministic=deterministic)[0]


def random_walk(num_actions: int) -> Policy:
    """Uniform actions in [-1, 1]: under delta control, a random walk of the knobs."""
    return lambda obs, rng: rng.uniform(-1.0, 1.0, (obs.shape[0], num_actions))


def run_comparison(
    env_id: str, seeds: list[int], timesteps: int, streams: int, out: Path, command: str
) -> dict[str, Any]:
    """Train PPO per seed, evaluate it and the random walk; write ``out`` (.json, .md)."""
    from stable_baselines3 import PPO

    from ddsp_gym.agents.sb3 import load_hyperparams, sb3_setup

    setup = sb3_setup(load_hyperparams("ppo", env_id))
    fenv, params = make_streaming_functional(env_id)
    blocks = int(params.max_steps_in_episode)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        venv = StreamVecEnv(fenv, params, setup.n_envs, seed)
        model = PPO(setup.policy, venv, seed=seed, verbose=0, device="cpu", **setup.algo_kwargs)
        model.learn(total_timesteps=timesteps)
        runs.append(
            {
                "seed": seed,
                "ppo": evaluate(fenv, params, _policy(model, False), seed, streams, blocks),
                "ppo_mean": evaluate(fenv, params, _policy(model, True), seed, streams, blocks),
                "random_walk": evaluate(
                    fenv, params, random_walk(fenv.num_actions), seed, streams, blocks
                ),
                "seconds": time.perf_counter() - start,
            }
        )
    summary = _summarize(runs)
    result = {
        "env_id": env_id,
        "command": command,
        "timesteps_per_seed": timesteps,
        "n_envs": setup.n_envs,
        "eval_streams": streams,
        "eval_blocks": blocks,
        "runs": runs,
        "summary": summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(_markdown(result))
    return result


def _summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(agent: str, key: str) -> dict[str, float]:
        values = np.array([r[agent][key] for r in runs])
        return {"mean": float(values.mean()), "std": float(values.std())}

    keys = ("reward", "novelty", "stability", "clipped_block_share", "slew")
    summary = {agent: {k: stat(agent, k) for k in keys} for agent in AGENTS}
    summary["ppo_beats_random_walk_seeds"] = int(
        sum(r["ppo"]["reward"] > r["random_walk"]["reward"] for r in runs)
    )
    summary["ppo_novelty_beats_random_walk_seeds"] = int(
        sum(r["ppo"]["novelty"] > r["random_walk"]["novelty"] for r in runs)
    )
    return summary


def _markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    n = len(result["runs"])
    lines = [
        f"# PPO vs a random-walk knob agent on {result['env_id']}",
        "",
        f"Made by `{result['command']}`. Per seed: SB3 PPO (agents/hyperparams/ppo.yml, "
        f"{result['n_envs']} streams) trained for {result['timesteps_per_seed']:,} blocks, "
        f"then it (ppo: actions sampled as in training; ppo mean: its mean action) and a "
        f"random walk (uniform actions, delta control) play "
        f"the same {result['eval_streams']} held-out streams of {result['eval_blocks']} "
        "blocks. Means per block over seeds (± std across seeds). Stability is the sum of "
        "the clipping, control-risk and loudness-drift terms (0 is perfectly stable).",
        "",
        "| agent | reward | novelty term | stability terms | blocks clipping | slew term |",
        "|---|---|---|---|---|---|",
    ]
    for agent in AGENTS:
        a = s[agent]
        cells = [
            f"{a[k]['mean']:.3f} ± {a[k]['std']:.3f}" for k in ("reward", "novelty", "stability")
        ]
        cells.append(f"{100 * a['clipped_block_share']['mean']:.1f} %")
        cells.append(f"{a['slew']['mean']:.3f}")
        lines.append(f"| {agent.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Per seed below: PPO as trained. At equal stability means: compare the stability "
        "column; a higher reward at a stability no worse than the random walk's is a win."
    )
    lines += [
        "",
        f"PPO's reward beats the random walk's in {s['ppo_beats_random_walk_seeds']} of {n} "
        f"seeds, its novelty term in {s['ppo_novelty_beats_random_walk_seeds']} of {n}.",
        "",
        "| seed | PPO reward | random-walk reward | PPO stability | random-walk stability | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['seed']} | {r['ppo']['reward']:.3f} | {r['random_walk']['reward']:.3f} | "
            f"{r['ppo']['stability']:.3f} | {r['random_walk']['stability']:.3f} | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
