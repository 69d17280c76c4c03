"""
The envs of a run, saved so that training goes on exactly where it stopped

Three ways, tried in this order:

- a snapshot: the envs pickled (cloudpickle), taken only if a pickle round trip gives back the same
  state. Some envs pickle without error yet lose their state: LunarLander's Box2D bodies come back
  as ``None`` and the next step fails deep inside Box2D. ``find_lost_state`` compares the envs with
  their round trip, attribute by attribute, and such envs get no snapshot;
- a recipe: envs exactly as SB3 builds them from an env id (a ``DummyVecEnv`` of ``Monitor``-wrapped
  ``gym.make(spec)`` envs, no other wrappers) are rebuilt from their specs; they start new episodes;
- neither (``VecNormalize``, subprocess envs, Monitor log files, extra wrappers): the user passes the
  envs to continue in as ``env=``.
"""

import functools
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv, VecNormalize, VecTransposeImage
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

# What the model adds again on load (``DuelingDQN(check_finite=True)``, image observations): not saved
READDED_WRAPPERS = (VecCheckNan, VecTransposeImage)
NAMED = (type, FunctionType, BuiltinFunctionType, ModuleType)


def find_vec_normalize(env: VecEnv) -> VecNormalize | None:
    """The ``VecNormalize`` among the wrappers of ``env``, if any."""
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize):
            return env
        env = env.venv
    return None


def _without_readded_wrappers(env: VecEnv) -> VecEnv:
    while isinstance(env, READDED_WRAPPERS):
        env = env.venv
    return env


def find_lost_state(original: Any, restored: Any, where: str = "env", seen: set[int] | None = None) -> str | None:
    """
    Where ``restored`` (``original`` pickled and loaded again) differs from ``original``, or ``None``.

    Compares what each object holds (its attributes, recursively), not what it pickles: an EzPickle
    env (LunarLander, Atari) pickles only its constructor's arguments and comes back new. An extension
    type without attributes is compared by what it pickles, which is all of it there is.

    :param original: the object that was pickled
    :param restored: what came back
    :param where: the name of ``original``, for the answer
    :param seen: ids of the objects compared already (cycles)
    :return: the attribute path of the first difference and what it is
    """
    seen = set() if seen is None else seen
    if type(original) is not type(restored):
        return f"{where} was a {type(original).__name__}, came back as a {type(restored).__name__}"
    if isinstance(original, NAMED):  # pickled by name, or by value by cloudpickle: the name must match
        same = getattr(original, "__qualname__", original) == getattr(restored, "__qualname__", restored)
    elif isinstance(original, np.ndarray):
        same = original.shape == restored.shape and np.array_equal(original, restored, original.dtype.kind in "fc")
    elif original is None or isinstance(original, (bool, int, float, complex, str, bytes, bytearray, set, frozenset)):
        same = original == restored or (original != original and restored != restored)  # NaN
    elif id(original) in seen:
        return None
    else:
        seen.add(id(original))
        return _find_lost_part(original, restored, where, seen)
    return None if same else f"{where} was {original!r}, came back as {restored!r}"


def _find_lost_part(original: Any, restored: Any, where: str, seen: set[int]) -> str | None:
    try:
        parts, parts_back = _parts(original), _parts(restored)
    except TypeError as error:  # an extension type that pickles through cloudpickle only
        return f"{where} cannot be compared ({error})"
    if list(parts) != list(parts_back):
        missing = ", ".join(label for label in parts if label not in parts_back)
        return f"{where} held {len(parts)} parts, {len(parts_back)} after the round trip (lost: {missing or 'none'})"
    for label, part in parts.items():
        lost = find_lost_state(part, parts_back[label], f"{where}{label}", seen)
        if lost is not None:
            return lost
    return None


def _parts(obj: Any) -> dict[str, Any]:
    """The parts of a container or object, by the label that follows its name in a path (``[0]``, ``.name``)."""
    if isinstance(obj, dict):
        return {f"[{key!r}]": value for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return {f"[{i}]": value for i, value in enumerate(obj)}
    if hasattr(obj, "__dict__"):
        return {f".{name}": value for name, value in vars(obj).items()}
    return {"<pickled>": _reduce(obj)}


def _reduce(obj: Any) -> tuple[Any, ...]:
    """What pickle saves of ``obj`` after its constructor: arguments, state, list and dict items."""
    reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    if isinstance(reduced, str):  # a module-level singleton
        return (reduced,)
    return tuple(list(part) if isinstance(part, Iterator) else part for part in reduced[1:])


@dataclass
class SavedEnvs:
    """
    How a checkpoint brings its envs back.

    :param snapshot: the envs, pickled, if they survive the round trip
    :param specs: else the specs to rebuild them from, if they are what SB3 builds from an env id
    :param problem: why there is no snapshot
    """

    snapshot: bytes | None = None
    specs: list[EnvSpec] | None = None
    problem: str | None = None


def save_envs(env: VecEnv | None) -> SavedEnvs:
    """A snapshot of the envs if a pickle round trip gives them back whole, else what else can be saved."""
    if env is None:
        return SavedEnvs(problem="the model had no envs")
    if find_vec_normalize(env) is not None:
        return SavedEnvs(problem="VecNormalize does not pickle the envs it wraps")
    env = _without_readded_wrappers(env)
    try:
        snapshot = cloudpickle.dumps(env)
        lost = find_lost_state(env, pickle.loads(snapshot))
    except Exception as error:  # subprocess envs, open files (Monitor logs)
        problem = f"the envs cannot be pickled ({type(error).__name__}: {error})"
    else:
        if lost is None:
            return SavedEnvs(snapshot=snapshot)
        problem = f"the envs lose their state when pickled: {lost}"
    return SavedEnvs(specs=_env_specs(env), problem=problem)


def _env_specs(env: VecEnv) -> list[EnvSpec] | None:
    """The specs of envs exactly as SB3 builds them from an env id, else ``None``."""
    if type(env) is not DummyVecEnv:
        return None
    specs = []
    for monitor in env.envs:
        if type(monitor) is not Monitor or monitor.results_writer is not None or monitor.info_keywords:
            return None
        spec = monitor.env.spec
        if spec is None or spec.additional_wrappers:  # wrapped after gym.make()
            return None
        specs.append(spec)
    return specs


def _make_monitored(spec: EnvSpec) -> gym.Env:
    return Monitor(gym.make(spec))


def rebuild_envs(specs: list[EnvSpec]) -> VecEnv:
    """New envs from the specs ``save_envs`` recorded, wrapped as SB3 wraps an env id."""
    return DummyVecEnv([functools.partial(_make_monitored, spec) for spec in specs])
