"""
RL Baselines3 Zoo support: the ``dueling_dqn`` algorithm, its Optuna sampler, and the
hyperparameter files. Needs the ``zoo`` extra (``pip install sb3_dueling[zoo]``).

    python -m sb3_dueling.zoo train --algo dueling_dqn --env CartPole-v1
"""

from pathlib import Path

from rl_zoo3 import exp_manager, hyperparams_opt, utils

from sb3_dueling.buffers import PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.dueling_dqn import DuelingDQN
from sb3_dueling.zoo.sampler import convert_dueling_dqn_params, sample_dueling_dqn_params

ALGO = "dueling_dqn"
HYPERPARAMS_FOLDER = Path(__file__).parents[1] / "hyperparams"
#: For ``python -m sb3_dueling.zoo train --algo dueling_dqn`` (the default ``-conf``)
DUELING_DQN_CONFIG = HYPERPARAMS_FOLDER / "dueling_dqn.yml"
#: For the unmodified Zoo: ``python -m rl_zoo3.train --algo dqn --gym-packages sb3_dueling -conf DQN_CONFIG``
DQN_CONFIG = HYPERPARAMS_FOLDER / "dqn.yml"


def register_zoo() -> None:
    """Add ``dueling_dqn`` to the Zoo's tables of algorithms, samplers and converters (idempotent)."""
    utils.ALGOS.setdefault(ALGO, DuelingDQN)
    hyperparams_opt.HYPERPARAMS_SAMPLER.setdefault(ALGO, sample_dueling_dqn_params)
    hyperparams_opt.HYPERPARAMS_CONVERTER.setdefault(ALGO, convert_dueling_dqn_params)
    # The Zoo evaluates a YAML `replay_buffer_class` string in its exp_manager module (as it does for
    # HerReplayBuffer): our buffers must be names there
    for buffer_class in (PrioritizedReplayBuffer, PrioritizedDictReplayBuffer):
        vars(exp_manager).setdefault(buffer_class.__name__, buffer_class)


__all__ = ["ALGO", "DQN_CONFIG", "DUELING_DQN_CONFIG", "register_zoo"]
