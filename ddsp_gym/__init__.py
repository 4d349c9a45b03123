"""ddsp_gym: Gymnasium environments in which agents play differentiable JAX synths.

``import ddsp_gym`` registers every env listed in ``envs_registry.yaml``::

    import gymnasium as gym
    import ddsp_gym  # noqa: F401

    env = gym.make("ddsp_gym/SineTuner-v0", expose_grad=True)
"""

from ddsp_gym.runtime import configure_cpu_dispatch, configure_malloc

# First, before anything can start JAX: env steps run inline on the CPU, and XLA's
# temporaries reuse freed memory instead of faulting in fresh pages (see runtime.py).
configure_cpu_dispatch()
configure_malloc()

from ddsp_gym.registry import register_envs  # noqa: E402

__version__ = "0.1.0"
ENV_IDS: list[str] = register_envs()

__all__ = ["ENV_IDS", "__version__"]
