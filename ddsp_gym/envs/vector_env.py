"""The native vector env: N envs stepped in one jitted, vmapped call, autoreset inside.

On CPU the call steps the envs in chunks of :data:`ddsp_gym.batching.CPU_CHUNK`
(cache-sized; see :func:`ddsp_gym.batching.chunked_vmap`) unless one env's step is
light enough to vectorize whole; on accelerators all at once.

``gym.make_vec(ID, num_envs=N, vectorization_mode="vector_entry_point")`` (or no
mode: every registered id has this ``vector_entry_point``) builds a
:class:`VectorDDSPEnv`. Its pure core, :func:`vec_reset` and :func:`vec_step`,
is what :func:`ddsp_gym.envs.rollout.rollout` scans over.

Seeding. Each env owns a JAX key chain (see
:func:`ddsp_gym.envs.compile.seed_chain`); every reset, manual or automatic,
splits it into the episode's key and the chain's next link, exactly as a
single ``DDSPEnv`` does. ``reset(seed=s)`` gives env ``i`` the chain of seed
``s + i`` (Gymnasium's ``SyncVectorEnv`` convention), ``reset(seed=[s0, s1,
...])`` one seed per env. So the vector env equals ``N`` single envs made with
``gym.make`` and reset with seeds ``s, s + 1, ...``, their later episodes included.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from jax import Array

from ddsp_gym.batching import chunked_vmap
from ddsp_gym.envs import packing
from ddsp_gym.envs.compile import seed_chain
from ddsp_gym.envs.config import EnvConfig, build_functional
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv, StepInfo
from ddsp_gym.features.summary import SUMMARY_BOUND

AUTORESET_MODES: tuple[AutoresetMode, ...] = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)


class VecCarry(NamedTuple):
    """What the vector env keeps between steps (batched over envs)."""

    chain: Array  # (N, 2) uint32: each env's key chain
    state: EnvState  # (N, ...) each env's functional state
    needs_reset: Array  # (N,) bool: next-step autoreset resets these envs at the next step


class VecStepOut(NamedTuple):
    """One vector step's results (batched over envs), fetched to the host in one transfer."""

    obs: Array  # (N, obs_size)
    reward: Array  # (N,)
    terminated: Array  # (N,) bool
    truncated: Array  # (N,) bool
    info: StepInfo  # (N,) fields of the step (of the finished episode where reset)
    controls: dict[str, Array]  # physical knob values (N,) of the state the obs shows
    reset: Array  # (N,) bool: envs reset during this call
    final_obs: Array | None  # (N, obs_size) same-step mode: the obs before the reset
    final_controls: dict[str, Array] | None  # same-step mode: physical knobs before the reset
    reward_grad: Array | None  # (N, d) with expose_grad


def _where(mask: Array, new: Any, old: Any) -> Any:
    """Per-env select over pytrees whose leaves have the env axis first."""

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


def _reset_all(fenv: FunctionalDDSPEnv, chain: Array, params: EnvParams):
    return chunked_vmap(fenv.reset_from_chain, in_axes=(0, None))(chain, params)


def vec_reset(
    fenv: FunctionalDDSPEnv, chain: Array, params: EnvParams
) -> tuple[VecCarry, Array, dict[str, Array]]:
    """Reset every env from its key chain (N, 2) -> (carry, obs (N, obs_size), controls)."""
    chain, state, obs = _reset_all(fenv, chain, params)
    needs_reset = jnp.zeros(chain.shape[:1], bool)
    return VecCarry(chain, state, needs_reset), obs, jax.vmap(fenv.plant.controls)(state.knobs)


def _reset_one(fenv: FunctionalDDSPEnv, i: Array, carry: tuple, params: EnvParams) -> tuple:
    """Reset env ``i`` alone in (chain, state, obs), whose leaves have the env axis first."""
    chain, state, obs = carry
    chain_i, state_i, obs_i = fenv.reset_from_chain(chain[i], params)
    state = jax.tree.map(lambda leaf, new: leaf.at[i].set(new), state, state_i)
    return chain.at[i].set(chain_i), state, obs.at[i].set(obs_i)


# Up to this share of the envs, resets run one env at a time; more, all N as one batch.
ONE_BY_ONE_SHARE = 1 / 8


def reset_where(
    fenv: FunctionalDDSPEnv, mask: Array, chain: Array, state: EnvState, obs: Array, params
) -> tuple[Array, EnvState, Array]:
    """Reset the envs where ``mask`` (N,) holds; the others keep (chain, state, obs).

    No reset work when no env needs one. A few resets (at most ``ONE_BY_ONE_SHARE``
    of the envs) run one env at a time, so their cost does not grow with N: a
    goal task's reset renders up to 256 candidate settings, and resetting all 256
    envs of a vector env whenever one finished cost up to 65,536 renders. Many resets at
    once (envs started together end together) run as one vmapped batch, which
    accelerators prefer. Under an outer ``vmap`` the branches turn into selects
    and all of them run.
    """
    n = mask.shape[0]
    count = jnp.sum(mask)
    carry = (chain, state, obs)

    def one_by_one(_):
        (index,) = jnp.nonzero(mask, size=n, fill_value=0)
        return jax.lax.fori_loop(
            0, count, lambda j, c: _reset_one(fenv, index[j], c, params), carry
        )

    def all_at_once(_):
        return _where(mask, _reset_all(fenv, chain, params), carry)

    branch = jnp.where(count == 0, 0, jnp.where(count <= max(1, int(n * ONE_BY_ONE_SHARE)), 1, 2))
    return jax.lax.switch(branch, [lambda _: carry, one_by_one, all_at_once], None)


def vec_step(
    fenv: FunctionalDDSPEnv,
    carry: VecCarry,
    actions: Array,
    params: EnvParams,
    autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP,
    expose_grad: bool = False,
) -> tuple[VecCarry, VecStepOut]:
    """Step every env with ``actions`` (N, d), then autoreset; pure and jittable.

    Truncation follows Gymnasium's ``TimeLimit``: ``truncated`` is True once an
    episode has taken ``params.max_steps_in_episode`` steps (also when it terminates
    then), the horizon the functional core's own ``step`` keeps.

    * ``NEXT_STEP`` (Gymnasium's default): an env that ended at step t is reset
      at step t + 1, whose action it ignores; that step returns the new
      episode's first obs, reward 0, terminated and truncated False.
    * ``SAME_STEP``: an env that ends is reset in the same call; ``obs`` is the
      new episode's first obs and ``final_obs`` the last obs of the old one.
    """
    batch_step = fenv.transition_with_grad if expose_grad else fenv.transition
    stepped = chunked_vmap(batch_step, in_axes=(0, 0, None), whole_if_light=True)(
        carry.state, actions, params
    )
    state, obs, reward, terminated, info = stepped[:5]
    grad = stepped[5] if expose_grad else None
    truncated = state.step_count >= params.max_steps_in_episode
    controls_of = jax.vmap(fenv.plant.controls)
    final_obs = final_controls = None
    if autoreset_mode == AutoresetMode.NEXT_STEP:
        mask = carry.needs_reset
        chain, state, obs = reset_where(fenv, mask, carry.chain, state, obs, params)
        reward = jnp.where(mask, 0.0, reward)
        terminated = terminated & ~mask
        truncated = truncated & ~mask
        needs_reset = terminated | truncated
        if grad is not None:
            grad = jnp.where(mask[:, None], 0.0, grad)
    elif autoreset_mode == AutoresetMode.SAME_STEP:
        mask = terminated | truncated
        final_obs, final_controls = obs, controls_of(state.knobs)
        chain, state, obs = reset_where(fenv, mask, carry.chain, state, obs, params)
        needs_reset = jnp.zeros_like(mask)
    else:
        raise ValueError(f"autoreset_mode must be one of {AUTORESET_MODES}, not {autoreset_mode}")
    out = VecStepOut(
        obs=obs,
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        info=info,
        controls=controls_of(state.knobs),
        reset=mask,
        final_obs=final_obs,
        final_controls=final_controls,
        reward_grad=grad,
    )
    return VecCarry(chain, state, needs_reset), out


class _VecFns(NamedTuple):
    reset: Any  # (chain, params) -> (carry, packed reset (N, W))
    reset_masked: Any  # (mask, chain, carry, params) -> (carry, packed reset)
    step: Any  # (carry, actions, params) -> (carry, packed step (N, W))
    reset_cols: packing.Layout
    step_cols: packing.Layout


@functools.lru_cache(maxsize=128)
def _vec_fns(
    fenv: FunctionalDDSPEnv,
    autoreset_mode: AutoresetMode,
    expose_grad: bool,
) -> _VecFns:
    """Jitted vector reset/step for one configuration, shared by every instance of it.

    They return what the host needs packed into one (N, W) array
    (:mod:`ddsp_gym.envs.packing`): one transfer per call, whatever N.
    """
    plant = fenv.plant
    d, obs_size = fenv.num_knobs, fenv.obs_size
    reset_cols = packing.Layout((("obs", obs_size), ("knobs", d)))
    fields = packing.step_fields(obs_size, d, expose_grad)
    fields += [("truncated", None), ("reset", None)]
    if autoreset_mode == AutoresetMode.SAME_STEP:
        fields += [("final_obs", obs_size), ("final_knobs", d)]
    step_cols = packing.Layout(tuple(fields))

    def knob_matrix(controls):
        return packing.knob_vector(controls, plant.knob_names)

    def reset(chain, params):
        carry, obs, controls = vec_reset(fenv, chain, params)
        return carry, packing.pack(reset_cols, {"obs": obs, "knobs": knob_matrix(controls)})

    def reset_masked(mask, chain, carry, params):
        # obs of envs not reset are not needed by the caller: zeros stand in.
        obs = jnp.zeros((mask.shape[0], obs_size), jnp.float32)
        chain, state, obs = reset_where(fenv, mask, chain, carry.state, obs, params)
        knobs = knob_matrix(jax.vmap(plant.controls)(state.knobs))
        carry = VecCarry(chain, state, carry.needs_reset & ~mask)
        return carry, packing.pack(reset_cols, {"obs": obs, "knobs": knobs})

    def step(carry, actions, params):
        carry, out = vec_step(
            fenv,
            carry,
            actions,
            params,
            autoreset_mode=autoreset_mode,
            expose_grad=expose_grad,
        )
        values = {
            "obs": out.obs,
            "reward": out.reward,
            "terminated": out.terminated,
            "truncated": out.truncated,
            "reset": out.reset,
            "distance": out.info.distance,
            "success": out.info.success,
            "param_error": out.info.param_error,
            "penalty": out.info.penalty,
            "knobs": knob_matrix(out.controls),
            "reward_grad": out.reward_grad,
        }
        if out.final_obs is not None:
            values["final_obs"] = out.final_obs
            values["final_knobs"] = knob_matrix(out.final_controls)
        return carry, packing.pack(step_cols, values)

    return _VecFns(
        reset=jax.jit(reset),
        reset_masked=jax.jit(reset_masked),
        step=jax.jit(step),
        reset_cols=reset_cols,
        step_cols=step_cols,
    )


def seed_chains(seeds: list[int]) -> np.ndarray:
    """Key chains (N, 2) of envs reset with ``seeds``; env i behaves as ``reset(seed=seeds[i])``."""
    return np.stack([seed_chain(int(s)) for s in seeds])


class VectorDDSPEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a ``DDSPEnv`` stepped together in one jitted, vmapped call.

    Takes the keyword arguments of :class:`ddsp_gym.envs.config.EnvConfig`, as the
    single env does (all envs share the plant, task, control mode and any fixed
    ``target`` / ``input``; each draws its own targets; sim backend and task reward
    only; ``render_mode`` "rgb_array" or None), plus:

    Args:
        num_envs: how many envs.
        max_episode_steps: truncation horizon (``gym.make_vec`` passes the
            registry's); None: never truncate.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default, as Gymnasium's
            ``SyncVectorEnv``) or ``SAME_STEP`` (the SB3 adapter's); the
            instance's ``metadata["autoreset_mode"]`` says which.

    Observations, rewards, terminations and truncations come back as numpy
    arrays with the env axis first. ``info`` holds arrays with Gymnasium's
    ``_key`` masks: ``distance``, ``success``, ``penalty``, ``param_error``
    (masked where the target's knobs are unknown), ``knobs`` (physical values
    by name), ``reward_grad`` (N, d) with ``expose_grad``; in same-step mode
    ``final_obs`` and ``final_info`` for the envs that were reset.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        config = EnvConfig.from_kwargs(**env_kwargs)
        if config.backend != "sim":
            raise ValueError("the native vector env runs the sim backend only")
        if not config.reward_source.fused:
            raise ValueError("the native vector env scores with the task reward only")
        render_mode = config.render_mode
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, not {num_envs}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"the vector env renders 'rgb_array' or nothing, not {render_mode!r}")
        if max_episode_steps is not None and int(max_episode_steps) < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, not {max_episode_steps}")
        mode = AutoresetMode(autoreset_mode)
        if mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode must be one of {AUTORESET_MODES}, not {mode}")
        self.config = config
        self.functional, params = build_functional(config)
        if max_episode_steps is not None:
            params = params._replace(max_steps_in_episode=jnp.int32(max_episode_steps))
        self._params = params
        self.num_envs = int(num_envs)
        self.expose_grad = config.expose_grad
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self._fns = _vec_fns(self.functional, mode, self.expose_grad)
        d = self.functional.num_knobs
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (d,), np.float32)
        self.single_observation_space = gym.spaces.Box(
            -SUMMARY_BOUND, SUMMARY_BOUND, (self.functional.obs_size,), np.float32
        )
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._carry: VecCarry | None = None
        self._all = np.ones(self.num_envs, bool)
        # Targets drawn from knobs (no fixed target audio) have known knobs.
        self._known = np.full(self.num_envs, self._params.target_audio is None)

    # ---- accessors ----------------------------------------------------------------

    @property
    def autoreset_mode(self) -> AutoresetMode:
        return self.metadata["autoreset_mode"]

    @property
    def plant(self):
        return self.functional.plant

    @property
    def task(self):
        return self.functional.task

    @property
    def params(self) -> EnvParams:
        return self._params

    @property
    def state(self) -> EnvState | None:
        """The batched functional state (leaves (N, ...)), None before reset."""
        return None if self._carry is None else self._carry.state

    # ---- gymnasium API --------------------------------------------------------------

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ):
        """Reset all envs, or those in ``options["reset_mask"]`` (N,) bool.

        ``seed``: an int ``s`` seeds env i with ``s + i``; a list gives one seed
        (or None) per env; None continues each env's key chain (drawing fresh
        seeds from ``np_random`` for envs never seeded).
        """
        # np_random (which seeds envs never seeded) follows an int seed, as in SyncVectorEnv.
        super().reset(seed=int(seed) if isinstance(seed, int | np.integer) else None)
        n = self.num_envs
        if seed is None or isinstance(seed, int | np.integer):
            seeds = [None] * n if seed is None else [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"got {len(seeds)} seeds for {n} envs")
        mask = np.asarray((options or {}).get("reset_mask", self._all), bool)
        if mask.shape != (n,):
            raise ValueError(f"options['reset_mask'] must have shape ({n},), not {mask.shape}")
        chain = self._seeded_chain(seeds, mask)
        if self._carry is None:
            if not mask.all():
                raise ValueError("the first reset must reset every env (no reset_mask)")
            self._carry, packed = self._fns.reset(chain, self._params)
        else:
            self._carry, packed = self._fns.reset_masked(mask, chain, self._carry, self._params)
        field = packing.unpack(np.asarray(packed), self._fns.reset_cols)
        knobs = self._knob_dict(field["knobs"])
        info = {"knobs": _masked_dict(knobs, mask), "_knobs": mask}
        return np.ascontiguousarray(field["obs"]), info

    def step(self, actions):
        if self._carry is None:
            raise RuntimeError("call reset() before step()")
        actions = self._checked_actions(actions)
        self._carry, packed = self._fns.step(self._carry, actions, self._params)
        # The step's one transfer to the host; every field a view of one copy of it.
        field = packing.unpack(np.asarray(packed), self._fns.step_cols)
        flags = {name: field[name] > 0.5 for name in _FLAGS}
        same_step = "final_obs" in field
        out = _HostStep(
            obs=np.ascontiguousarray(field["obs"]),
            reward=field["reward"],
            terminated=flags["terminated"],
            truncated=flags["truncated"],
            reset=flags["reset"],
            info={
                "distance": field["distance"],
                "success": flags["success"],
                "param_error": field["param_error"],
                "penalty": field["penalty"],
            },
            knobs=self._knob_dict(field["knobs"]),
            reward_grad=np.ascontiguousarray(field["reward_grad"]) if self.expose_grad else None,
            final_obs=np.ascontiguousarray(field["final_obs"]) if same_step else None,
            final_knobs=self._knob_dict(field["final_knobs"]) if same_step else None,
        )
        return out.obs, out.reward, out.terminated, out.truncated, self._info(out)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        from ddsp_gym.plotting import spectrogram_image

        state = jax.device_get(self._require_state())
        render = jax.jit(jax.vmap(self.plant.render, in_axes=(0, 0, None)))
        audio = np.asarray(render(state.knobs, state.render_key, self._params.input_audio))
        sr = self.plant.sample_rate
        return tuple(
            spectrogram_image(a, t, sr) for a, t in zip(audio, state.target_audio, strict=True)
        )

    # ---- helpers --------------------------------------------------------------------

    def _require_state(self) -> EnvState:
        if self._carry is None:
            raise RuntimeError("call reset() first")
        return self._carry.state

    def _seeded_chain(self, seeds: list[int | None], mask: np.ndarray) -> np.ndarray:
        """Per-env key chains: from the seed where given, else the env's current chain."""
        if self._carry is None:
            drawn = self.np_random.integers(0, 2**31 - 1, size=self.num_envs)
            seeds = [int(d) if s is None else s for s, d in zip(seeds, drawn, strict=True)]
            return seed_chains(seeds)
        chain = np.array(self._carry.chain)
        for i, s in enumerate(seeds):
            if s is not None and mask[i]:
                chain[i] = seed_chain(int(s))
        return chain

    def _checked_actions(self, actions) -> np.ndarray:
        array = np.asarray(actions, dtype=np.float32)
        if array.shape != self.action_space.shape:
            raise ValueError(
                f"actions have shape {array.shape}; this env expects {self.action_space.shape}"
            )
        if not np.all(np.isfinite(array)):
            env, knob = np.argwhere(~np.isfinite(array))[0]
            name = self.plant.knob_names[knob]
            raise ValueError(
                f"actions[{env}, {knob}] ({name}) is {array[env, knob]}: "
                "actions must be finite numbers in [-1, 1]"
            )
        return array  # not clipped here: the jitted step clips to [-1, 1]

    def _knob_dict(self, knobs: np.ndarray) -> dict[str, np.ndarray]:
        """{knob name: (N,) values} of knob columns (N, d), views of them."""
        return {name: knobs[:, i] for i, name in enumerate(self.plant.knob_names)}

    def _step_info(self, info: dict, knobs, grad, mask) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("distance", "success", "penalty", "param_error"):
            out[name] = info[name]
            out[f"_{name}"] = mask
        out["_param_error"] = mask & self._known
        out["knobs"] = _masked_dict(knobs, mask)
        out["_knobs"] = mask
        if grad is not None:
            out["reward_grad"] = grad
            out["_reward_grad"] = mask
        return out

    def _info(self, out: _HostStep) -> dict[str, Any]:
        stepped = ~out.reset
        info = self._step_info(out.info, out.knobs, out.reward_grad, stepped)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if out.reset.any():
                info["knobs"] = _masked_dict(out.knobs, self._all)
                info["_knobs"] = self._all
            return info
        # Same-step: envs that ended report their reset in `info` and the step in
        # `final_info`, as Gymnasium's SyncVectorEnv does.
        info["knobs"] = _masked_dict(out.knobs, self._all)
        info["_knobs"] = self._all
        if out.reset.any():
            info["final_obs"] = out.final_obs
            info["_final_obs"] = out.reset
            info["final_info"] = self._step_info(
                out.info, out.final_knobs, out.reward_grad, out.reset
            )
            info["_final_info"] = out.reset
        return info


# Fields of a packed vector step that are flags (0.0 / 1.0).
_FLAGS = ("terminated", "truncated", "reset", "success")


class _HostStep(NamedTuple):
    """A vector step's results on the host (numpy, env axis first)."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    reset: np.ndarray
    info: dict[str, np.ndarray]
    knobs: dict[str, np.ndarray]
    reward_grad: np.ndarray | None
    final_obs: np.ndarray | None
    final_knobs: dict[str, np.ndarray] | None


def _masked_dict(values: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    """Gymnasium's nested vector-info layout: each entry plus its ``_name`` mask."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = value
        out[f"_{name}"] = mask
    return out
