"""
What users type, read as the RL Zoo reads it and checked early with clear messages: the entries of
Zoo hyperparameter files and command-line options. The commands print a :class:`UsageError` and
exit with code 2, before anything is written.

Imports neither rl_zoo3 nor Optuna: the benchmarks read the YAML files with it and measure each
run's peak memory (``rl_zoo3.exp_manager`` alone adds about 40 MB).
"""

import importlib
import inspect
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling.arguments import constructor_arguments, did_you_mean, policy_arguments, unknown_argument
from sb3_dueling.heads import check_support
from sb3_dueling.noisy import check_sigma0
from sb3_dueling.policies import AGGREGATIONS, DuelingPolicyMixin, parse_net_arch
from sb3_dueling.quantile_policies import check_n_quantiles

HYPERPARAMS_FOLDER = Path(__file__).parent / "hyperparams"
#: For ``python -m sb3_dueling.zoo train --algo dueling_dqn`` (the default ``-conf``)
DUELING_DQN_CONFIG = HYPERPARAMS_FOLDER / "dueling_dqn.yml"
#: For ``python -m sb3_dueling.zoo train --algo dueling_qrdqn`` (the default ``-conf``)
DUELING_QRDQN_CONFIG = HYPERPARAMS_FOLDER / "dueling_qrdqn.yml"
#: For ``python -m sb3_dueling.zoo train --algo rainbow`` (the default ``-conf``)
RAINBOW_CONFIG = HYPERPARAMS_FOLDER / "rainbow.yml"
#: For the unmodified Zoo: ``python -m rl_zoo3.train --algo dqn --gym-packages sb3_dueling -conf DQN_CONFIG``
DQN_CONFIG = HYPERPARAMS_FOLDER / "dqn.yml"
#: For the unmodified Zoo: ``python -m rl_zoo3.train --algo qrdqn --gym-packages sb3_dueling -conf QRDQN_CONFIG``
QRDQN_CONFIG = HYPERPARAMS_FOLDER / "qrdqn.yml"
#: The package's hyperparameter file of each Zoo algorithm: its own algorithms, then the Zoo's run with the dueling policies
CONFIGS = {
    "dueling_dqn": DUELING_DQN_CONFIG,
    "dueling_qrdqn": DUELING_QRDQN_CONFIG,
    "rainbow": RAINBOW_CONFIG,
    "dqn": DQN_CONFIG,
    "qrdqn": QRDQN_CONFIG,
}
# Keys of a Zoo hyperparameter entry that the Zoo itself consumes (the rest go to the algorithm)
ZOO_KEYS = {
    "n_timesteps",
    "policy",
    "n_envs",
    "normalize",
    "frame_stack",
    "env_wrapper",
    "vec_env_wrapper",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
    "noise_type",
    "noise_std",
}
#: The Zoo's schedules: a number, or a string ``lin_<initial value>``, a linear schedule from it to 0
ZOO_SCHEDULES = ("learning_rate", "clip_range", "clip_range_vf", "delta_std")
#: The arguments of a categorical policy that make its support, in the order of ``check_support``
SUPPORT = ("n_atoms", "v_min", "v_max")
#: Values that the Zoo evaluates as Python when they are strings
ZOO_EVALUATED = ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs")


class UsageError(Exception):
    """Bad input on a command line or in a hyperparameter file."""


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is a registered Atari game: the Zoo's test, on the env's entry point."""
    spec = gym.envs.registry.get(env_id)
    return spec is not None and "AtariEnv" in str(spec.entry_point)


def read_hyperparams_entry(config: Path, env_id: str) -> tuple[str, dict[str, Any]]:
    """
    The entry of a Zoo hyperparameter file that the Zoo uses for ``env_id``: the env's own, else
    ``atari`` for an Atari game (registered, e.g. by importing ale_py), else ``default``.

    :param config: The YAML file
    :param env_id: The environment
    :return: The entry's name and its contents as written (``policy_kwargs`` may be a string: see
        :func:`evaluate_as_zoo`)
    """
    import yaml  # the zoo extra's

    try:
        entries = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{config} is not valid YAML: {yaml_problem(error)}") from error
    if not isinstance(entries, dict):
        raise UsageError(f"{config} must map env ids to hyperparameter entries, got a {type(entries).__name__}")
    fallback = "atari" if is_atari(env_id) else "default"
    for name in (env_id, fallback):
        if name in entries:
            if not isinstance(entries[name], dict):
                raise UsageError(f"{config}, entry {name!r} must be a mapping of hyperparameters, got {entries[name]!r}")
            return name, dict(entries[name])
    raise UsageError(f"{config} has no entry for {env_id!r} and no {fallback!r} entry")


def yaml_problem(error: Exception) -> str:
    """What PyYAML found wrong, and where (its own message spans several lines, with a copy of the line)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return problem if mark is None else f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def evaluate_as_zoo(value: Any) -> Any:
    """
    A value as the Zoo reads it where it takes Python (a YAML entry's ``policy_kwargs``, the values of
    ``-params`` and ``--env-kwargs``): a string is evaluated, with ``nn`` and ``th`` (torch) in scope.
    """
    if not isinstance(value, str):
        return value
    import torch as th
    from torch import nn

    return eval(value, {"dict": dict, "nn": nn, "th": th})


def check_env_id(env_id: str, gym_packages: Iterable[str] = ()) -> None:
    """
    :param env_id: The ``--env`` given
    :param gym_packages: Modules to import first, for the envs they register
    """
    for package in gym_packages:
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise UsageError(f"--gym-packages {package}: {error}") from error
    if env_id not in gym.envs.registry:
        hint = did_you_mean(env_id, gym.envs.registry)
        raise UsageError(f"unknown env id {env_id!r}: it is not in the Gymnasium registry{hint}")


def check_discrete_actions(env_id: str, algo: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """
    Check that ``env_id`` has the discrete actions the DQN family needs, by making it once.

    :param env_id: A registered env id
    :param algo: The algorithm's name, for the message
    :param env_kwargs: Keyword arguments of the env
    """
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except (gym.error.Error, ImportError) as error:  # a missing dependency (Box2D, ale-py...)
        raise UsageError(f"--env {env_id}: the env cannot be made: {error}") from error
    action_space = env.action_space
    env.close()
    if not isinstance(action_space, spaces.Discrete):
        raise UsageError(
            f"--env {env_id} has the action space {action_space}; {algo} needs a discrete one (Discrete(n)), "
            "as CartPole-v1, Acrobot-v1, LunarLander-v3 or the Atari games have"
        )


def check_hyperparams(algo: str, algorithm: type[BaseAlgorithm], keys: Iterable[str], where: str) -> None:
    """
    Check hyperparameter names against the algorithm's constructor and the keys the Zoo consumes.

    :param algo: The algorithm's name for the Zoo (``dueling_dqn``), for the messages
    :param algorithm: Its class
    :param keys: The names given
    :param where: Where they were given (``-params``, or a file and entry), for the messages
    """
    allowed = ZOO_KEYS | (constructor_arguments(algorithm, ("env",)) or set())
    of_policy = set().union(*(policy_arguments(policy) or () for policy in algorithm.policy_aliases.values()))
    example = '-params policy_kwargs:"dict({key}=...)"' if where == "-params" else 'policy_kwargs: "dict({key}=...)"'
    problem = unknown_argument(keys, allowed, f"a hyperparameter of {algo}", of_policy, example)
    if problem is not None:
        raise UsageError(f"{where}: {problem}")


def check_hyperparam_values(algo: str, algorithm: type[BaseAlgorithm], hyperparams: dict[str, Any], where: str) -> None:
    """
    Check the values of hyperparameters against the types of the algorithm's constructor, as the Zoo
    passes them: a schedule such as ``learning_rate`` may also be the Zoo's ``lin_<initial value>``, and the
    values the Zoo evaluates as Python (``policy_kwargs``...) may be strings.

    :param algo: The algorithm's name for the Zoo (``dueling_dqn``), for the messages
    :param algorithm: Its class
    :param hyperparams: The hyperparameters (a YAML entry, or the evaluated ``-params``)
    :param where: Where they were given, for the messages
    """
    # The annotations as objects (typing.get_type_hints fails on SB3's forward references): a string is not checked
    parameters = inspect.signature(algorithm).parameters.values()
    hints = {p.name: p.annotation for p in parameters if p.annotation is not inspect.Parameter.empty}
    for key, value in hyperparams.items():
        if key in ZOO_SCHEDULES and isinstance(value, str):
            prefix, _, initial = value.partition("_")
            if prefix != "lin" or not is_float(initial):
                raise UsageError(
                    f"{where}: {key} must be a number or 'lin_<initial value>' (a linear schedule to 0, "
                    f"as in lin_0.001), got {value!r}{yaml_float_hint(value)}"
                )
        elif key not in ZOO_EVALUATED and key in hints:
            choices = accepted_values(hints[key])
            if choices is not None and value not in choices:
                raise UsageError(f"{where}: {key} must be one of {list(choices)}, got {value!r}")
            classes = accepted_types(hints[key])
            if classes is not None and not is_instance(value, classes):
                names = " or ".join("None" if cls is type(None) else cls.__name__ for cls in classes)
                raise UsageError(f"{where}: {key} must be {names}, got {value!r}{yaml_float_hint(value)}")


def union_members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union annotation (``int | None``: int, NoneType); any other annotation alone."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return typing.get_args(annotation) if union else (annotation,)


def accepted_types(annotation: Any) -> tuple[type, ...] | None:
    """The classes of an annotation (``int | tuple[int, str]``: int, tuple); ``None`` when it is not only classes."""
    classes = tuple(typing.get_origin(member) or member for member in union_members(annotation))
    return classes if all(isinstance(cls, type) for cls in classes) else None


def accepted_values(annotation: Any) -> tuple[Any, ...] | None:
    """The values of an annotation of literals (``Literal["a", "b"] | None``: a, b, None); ``None`` for any other."""
    members = union_members(annotation)
    if not any(typing.get_origin(member) is typing.Literal for member in members):
        return None
    values: list[Any] = []
    for member in members:
        if member is type(None):
            values.append(None)
        elif typing.get_origin(member) is typing.Literal:
            values.extend(typing.get_args(member))
        else:
            return None
    return tuple(values)


def is_instance(value: Any, classes: tuple[type, ...]) -> bool:
    """Whether ``value`` is of ``classes`` as YAML writes them: a float may be an int, a tuple a list; a bool is no int."""
    if isinstance(value, bool):
        return bool in classes
    return isinstance(value, (*classes, *((int,) if float in classes else ()), *((list,) if tuple in classes else ())))


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def yaml_float_hint(value: Any) -> str:
    """A hint for a number in exponent notation without a dot, which YAML reads as a string (``1e-4``)."""
    if isinstance(value, str) and is_float(value) and "e" in value.lower() and "." not in value:
        return f" (YAML reads {value} as a string: write {value.lower().replace('e', '.0e', 1)})"
    return ""


def check_policy(algo: str, algorithm: type[BaseAlgorithm], entry: dict[str, Any], where: str) -> None:
    """
    Check an entry's ``policy`` name, the keys of its ``policy_kwargs`` against that policy's
    constructor, and the values of the dueling options.

    :param algo: The algorithm's name for the Zoo (``dueling_dqn``), for the messages
    :param algorithm: Its class
    :param entry: The hyperparameters (a YAML entry, or the ``-params``)
    :param where: Where they were given, for the messages
    """
    name = entry.get("policy", "MlpPolicy")
    if isinstance(name, str) and name not in algorithm.policy_aliases:
        raise UsageError(
            f"{where}: {name!r} is not a policy of {algo}{did_you_mean(name, algorithm.policy_aliases)}; "
            f"choose from {', '.join(algorithm.policy_aliases)}"
        )
    policy = algorithm.policy_aliases.get(name)
    if "policy_kwargs" not in entry or policy is None:
        return
    try:
        policy_kwargs = evaluate_as_zoo(entry["policy_kwargs"])
    except Exception as error:  # eval of a user's string: any error
        raise UsageError(f"{where}: policy_kwargs {entry['policy_kwargs']!r} cannot be read: {error}") from error
    if not isinstance(policy_kwargs, dict):
        raise UsageError(f"{where}: policy_kwargs must be a dict, got {policy_kwargs!r}")
    allowed = policy_arguments(policy)
    problem = unknown_argument(policy_kwargs, allowed or policy_kwargs, f"an argument of {policy.__name__} in policy_kwargs")
    if problem is not None:
        raise UsageError(f"{where}: {problem}")
    # Rainbow's switches are also its policy's arguments: Rainbow takes them itself and passes them on
    own = sorted(set(policy_kwargs) & (constructor_arguments(algorithm, ("env",)) or set()))
    if own:
        raise UsageError(f"{where}: {own[0]!r} is a hyperparameter of {algo}: give it as one, not in policy_kwargs")
    if issubclass(policy, DuelingPolicyMixin):
        check_dueling_values(policy, policy_kwargs, where)


def check_dueling_values(policy: type[DuelingPolicyMixin], policy_kwargs: dict[str, Any], where: str) -> None:
    """
    The values of a dueling policy's ``aggregation``, ``net_arch``, for a quantile policy ``n_quantiles``, for
    Rainbow's ``n_atoms``, ``v_min``, ``v_max`` (with the policy's defaults for those not given) and ``sigma0``
    (the rest is checked when the model is built).
    """
    aggregation = policy_kwargs.get("aggregation", AGGREGATIONS[0])
    if aggregation not in AGGREGATIONS:
        raise UsageError(f"{where}: policy_kwargs aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    try:
        if policy_kwargs.get("net_arch") is not None:
            parse_net_arch(policy_kwargs["net_arch"])
        # Only the policies that take these have them in policy_kwargs (checked before)
        if "n_quantiles" in policy_kwargs:
            check_n_quantiles(policy_kwargs["n_quantiles"])
        if any(name in policy_kwargs for name in SUPPORT):
            defaults = inspect.signature(policy).parameters
            check_support(*(policy_kwargs.get(name, defaults[name].default) for name in SUPPORT))
        if "sigma0" in policy_kwargs:
            check_sigma0(policy_kwargs["sigma0"])
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: policy_kwargs {error}") from error
