"""Opt-in training guard: stop at the first non-finite observation or reward, naming the env step."""

from typing import Any

from stable_baselines3.common.vec_env import VecCheckNan, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn


class StepCheckNan(VecCheckNan):
    """
    SB3's ``VecCheckNan`` that raises a ``ValueError`` naming the env step (counted over all envs, like
    ``num_timesteps``) at which a NaN or infinity appeared in the observations or rewards.

    :param venv: the envs to check
    :param num_timesteps: env steps taken before this wrapper (when training resumes)
    """

    def __init__(self, venv: VecEnv, num_timesteps: int = 0) -> None:
        super().__init__(venv, raise_exception=True, check_inf=True)
        self.num_timesteps = num_timesteps

    def step_wait(self) -> VecEnvStepReturn:
        self.num_timesteps += self.num_envs
        try:
            return super().step_wait()
        except ValueError as error:
            raise ValueError(f"non-finite value from the env at env step {self.num_timesteps}: {error}") from error

    def reset(self, **kwargs: Any) -> VecEnvObs:
        try:
            return super().reset(**kwargs)
        except ValueError as error:
            raise ValueError(f"non-finite value from the env at reset (env step {self.num_timesteps}): {error}") from error
