"""
RL Baselines3 Zoo support: the ``dueling_dqn``, ``dueling_qrdqn`` and ``rainbow`` algorithms, their Optuna
samplers, and the hyperparameter files. Needs the ``zoo`` extra (``pip install sb3_dueling[zoo]``).

    python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1
    python -m sb3_dueling.zoo train --algo dueling_qrdqn --env CartPole-v1
    python -m sb3_dueling.zoo train --algo rainbow --env CartPole-v1
"""

from sb3_dueling.user_input import (
    CONFIGS,
    DQN_CONFIG,
    DUELING_DQN_CONFIG,
    DUELING_QRDQN_CONFIG,
    QRDQN_CONFIG,
    RAINBOW_CONFIG,
)
from sb3_dueling.zoo.patches import ALGO, ZOO_ALGORITHMS, zoo_patches

__all__ = [
    "ALGO",
    "CONFIGS",
    "DQN_CONFIG",
    "DUELING_DQN_CONFIG",
    "DUELING_QRDQN_CONFIG",
    "QRDQN_CONFIG",
    "RAINBOW_CONFIG",
    "ZOO_ALGORITHMS",
    "zoo_patches",
]
