"""Environments: the pure functional core and its Gymnasium wrapper."""

from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv, StepInfo
from ddsp_gym.envs.gym_env import DDSPEnv

__all__ = ["DDSPEnv", "EnvParams", "EnvState", "FunctionalDDSPEnv", "StepInfo"]
