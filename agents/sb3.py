"""Stable-Baselines3 agents (PPO, SAC, TD3) trained through ``gym.make``.

Training targets come from reset seeds below :data:`ddsp_gym.agents.benchmark.EVAL_SEED_OFFSET`
(:class:`TrainingSeeds`, :class:`TrainingVecSeeds`); scoring uses the held-out seeds from
it. Each training step is one plant query. Hyperparameters live in
``agents/hyperparams/<algo>.yml``, one entry per env id in RL Baselines3 Zoo's format,
so ``python -m rl_zoo3.train --conf-file`` reads the same file (docs/agents.md).
With ``n_envs > 1`` training steps all envs in one jitted call
(:func:`ddsp_gym.envs.sb3.make_sb3_vec_env`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from ddsp_gym.agents.base import SolveResult, play_episode

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
ALGOS: tuple[str, ...] = ("ppo", "sac", "td3")
TRAIN_SEED_LIMIT = 10_000  # = agents.benchmark.EVAL_SEED_OFFSET; held-out seeds start here

# RL Zoo keys that are not arguments of the SB3 class; make_model handles these.
ZOO_KEYS = frozenset(
    {"n_timesteps", "policy", "n_envs", "normalize", "env_wrapper", "env_kwargs"}
    | {"noise_type", "noise_std"}
)
# RL Zoo keys this trainer does not implement: an entry with one is refused, not half-run.
UNSUPPORTED_ZOO_KEYS = frozenset(
    {"frame_stack", "vec_env_wrapper", "callback", "monitor_kwargs", "replay_buffer_class"}
)
# The one env wrapper the files name: this trainer applies its own equivalent always.
TRAINING_SEEDS_WRAPPER = "ddsp_gym.agents.sb3.TrainingSeeds"


def hyperparams_file(algo: str) -> Path:
    """The RL Zoo hyperparameter file of ``algo``: pass it to ``rl_zoo3.train --conf-file``."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {ALGOS}")
    return HYPERPARAMS_DIR / f"{algo}.yml"


def load_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """``env_id``'s entry of ``algo``'s RL Zoo file, as written (a fresh copy).

    Unlike RL Zoo, an id without an entry is an error rather than the ``default``
    settings: every registered id has one, so a miss is a typo or an unregistered env.
    """
    path = hyperparams_file(algo)
    entries = yaml.safe_load(path.read_text())
    if env_id == "default" or env_id not in entries:
        raise ValueError(f"no {algo} hyperparameters for env {env_id!r} in {path}")
    return dict(entries[env_id])


def policy_kwargs_from(value: str | dict[str, Any] | None) -> dict[str, Any]:
    """RL Zoo's ``policy_kwargs``: a mapping, or a Python expression such as
    ``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"`` evaluated with ``dict``, ``nn``
    (torch.nn) and ``th`` (torch) in scope, as RL Zoo evaluates it."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    import torch

    scope = {"dict": dict, "nn": torch.nn, "th": torch}
    result = eval(value, {"__builtins__": {}}, scope)  # as RL Zoo does; our own files
    if not isinstance(result, dict):
        raise ValueError(f"policy_kwargs must give a dict, not {result!r}")
    return result


@dataclass(frozen=True)
class SB3Setup:
    """An RL Zoo entry split into what the SB3 class takes and what the trainer does."""

    algo_kwargs: dict[str, Any]
    policy: str = "MlpPolicy"
    n_envs: int = 1
    normalize: dict[str, Any] | None = None  # VecNormalize kwargs; None: no VecNormalize
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    noise_std: float | None = None  # Gaussian exploration noise (TD3, SAC), action units
    n_timesteps: int | None = None


def sb3_setup(params: dict[str, Any]) -> SB3Setup:
    """Split an RL Zoo entry (:func:`load_hyperparams`) into an :class:`SB3Setup`."""
    unsupported = sorted(UNSUPPORTED_ZOO_KEYS & params.keys())
    if unsupported:
        raise ValueError(f"RL Zoo keys {unsupported} are not supported by ddsp_gym's trainer")
    wrappers = params.get("env_wrapper")
    if wrappers not in (None, TRAINING_SEEDS_WRAPPER, [TRAINING_SEEDS_WRAPPER]):
        raise ValueError(
            f"env_wrapper {wrappers!r} is not supported: ddsp_gym's trainer applies only "
            f"{TRAINING_SEEDS_WRAPPER} (always)"
        )
    noise_type = params.get("noise_type")
    if noise_type not in (None, "normal"):
        raise ValueError(f"noise_type {noise_type!r} is not supported; use 'normal'")
    n_envs = int(params.get("n_envs", 1))
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, not {n_envs}")
    normalize = params.get("normalize", False)
    if isinstance(normalize, str):
        normalize = policy_kwargs_from(normalize)  # RL Zoo writes "dict(norm_reward=False)"
    normalize_kwargs = None
    if normalize:
        normalize_kwargs = dict(normalize) if isinstance(normalize, dict) else {}
        normalize_kwargs.setdefault("gamma", params.get("gamma", 0.99))
    kwargs = {k: v for k, v in params.items() if k not in ZOO_KEYS}
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = policy_kwargs_from(kwargs["policy_kwargs"])
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])  # YAML has no tuples
    steps = params.get("n_timesteps")
    return SB3Setup(
        algo_kwargs=kwargs,
        policy=params.get("policy", "MlpPolicy"),
        n_envs=n_envs,
        normalize=normalize_kwargs,
        env_kwargs=dict(params.get("env_kwargs") or {}),
        noise_std=None if noise_type is None else float(params["noise_std"]),
        n_timesteps=None if steps is None else int(steps),
    )


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TrainingSeeds(gym.Wrapper):
    """Every reset draws its seed from the training range [0, TRAIN_SEED_LIMIT).

    A seed passed to ``reset`` (SB3's and RL Zoo's ``seed + env index``) reseeds the
    draw, so a run is reproducible and its envs differ, but is never used itself:
    whatever seed a trainer picks, the held-out targets (seeds from the limit) stay
    unseen.
    """

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        seed = int(self._rng.integers(0, TRAIN_SEED_LIMIT))
        return self.env.reset(seed=seed, options=options)


def vec_training_seeds(seed: int, n_envs: int) -> list[int]:
    """The first-episode reset seeds of a vectorized run: env ``i`` of run ``seed`` gets
    ``seed * n_envs + i``, so runs with different seeds start from disjoint targets
    (SB3's ``seed + i`` would share all but one env between seeds 0 and 1).

    Later episodes continue each env's JAX key chain (the vector env's autoreset) and
    never restart from a seed, so the held-out targets (first episodes of seeds from
    ``TRAIN_SEED_LIMIT``) are out of reach once these seeds are below the limit.
    """
    if seed < 0 or (seed + 1) * n_envs > TRAIN_SEED_LIMIT:
        raise ValueError(
            f"seed {seed} with {n_envs} envs would reset onto held-out targets (reset seeds "
            f"from {TRAIN_SEED_LIMIT}); use a seed in [0, {TRAIN_SEED_LIMIT // n_envs})"
        )
    return [seed * n_envs + i for i in range(n_envs)]


def make_training_vec_env(env_id: str, n_envs: int, seed: int, **env_kwargs: Any) -> Any:
    """``n_envs`` envs of ``env_id`` stepped in one jitted call, for SB3, on training
    targets (:func:`vec_training_seeds`), with ``VecMonitor`` episode statistics."""
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    vec_training_seeds(seed, n_envs)  # refuses seeds that reach the held-out targets

    class TrainingVecSeeds(VecEnvWrapper):
        """SB3 seeds a model's env with ``env.seed(model seed)``: this maps that seed
        to :func:`vec_training_seeds` (checked) instead of SB3's ``seed + i``."""

        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            return self.venv.step_wait()

        def seed(self, seed: int | None = None):
            if seed is None:
                raise ValueError("a training vector env needs a seed (held-out targets)")
            vec_training_seeds(seed, self.num_envs)
            return self.venv.seed(seed * self.num_envs)

    venv = TrainingVecSeeds(make_sb3_vec_env(env_id, n_envs, **env_kwargs))
    venv.seed(seed)
    return VecMonitor(venv)


@dataclass
class SB3Policy:
    """A trained SB3 model, scored like the search agents: one deterministic episode."""

    model: Any
    name: str

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        # A model trained under VecNormalize sees normalized observations.
        normalizer = self.model.get_vec_normalize_env()

        def act(obs: np.ndarray) -> np.ndarray:
            seen = obs if normalizer is None else normalizer.normalize_obs(obs)
            return self.model.predict(seen, deterministic=True)[0]

        return play_episode(env, seed, budget, act)


def make_model(
    env_id: str,
    algo: str,
    seed: int = 0,
    hyperparams: dict[str, Any] | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
) -> Any:
    """An untrained SB3 ``algo`` model on ``env_id``'s training targets.

    ``hyperparams``: an RL Zoo entry (default: :func:`load_hyperparams`). With
    ``n_envs`` 1 the env is ``gym.make``'s under :class:`TrainingSeeds`; with more, the
    native vector env (:func:`make_training_vec_env`).
    """
    import torch
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {ALGOS}")
    # Tiny MLPs: one thread avoids oversubscribing the cores JAX's plant also uses.
    torch.set_num_threads(1)
    setup = sb3_setup(load_hyperparams(algo, env_id) if hyperparams is None else hyperparams)
    if setup.n_envs == 1:
        env = DummyVecEnv([lambda: Monitor(TrainingSeeds(gym.make(env_id, **setup.env_kwargs)))])
    else:
        env = make_training_vec_env(env_id, setup.n_envs, seed, **setup.env_kwargs)
    if setup.normalize is not None:
        env = VecNormalize(env, **setup.normalize)
    kwargs = dict(setup.algo_kwargs)
    if setup.noise_std is not None:
        d = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(d), setup.noise_std * np.ones(d))
    cls = {"ppo": PPO, "sac": SAC, "td3": TD3}[algo]
    return cls(
        setup.policy,
        env,
        seed=seed,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        device="cpu",
        **kwargs,
    )


def train(
    env_id: str,
    algo: str,
    steps: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    hyperparams: dict[str, Any] | None = None,
    verbose: int = 0,
) -> SB3Policy:
    """Train ``algo`` on ``env_id`` for ``steps`` env steps (= plant queries).

    With ``out_dir``: TensorBoard logs in ``out_dir/tb`` (if the ``tensorboard``
    package is installed; else a note says how to get it), checkpoints every
    ``checkpoint_every`` steps in ``out_dir/checkpoints`` and the final model
    at ``out_dir/model.zip`` (and ``vecnormalize.pkl`` where the entry normalizes).
    ``hyperparams``: an RL Zoo entry (default: ``env_id``'s in ``<algo>.yml``). PPO
    collects whole rollouts (``n_steps`` x ``n_envs``), so it may overshoot ``steps``
    by less than one.
    """
    from stable_baselines3.common.callbacks import CheckpointCallback

    tb_dir = None
    callbacks = []
    if out_dir is not None:
        out_dir = Path(out_dir)
        if tensorboard_available():
            tb_dir = str(out_dir / "tb")
        else:
            print("note: no TensorBoard logs (pip install tensorboard, or the [sb3] extra)")
    model = make_model(env_id, algo, seed, hyperparams, tb_dir, verbose)
    if out_dir is not None and checkpoint_every:
        # SB3 counts save_freq in vector steps, each n_envs env steps.
        every = max(checkpoint_every // model.n_envs, 1)
        callbacks.append(CheckpointCallback(every, str(out_dir / "checkpoints"), algo))
    model.learn(total_timesteps=steps, callback=callbacks or None, tb_log_name=algo)
    if out_dir is not None:
        model.save(str(out_dir / "model.zip"))
        normalizer = model.get_vec_normalize_env()
        if normalizer is not None:
            normalizer.save(str(out_dir / "vecnormalize.pkl"))
    model.get_env().close()
    return SB3Policy(model, algo)
