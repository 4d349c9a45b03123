"""The policy network the JAX trainers share, its held-out evaluation and its checkpoints.

The JAX-native trainers (:mod:`ddsp_gym.agents.jax_ppo`, :mod:`ddsp_gym.agents.apg`,
:mod:`ddsp_gym.agents.hybrid_pg`) all learn the same object: a tanh MLP from an
observation to a Gaussian over actions, plus (for PPO) a value MLP. Parameters are a
plain pytree of arrays (dicts and lists): one ``.npz`` of named arrays is a checkpoint
and ``jax.tree`` maps over them without any framework.

The network reads the observation plus the difference between the sound's summary
features and the target's (both are in every observation, see
:meth:`ddsp_gym.envs.functional.FunctionalDDSPEnv.observe`): the gap to close is what a
controller needs, and an MLP would otherwise have to learn a subtraction first. Inputs
are standardised with statistics of a batch of starting observations, fixed at
initialisation (pure, and identical at training and evaluation).

Scoring follows the SB3 agents (:class:`ddsp_gym.agents.sb3.SB3Policy`): one
deterministic episode (the Gaussian's mean) per held-out target, reset seeds
``EVAL_SEED_OFFSET + i``. :func:`evaluate_heldout` plays the same episodes inside JAX
(for learning curves during training); :meth:`JaxPolicy.solve` plays them through the
Gymnasium env, as the benchmark does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.agents.base import SolveResult, play_episode
from ddsp_gym.envs.compile import seed_chain
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv
from ddsp_gym.features.summary import SUMMARY_SIZE

Layers = list[dict[str, Array]]
PolicyParams = dict[str, Any]  # {"norm": {"mean", "std"}, "actor": Layers, "log_std": (d,)}
LOG_2PI = float(np.log(2.0 * np.pi))


# ---- networks --------------------------------------------------------------------------


def init_mlp(key: Array, sizes: tuple[int, ...], out_scale: float = 1.0) -> Layers:
    """Dense layers of ``sizes`` (in, hidden..., out): LeCun-normal weights, zero biases.

    The last layer is scaled by ``out_scale``: a small policy head starts near the
    zero action with every action equally likely, as PPO implementations do.
    """
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        scale = (out_scale if i == len(sizes) - 2 else 1.0) / np.sqrt(n_in)
        layers.append({"w": jax.random.normal(k, (n_in, n_out)) * scale, "b": jnp.zeros(n_out)})
    return layers


def mlp(layers: Layers, x: Array) -> Array:
    """tanh hidden layers, linear output; ``x`` (..., in) -> (..., out)."""
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def raw_features(obs: Array, num_knobs: int) -> Array:
    """Observation plus (sound summary - target summary): (..., obs_size + SUMMARY_SIZE)."""
    sound = obs[..., num_knobs : num_knobs + SUMMARY_SIZE]
    target = obs[..., num_knobs + SUMMARY_SIZE : num_knobs + 2 * SUMMARY_SIZE]
    return jnp.concatenate([obs, sound - target], axis=-1)


def input_size(obs_size: int) -> int:
    return obs_size + SUMMARY_SIZE


def fit_normalizer(obs: Array, num_knobs: int) -> dict[str, Array]:
    """Mean and std of :func:`raw_features` over a batch (N, obs_size); constant entries get
    std 1 so they stay 0 after centring instead of blowing up."""
    x = raw_features(obs, num_knobs)
    std = jnp.std(x, axis=0)
    return {"mean": jnp.mean(x, axis=0), "std": jnp.where(std > 1e-3, std, 1.0)}


def features(norm: dict[str, Array], obs: Array, num_knobs: int) -> Array:
    """The network's input: standardised :func:`raw_features` (the statistics are fixed,
    not learned: no gradient reaches them)."""
    norm = jax.lax.stop_gradient(norm)
    return (raw_features(obs, num_knobs) - norm["mean"]) / norm["std"]


def init_policy(
    key: Array,
    start_obs: Array,
    num_knobs: int,
    hidden: tuple[int, ...],
    log_std: float,
    value_head: bool = False,
) -> PolicyParams:
    """Actor (and optionally critic) parameters, the normaliser fitted on ``start_obs``."""
    k_actor, k_critic = jax.random.split(key)
    n_in = input_size(start_obs.shape[-1])
    params: PolicyParams = {
        "norm": fit_normalizer(start_obs, num_knobs),
        "actor": init_mlp(k_actor, (n_in, *hidden, num_knobs), out_scale=0.01),
        "log_std": jnp.full((num_knobs,), log_std, jnp.float32),
    }
    if value_head:
        params["critic"] = init_mlp(k_critic, (n_in, *hidden, 1), out_scale=1.0)
    return params


def action_mean(params: PolicyParams, obs: Array, num_knobs: int) -> Array:
    """The Gaussian's mean (unclipped) for ``obs`` (..., obs_size) -> (..., d)."""
    return mlp(params["actor"], features(params["norm"], obs, num_knobs))


def value(params: PolicyParams, obs: Array, num_knobs: int) -> Array:
    """The critic's value estimate (...,)."""
    return mlp(params["critic"], features(params["norm"], obs, num_knobs))[..., 0]


def gaussian_log_prob(action: Array, mean: Array, log_std: Array) -> Array:
    """log N(action; mean, exp(log_std)^2 I), summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std: Array) -> Array:
    return jnp.sum(log_std + 0.5 * (1.0 + LOG_2PI))


def deterministic_action(params: PolicyParams, obs: Array, num_knobs: int) -> Array:
    """The action a trained policy plays: the mean, clipped to the action box."""
    return jnp.clip(action_mean(params, obs, num_knobs), -1.0, 1.0)


# ---- vectorised env helpers the trainers share ---------------------------------------------


def reset_batch(
    fenv: FunctionalDDSPEnv, env_params: EnvParams, key: Array, num_envs: int
) -> tuple[Array, EnvState, Array]:
    """``num_envs`` fresh episodes -> (key chains (N, 2), states, obs (N, obs_size)).

    The chains are a split of ``key``: a stream apart from the env's seeded resets, so
    training never meets the held-out targets (whose chains come from reset seeds).
    """
    chains = jax.random.split(key, num_envs)
    chains, states, obs = jax.vmap(fenv.reset_from_chain, in_axes=(0, None))(chains, env_params)
    return chains, states, obs


def start_observations(
    fenv: FunctionalDDSPEnv, env_params: EnvParams, key: Array, count: int = 256
) -> Array:
    """Observations of ``count`` fresh episodes: what the input normaliser is fitted on."""
    return reset_batch(fenv, env_params, key, count)[2]


# ---- held-out evaluation ---------------------------------------------------------------


def heldout_chains(seeds: list[int]) -> Array:
    """Key chains of envs reset with these seeds (as ``env.reset(seed=s)`` makes them)."""
    return jnp.asarray(np.stack([seed_chain(s) for s in seeds]))


class HeldoutResult(NamedTuple):
    success: Array  # (n,) bool: solved within the budget
    steps: Array  # (n,) int: steps played (to success, or the budget)
    best_distance: Array  # (n,)
    final_distance: Array  # (n,)
    distances: Array  # (budget, n) per step; nan after the episode ended


def evaluate_heldout(
    fenv: FunctionalDDSPEnv,
    env_params: EnvParams,
    act: Callable[[Array], Array],
    chains: Array,
    budget: int,
) -> HeldoutResult:
    """One deterministic episode per chain, ``budget`` steps at most, ended by success.

    ``act`` maps a batch of observations (n, obs_size) to actions. The same episodes
    as :meth:`JaxPolicy.solve` on ``gym.make(id, max_episode_steps=budget)``; pure, so it
    runs inside a training loop for learning curves.
    """
    _, states, obs = jax.vmap(fenv.reset_from_chain, in_axes=(0, None))(chains, env_params)
    n = chains.shape[0]

    def step(carry, _):
        states, obs, alive = carry
        actions = act(obs)
        states, obs, _, terminated, info = jax.vmap(fenv.transition, in_axes=(0, 0, None))(
            states, actions, env_params
        )
        distance = jnp.where(alive, info.distance, jnp.nan)
        return (states, obs, alive & ~terminated), (distance, alive & terminated)

    init = (states, obs, jnp.ones(n, bool))
    (_, _, alive), (distances, solved) = jax.lax.scan(step, init, None, length=budget)
    steps = jnp.sum(~jnp.isnan(distances), axis=0)
    final = distances[jnp.maximum(steps - 1, 0), jnp.arange(n)]
    return HeldoutResult(
        success=jnp.any(solved, axis=0),
        steps=steps,
        best_distance=jnp.nanmin(distances, axis=0),
        final_distance=final,
        distances=distances,
    )


# ---- the trained policy ------------------------------------------------------------------


@dataclass
class JaxPolicy:
    """A trained JAX policy, scored like the SB3 agents: one deterministic episode per target.

    ``env_kwargs`` are the ``gym.make`` keyword arguments it was trained with (e.g. a
    control mode); the env it is scored on must have been made with the same control.
    """

    name: str
    env_id: str
    params: PolicyParams
    num_knobs: int
    train_steps: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    _act: Callable | None = field(default=None, repr=False, compare=False)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) for observation(s)."""
        if self._act is None:
            self._act = jax.jit(lambda p, o: deterministic_action(p, o, self.num_knobs))
        return np.asarray(self._act(self.params, jnp.asarray(obs, jnp.float32)))

    def check_env(self, env: gym.Env) -> None:
        """Refuse an env whose control or observation differs from training's (the
        actions or inputs would mean something else)."""
        config = env.unwrapped.config
        for name in ("control", "observation"):
            wanted, got = self.env_kwargs.get(name), getattr(config, name)
            if wanted is not None and got != wanted:
                raise ValueError(
                    f"{self.name} was trained with {name}={wanted!r}; this env has {got!r}: "
                    f"make it with gym.make(id, {name}={wanted!r})"
                )

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        """Play one deterministic episode from ``env.reset(seed=seed)``, at most ``budget``
        steps; each step is one plant query."""
        self.check_env(env)
        return play_episode(env, seed, budget, self.act)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env_id": self.env_id,
            "params": jax.tree.map(np.asarray, self.params),
            "num_knobs": self.num_knobs,
            "train_steps": self.train_steps,
            "env_kwargs": dict(self.env_kwargs),
            "config": dict(self.config),
        }


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """{"actor/0/w": array, ...} of a pytree of dicts and lists of arrays."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    flat: dict[str, np.ndarray] = {}
    for key, leaf in items:
        name = f"{prefix}{key}"
        if isinstance(leaf, dict | list):
            flat.update(_flatten(leaf, name + "/"))
        else:
            flat[name] = np.asarray(leaf)
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> PolicyParams:
    """Inverse of :func:`_flatten`: levels whose keys are all digits become lists."""
    tree: dict[str, Any] = {}
    for name, leaf in flat.items():
        *path, last = name.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = jnp.asarray(leaf)

    def listify(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[str(i)] for i in range(len(node))]
        return node

    return listify(tree)


def save_policy(policy: JaxPolicy, path: str | Path) -> Path:
    """Write the policy as one ``.npz``: its parameters as arrays named by their path in
    the pytree, its metadata as JSON in ``__meta__``. No pickle: loading runs no code."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in policy.to_dict().items() if k != "params"}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __meta__=np.asarray(json.dumps(meta)), **_flatten(policy.params))
    tmp.replace(path)
    return path


def load_policy(path: str | Path) -> JaxPolicy:
    """A :class:`JaxPolicy` from :func:`save_policy`'s file."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        params = _unflatten({k: data[k] for k in data.files if k != "__meta__"})
    return JaxPolicy(params=params, **meta)
