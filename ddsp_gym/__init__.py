"""ddsp_gym: Gymnasium environments in which agents play differentiable JAX synths.

``import ddsp_gym`` registers every env listed in ``envs_registry.yaml`` and changes
nothing else in the process (see :func:`ddsp_gym.runtime.tune_for_cpu` for the opt-in
speed settings)::

    import gymnasium as gym
    import ddsp_gym  # noqa: F401

    env = gym.make("ddsp_gym/SineTuner-v1", expose_grad=True)

``ddsp_gym.make_functional(id)`` gives the same env as a pure, gymnax-style
``(env, default_params)`` pair for JAX-native training loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ddsp_gym.registry import register_envs

__version__ = "0.1.0"
ENV_IDS: list[str] = register_envs()

if TYPE_CHECKING:
    from ddsp_gym.envs.functional import make_functional


def __getattr__(name: str) -> Any:
    # Lazy, so that `import ddsp_gym` (and `ddsp-gym --help`) does not import JAX.
    if name == "make_functional":
        from ddsp_gym.envs.functional import make_functional

        return make_functional
    raise AttributeError(f"module 'ddsp_gym' has no attribute {name!r}")


__all__ = ["ENV_IDS", "__version__", "make_functional"]
