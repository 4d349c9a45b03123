"""Measure each env's mean random-policy distance: the ``distance_scale`` in envs_registry.yaml.

    python scripts/calibrate_rewards.py [--samples 512] [ID ...]

For each env it draws random targets (from reset) and random absolute knob
settings, and prints the mean distance and the mean reward under the current
scale. A registry scale equal to the mean distance makes a random policy score -1.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import jax
import numpy as np

from ddsp_gym.envs import FunctionalDDSPEnv
from ddsp_gym.registry import ids_of_kind


def mean_random_distance(fenv: FunctionalDDSPEnv, params, samples: int, seed: int = 0) -> float:
    def one(key):
        k_reset, k_action = jax.random.split(key)
        _, state = fenv.reset_env(k_reset, params)
        action = jax.random.uniform(k_action, (fenv.num_knobs,), minval=-1.0, maxval=1.0)
        _, _, _, _, info = fenv.step_env(k_action, state, action, params)
        return info["distance"]

    keys = jax.random.split(jax.random.PRNGKey(seed), samples)
    return float(np.mean(jax.jit(jax.vmap(one))(keys)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", default=ids_of_kind("target"))
    parser.add_argument("--samples", type=int, default=512)
    args = parser.parse_args()
    for env_id in args.ids:
        env = gym.make(env_id).unwrapped
        fenv = env.functional
        mean = mean_random_distance(fenv, env.params, args.samples)
        scale = float(env.params.distance_scale)
        print(
            f"{env_id:36s} mean random distance {mean:10.4f} {fenv.task.distance_unit:8s}"
            f" registry scale {scale:10.4f} -> mean random reward {-mean / scale:7.3f}"
        )


if __name__ == "__main__":
    main()
