"""Hyperparameters of the benchmarked algorithms, read from the RL Zoo's files and the package's own."""

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from torch import nn

import sb3_dueling


def zoo_folder() -> Path:
    """The RL Zoo's hyperparameter files, found without importing rl_zoo3 (which needs all the Zoo's dependencies)."""
    spec = find_spec("rl_zoo3")
    if spec is None or spec.origin is None:
        raise ImportError("the benchmarks read the RL Zoo's hyperparameter files: pip install rl_zoo3")
    return Path(spec.origin).parent / "hyperparams"


ZOO_FOLDER = zoo_folder()
PACKAGE_FOLDER = Path(sb3_dueling.__file__).parent / "hyperparams"


def load_entry(config: Path, env_id: str) -> tuple[int, dict[str, Any]]:
    """
    Read the entry of ``env_id`` in a Zoo hyperparameter file.

    :param config: The YAML file
    :param env_id: The environment
    :return: The Zoo's ``n_timesteps`` and the algorithm's keyword arguments (the Zoo's own keys
        removed, ``policy_kwargs`` evaluated as the Zoo does)
    """
    entry = dict(yaml.safe_load(config.read_text())[env_id])
    n_timesteps = int(entry.pop("n_timesteps"))
    entry.pop("policy", None)
    if isinstance(entry.get("policy_kwargs"), str):
        entry["policy_kwargs"] = eval(entry["policy_kwargs"], {"dict": dict, "nn": nn})  # as the Zoo does
    return n_timesteps, entry
