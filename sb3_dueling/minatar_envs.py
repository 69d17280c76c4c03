"""
MinAtar's games (Young & Tian 2019) for this package's learners: the observation wrapper their networks take, and
the registration of MinAtar's gymnasium ids (``MinAtar/<Game>-v0`` with all six actions, ``-v1`` with the game's
minimal action set), which the ``minatar`` package leaves to the caller.

Imports neither ``minatar`` (an optional extra, ``pip install "sb3_dueling[minatar]"``) nor Matplotlib until
:func:`register_minatar_envs` is called: importing ``sb3_dueling`` or this module registers nothing.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: The namespace of MinAtar's gymnasium ids
NAMESPACE = "MinAtar"
#: An id that ``minatar.gym.register_envs`` registers: present once they are registered
REGISTERED_ID = f"{NAMESPACE}/Breakout-v0"


class ChannelFirst(gym.ObservationWrapper):
    """
    MinAtar's frames (height x width x channels of booleans) as channel-first ``uint8`` 0/1 arrays.

    ``uint8`` keeps the replay buffer at a byte a cell (a quarter of float32's). Its bounds 0 and 1 are not those
    of an SB3 image (0-255), so SB3 neither transposes nor divides it by 255: the network sees 0.0 and 1.0, as in
    MinAtar and Dopamine. The policies say so anyway (``normalize_images=False``).

    :param env: A MinAtar env (``minatar.gym.BaseEnv``)
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = spaces.Box(0, 1, (channels, height, width), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.moveaxis(observation, -1, 0).astype(np.uint8)


def is_minatar_id(env_id: str) -> bool:
    """Whether ``env_id`` names a MinAtar game (its namespace, in any case: ``MinAtar/Breakout-v0``)."""
    return env_id.lower().startswith(f"{NAMESPACE.lower()}/")


def register_minatar_envs() -> bool:
    """
    Register MinAtar's ids with gymnasium, if the ``minatar`` package is installed; once (calling it again, or
    after ``minatar.gym.register_envs()``, changes nothing). Imports ``minatar`` (and with it Matplotlib).

    :return: Whether the ids are registered (``False``: ``minatar`` is not installed)
    """
    if REGISTERED_ID in gym.envs.registry:
        return True
    try:
        from minatar import gym as minatar_gym
    except ImportError:
        return False
    minatar_gym.register_envs()
    return True
