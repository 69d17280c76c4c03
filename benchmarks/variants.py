"""
The algorithms the benchmarks compare, with their hyperparameters: each reads its YAML file (the
RL Zoo's, or the package's own) as the Zoo does, and a variant changes a few of them.
"""

from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule

from sb3_dueling import DuelingDQN, DuelingQRDQN, PrioritizedReplayBuffer, Rainbow
from sb3_dueling.user_input import (
    DUELING_DQN_CONFIG,
    DUELING_QRDQN_CONFIG,
    RAINBOW_CONFIG,
    evaluate_as_zoo,
    read_hyperparams_entry,
)


def zoo_folder() -> Path:
    """The RL Zoo's hyperparameter files, found without importing rl_zoo3 (about 40 MB more in each run's peak memory)."""
    spec = find_spec("rl_zoo3")
    if spec is None or spec.origin is None:
        raise ImportError("the benchmarks read the RL Zoo's hyperparameter files: pip install rl_zoo3")
    return Path(spec.origin).parent / "hyperparams"


class Hyperparameters(NamedTuple):
    """An entry of a Zoo hyperparameter file, split into what the Zoo and what the algorithm takes."""

    policy: str
    n_timesteps: int
    kwargs: dict[str, Any]


def load_hyperparameters(config: Path, env_id: str) -> Hyperparameters:
    """
    Read the entry that the Zoo uses for ``env_id`` in a Zoo hyperparameter file.

    :param config: The YAML file
    :param env_id: The environment (an Atari game reads the ``atari`` entry)
    :return: The policy, the Zoo's ``n_timesteps`` and the rest of the entry (``policy_kwargs``
        evaluated as the Zoo does)
    """
    _, entry = read_hyperparams_entry(config, env_id)
    policy, n_timesteps = entry.pop("policy"), int(entry.pop("n_timesteps"))
    if "policy_kwargs" in entry:
        entry["policy_kwargs"] = evaluate_as_zoo(entry["policy_kwargs"])
    return Hyperparameters(policy, n_timesteps, entry)


def read_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """
    Read the Zoo's ``learning_rate: lin_<initial>`` (used by its QR-DQN LunarLander entry) as the Zoo
    does: from ``initial`` down to 0 at the end of training.

    SB3's schedule rather than the Zoo's own reader: importing ``rl_zoo3.exp_manager`` (Optuna and
    more) would add about 40 MB to every run's peak memory, which the grid measures.
    """
    value = hyperparams.get("learning_rate")
    if not isinstance(value, str):
        return hyperparams
    kind, _, initial = value.partition("_")
    if kind != "lin":
        raise ValueError(f"learning_rate must be a number or 'lin_<initial value>' (a Zoo schedule), got {value!r}")
    return {**hyperparams, "learning_rate": LinearSchedule(float(initial), 0.0, 1.0)}


@dataclass(frozen=True)
class Variant:
    """
    An algorithm as benchmarked.

    :param cls: The algorithm
    :param file: Its YAML file of hyperparameters: a path, or the name of one of the RL Zoo's files (``dqn.yml``),
        found when it is read (the Zoo is needed only by the variants that read its files)
    :param kwargs: What the variant changes in them (its ``policy_kwargs`` are added to the entry's)
    """

    cls: type[BaseAlgorithm]
    file: Path | str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        """The YAML file."""
        return self.file if isinstance(self.file, Path) else zoo_folder() / self.file

    def hyperparameters(self, env_id: str, config: Path | None = None) -> Hyperparameters:
        """The entry for ``env_id`` of ``config`` (default: the variant's own file), with the variant's changes."""
        policy, n_timesteps, kwargs = load_hyperparameters(config or self.config, env_id)
        changed = {**kwargs, **self.kwargs}
        if "policy_kwargs" in self.kwargs:
            changed["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), **self.kwargs["policy_kwargs"]}
        return Hyperparameters(policy, n_timesteps, changed)


VARIANTS = {
    "DuelingDQN": Variant(DuelingDQN, DUELING_DQN_CONFIG),
    "DuelingDQN(double_q=False)": Variant(DuelingDQN, DUELING_DQN_CONFIG, {"double_q": False}),
    "DuelingDQN+PER": Variant(DuelingDQN, DUELING_DQN_CONFIG, {"replay_buffer_class": PrioritizedReplayBuffer}),
    "DQN": Variant(DQN, "dqn.yml"),
    "QRDQN": Variant(QRDQN, "qrdqn.yml"),
    "DuelingQRDQN": Variant(DuelingQRDQN, DUELING_QRDQN_CONFIG),
    # The dueling quantile network alone, with QR-DQN's own target
    "DuelingQRDQN(double_q=False)": Variant(DuelingQRDQN, DUELING_QRDQN_CONFIG, {"double_q": False}),
    "Rainbow": Variant(Rainbow, RAINBOW_CONFIG),
    # Rainbow's quantile variant, with DuelingQRDQN's number of quantiles
    "Rainbow(distribution=quantile)": Variant(
        Rainbow, RAINBOW_CONFIG, {"distribution": "quantile", "policy_kwargs": {"n_quantiles": 50}}
    ),
    # The remove-one ablation: Rainbow without each of its parts (no distribution: one Q-value, Huber loss)
    **{
        f"Rainbow({name}={value})": Variant(Rainbow, RAINBOW_CONFIG, {name: value})
        for name, value in [
            ("dueling", False),
            ("double_q", False),
            ("prioritized", False),
            ("n_steps", 1),
            ("distribution", None),
            ("noisy", False),
        ]
    },
}
