"""Make the dueling policies available to stock SB3: ``DQN("DuelingMlpPolicy", env)``."""

import warnings

from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy

from sb3_dueling.policies import DuelingCnnPolicy, DuelingMlpPolicy, DuelingMultiInputPolicy, DuelingNatureCnnPolicy

DUELING_POLICIES: dict[str, type[BasePolicy]] = {
    "DuelingMlpPolicy": DuelingMlpPolicy,
    "DuelingCnnPolicy": DuelingCnnPolicy,
    "DuelingMultiInputPolicy": DuelingMultiInputPolicy,
    "DuelingNatureCnnPolicy": DuelingNatureCnnPolicy,
}


def register_dueling_policies(algorithm_class: type[DQN] = DQN) -> None:
    """
    Add the dueling policies to ``algorithm_class.policy_aliases``.

    Idempotent, and an alias that is already there is never overwritten (a warning says so
    when it names another policy).

    :param algorithm_class: SB3's ``DQN`` or a subclass with its own ``policy_aliases``
    """
    for name, policy_class in DUELING_POLICIES.items():
        registered = algorithm_class.policy_aliases.setdefault(name, policy_class)
        if registered is not policy_class:
            warnings.warn(
                f"{algorithm_class.__name__}.policy_aliases[{name!r}] is already {registered!r}; "
                f"sb3_dueling left it as it is.",
                stacklevel=2,
            )
