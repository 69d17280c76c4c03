"""
RL Baselines3 Zoo support: the ``dueling_dqn`` algorithm, its Optuna sampler, and the
hyperparameter files. Needs the ``zoo`` extra (``pip install sb3_dueling[zoo]``).

    python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1
"""

from sb3_dueling.user_input import DQN_CONFIG, DUELING_DQN_CONFIG
from sb3_dueling.zoo.patches import ALGO, zoo_patches

__all__ = ["ALGO", "DQN_CONFIG", "DUELING_DQN_CONFIG", "zoo_patches"]
