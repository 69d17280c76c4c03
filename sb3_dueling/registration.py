"""
Make the dueling policies available to stock SB3 and sb3-contrib: ``DQN("DuelingMlpPolicy", env)``,
``QRDQN("DuelingMlpPolicy", env)``.
"""

import warnings

from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_dueling.policies import DuelingCnnPolicy, DuelingMlpPolicy, DuelingMultiInputPolicy, DuelingNatureCnnPolicy
from sb3_dueling.quantile_policies import (
    DuelingQRDQNCnnPolicy,
    DuelingQRDQNMlpPolicy,
    DuelingQRDQNMultiInputPolicy,
    DuelingQRDQNNatureCnnPolicy,
)

DUELING_POLICIES: dict[str, type[BasePolicy]] = {
    "DuelingMlpPolicy": DuelingMlpPolicy,
    "DuelingCnnPolicy": DuelingCnnPolicy,
    "DuelingMultiInputPolicy": DuelingMultiInputPolicy,
    "DuelingNatureCnnPolicy": DuelingNatureCnnPolicy,
}
#: The same names for QR-DQN
DUELING_QUANTILE_POLICIES: dict[str, type[BasePolicy]] = {
    "DuelingMlpPolicy": DuelingQRDQNMlpPolicy,
    "DuelingCnnPolicy": DuelingQRDQNCnnPolicy,
    "DuelingMultiInputPolicy": DuelingQRDQNMultiInputPolicy,
    "DuelingNatureCnnPolicy": DuelingQRDQNNatureCnnPolicy,
}


def dueling_policies_of(algorithm_class: type[OffPolicyAlgorithm]) -> dict[str, type[BasePolicy]]:
    """
    The dueling policies that an algorithm trains, by alias.

    :param algorithm_class: SB3's ``DQN``, sb3-contrib's ``QRDQN`` or a subclass of one
    :return: :data:`DUELING_POLICIES` or :data:`DUELING_QUANTILE_POLICIES`
    """
    if issubclass(algorithm_class, QRDQN):
        return DUELING_QUANTILE_POLICIES
    if issubclass(algorithm_class, DQN):
        return DUELING_POLICIES
    raise TypeError(f"algorithm_class must be DQN, QRDQN or a subclass of one, got {algorithm_class!r}")


def register_dueling_policies(algorithm_class: type[OffPolicyAlgorithm] | None = None) -> None:
    """
    Add the dueling policies to ``algorithm_class.policy_aliases``: the dueling Q-network policies to
    SB3's ``DQN``, the dueling quantile policies to sb3-contrib's ``QRDQN``.

    Idempotent, and an alias that is already there is never overwritten (a warning says so
    when it names another policy).

    :param algorithm_class: ``DQN``, ``QRDQN`` or a subclass of one with its own ``policy_aliases``;
        ``None`` (the default): both ``DQN`` and ``QRDQN``
    """
    for algorithm in (DQN, QRDQN) if algorithm_class is None else (algorithm_class,):
        for name, policy_class in dueling_policies_of(algorithm).items():
            registered = algorithm.policy_aliases.setdefault(name, policy_class)
            if registered is not policy_class:
                warnings.warn(
                    f"{algorithm.__name__}.policy_aliases[{name!r}] is already {registered!r}; sb3_dueling left it as it is.",
                    stacklevel=2,
                )
