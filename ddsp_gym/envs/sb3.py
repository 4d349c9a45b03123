"""Stable-Baselines3 on the native vector env: a ``VecEnv`` that steps all envs in one call.

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    venv = VecMonitor(make_sb3_vec_env("ddsp_gym/SineTuner-v1", num_envs=64))
    PPO("MlpPolicy", venv).learn(100_000)

Needs the ``sb3`` extra (``pip install ddsp_gym[sb3]``); ``import ddsp_gym`` does
not import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import (
        VecEnv,
        VecEnvIndices,
        VecEnvObs,
        VecEnvStepReturn,
    )
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "ddsp_gym.envs.sb3 needs stable-baselines3: pip install 'ddsp_gym[sb3]'"
    ) from err

from gymnasium.vector import AutoresetMode

from ddsp_gym.envs.vector_env import VectorDDSPEnv


class SB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` API over a same-step-autoreset :class:`VectorDDSPEnv`.

    As SB3 expects, an env whose episode ends is reset within the step: the
    returned obs starts the new episode, and its info holds
    ``terminal_observation`` (the last obs of the old one) and ``is_success``.
    Every info holds ``TimeLimit.truncated`` (truncated and not terminated).

    Per-env attributes and methods do not exist here (one jitted call steps
    all envs): ``get_attr``/``set_attr`` read and write the vector env's
    attribute for all envs; ``env_method`` calls the vector env's method once,
    and only when asked for all envs together.
    """

    def __init__(self, venv: VectorDDSPEnv) -> None:
        if venv.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3VecEnv needs a VectorDDSPEnv with autoreset_mode=SAME_STEP "
                "(make_sb3_vec_env builds one)"
            )
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    # ---- the VecEnv API -------------------------------------------------------------

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = self._options[0] if self._options and self._options[0] else None
        obs, _ = self.venv.reset(seed=seeds, options=options)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.float32).reshape(self.venv.action_space.shape)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        time_limit = truncated & ~terminated
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(t)} for t in time_limit]
        if dones.any():
            final_obs = info["final_obs"]
            success = info["final_info"]["success"]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = final_obs[i]
                infos[i]["is_success"] = bool(success[i])
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._require_all(indices, "set_attr")
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        self._require_all(indices, "env_method")
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None for _ in range(self.num_envs)]
        return list(self.venv.render())

    # ---- helpers --------------------------------------------------------------------

    def _require_all(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError(
                f"{what} on a subset of envs: the native vector env has no per-env objects"
            )


def make_sb3_vec_env(env_id: str, num_envs: int, **kwargs: Any) -> SB3VecEnv:
    """``gym.make_vec(env_id, num_envs, vector_entry_point, same-step autoreset)`` for SB3."""
    import ddsp_gym  # noqa: F401  (registers the envs)

    venv = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **kwargs,
    )
    return SB3VecEnv(venv)
