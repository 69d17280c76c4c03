"""Registers `TinyImage-v0`, a small image env (SB3's FakeImageEnv, 3 actions, 10-step episodes), for the explain tests."""

import gymnasium as gym
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.envs import FakeImageEnv


def make_tiny_image_env() -> gym.Env:
    return TimeLimit(FakeImageEnv(action_dim=3, screen_height=36, screen_width=36, n_channels=1, discrete=True), 10)


if "TinyImage-v0" not in gym.envs.registry:
    gym.register("TinyImage-v0", entry_point=make_tiny_image_env)
