"""
Save a checkpoint, and load one to continue training

A checkpoint is a folder ``step_<timesteps>`` holding the model (``model.zip``, SB3's format: weights,
optimizer, step and update counters, exploration schedule, the last observation), the replay buffer,
the VecNormalize statistics if any, the envs (see ``env_state``) and the random number generators'
states. Each file is written atomically (``atomic_files``); the folder is assembled under a temporary
name and renamed whole; only then does the manifest name it (``manifest``). A kill at any moment
leaves either the previous manifest or the new one, each naming complete checkpoints.
"""

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.vec_env import VecEnv

import sb3_dueling
from sb3_dueling.checkpoints.atomic_files import fsync_directory, write_atomically
from sb3_dueling.checkpoints.env_state import find_vec_normalize, rebuild_envs, save_envs
from sb3_dueling.checkpoints.errors import CheckpointError, model_file_errors
from sb3_dueling.checkpoints.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    PREFIX,
    file_digest,
    find_latest_checkpoint,
    read_manifest,
    write_manifest,
)
from sb3_dueling.checkpoints.random_state import get_random_state, set_random_state

MODEL, REPLAY_BUFFER, VEC_NORMALIZE, ENVS, STATE = (
    "model.zip",
    "replay_buffer.pkl",
    "vecnormalize.pkl",
    "envs.pkl",
    "state.pkl",
)


def save_checkpoint(model: BaseAlgorithm, folder: Path | str, keep: int = 3, save_replay_buffer: bool = True) -> Path:
    """
    Save everything needed to resume training as a new checkpoint in ``folder``; keep the newest ``keep``.

    :param model: the model being trained
    :param folder: the checkpoint folder (created if needed)
    :param keep: how many checkpoints to keep (older ones are deleted once the new one is complete)
    :param save_replay_buffer: save the replay buffer (off-policy algorithms)
    :return: the new checkpoint's folder
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(folder)
    name = f"{PREFIX}{model.num_timesteps:012d}"
    if any(entry["name"] == name for entry in entries):
        return folder / name  # this step is saved already (e.g. training ended right after a periodic save)
    staging = folder / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        write_atomically(staging / MODEL, model.save)
        if save_replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            write_atomically(staging / REPLAY_BUFFER, model.save_replay_buffer)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            write_atomically(staging / VEC_NORMALIZE, lambda path: vec_normalize.save(str(path)))
        envs = save_envs(model.get_env())
        snapshot = envs.snapshot
        if snapshot is not None:
            write_atomically(staging / ENVS, lambda path: path.write_bytes(snapshot))
        state = {
            "format": FORMAT_VERSION,
            "algorithm": f"{type(model).__module__}:{type(model).__qualname__}",
            "num_timesteps": model.num_timesteps,
            "versions": {"sb3_dueling": sb3_dueling.__version__, "stable_baselines3": stable_baselines3.__version__},
            "rng": get_random_state(),
            # Random actions come from the model's action space, which SB3's load() seeds anew
            "action_space_rng": model.action_space.np_random.bit_generator.state,
            "env_specs": envs.specs,
            "envs_problem": envs.problem,
        }
        write_atomically(staging / STATE, lambda path: save_to_pkl(path, state))
        files = {path.name: file_digest(path) for path in sorted(staging.iterdir())}
        fsync_directory(staging)
        # A folder of this name that the manifest does not name is left by a crash before the manifest
        # was written (and training resumed from an older checkpoint since): nothing refers to it
        shutil.rmtree(folder / name, ignore_errors=True)
        os.replace(staging, folder / name)
        fsync_directory(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    entries = sorted(
        [*entries, {"name": name, "timesteps": model.num_timesteps, "files": files}], key=lambda e: e["timesteps"]
    )
    kept = entries[-keep:]
    write_manifest(folder, kept)
    # Only now, with the manifest naming the new checkpoint, may older ones go
    names = {entry["name"] for entry in kept}
    for path in folder.iterdir():
        if path.is_dir() and ((path.name.startswith(PREFIX) and path.name not in names) or path.name.endswith(".tmp")):
            shutil.rmtree(path, ignore_errors=True)
    return folder / name


def _load_pickle(path: Path) -> Any:
    try:
        return load_from_pkl(path)
    except Exception as error:
        raise CheckpointError(path, f"cannot be read ({type(error).__name__}: {error})") from error


def _algorithm_class(path: Path, name: str) -> type[BaseAlgorithm]:
    module, _, qualname = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as error:
        raise CheckpointError(path, f"saved by {name}, which cannot be imported here ({error})") from error
    if not (isinstance(cls, type) and issubclass(cls, BaseAlgorithm)):
        raise CheckpointError(path, f"names {name}, which is not an SB3 algorithm")
    return cls


def load_model_file(path: Path | str, cls: type[BaseAlgorithm], **kwargs: Any) -> BaseAlgorithm:
    """``cls.load(path, **kwargs)``, with a clear error for a missing, truncated, corrupted or foreign file."""
    with model_file_errors(path, cls.__name__):
        return cls.load(path, **kwargs)


def _envs_to_continue_in(path: Path, state: dict[str, Any], env: VecEnv | None) -> tuple[VecEnv, bool]:
    """The envs to continue in, and whether they are the saved ones (else they start new episodes)."""
    if env is None and (path / ENVS).exists():
        return _load_pickle(path / ENVS), True
    if env is None and state.get("env_specs"):
        return rebuild_envs(state["env_specs"]), False
    if env is None:
        problem = state.get("envs_problem") or "the envs were not saved"
        message = f"holds no snapshot of the envs ({problem}) nor a way to rebuild them"
        raise CheckpointError(path, f"{message}: pass the envs to continue in as env=...")
    if (path / VEC_NORMALIZE).exists():
        saved = _load_pickle(path / VEC_NORMALIZE)
        existing = find_vec_normalize(env)
        if existing is None:
            saved.set_venv(env)
            return saved, False
        # the envs are normalized already (the Zoo's `normalize: true`): give them the saved statistics
        existing.obs_rms, existing.ret_rms = saved.obs_rms, saved.ret_rms
    return env, False


def load_checkpoint(path: Path | str, env: VecEnv | None = None, device: th.device | str = "auto") -> BaseAlgorithm:
    """
    Load a checkpoint to continue training: the model, its replay buffer, the VecNormalize statistics,
    the envs (their snapshot, else rebuilt from their specs, else ``env``, which is reset) and the
    random number generators.

    :param path: a checkpoint folder with a manifest (its newest complete checkpoint is taken), or one
        ``step_*`` checkpoint inside it
    :param env: the envs to continue in; needed only when the checkpoint can bring back none
    :param device: where to put the networks
    :return: the model, ready for ``learn(..., reset_num_timesteps=False)``
    """
    path = Path(path)
    if (path / MANIFEST).exists():
        latest = find_latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(path / MANIFEST, "names no checkpoint")
        path = latest
    elif not (path / STATE).exists():
        raise CheckpointError(path, f"not a checkpoint folder (no {MANIFEST} or {STATE} in it)")
    state = _load_pickle(path / STATE)
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(path / STATE, f"checkpoint format {found}; this sb3_dueling reads format {FORMAT_VERSION}")
    cls = _algorithm_class(path / STATE, state["algorithm"])
    env, exact = _envs_to_continue_in(path, state, env)
    # With the saved envs, the episode in progress goes on from the saved last observation
    model = load_model_file(path / MODEL, cls, env=env, device=device, force_reset=not exact)
    if (path / REPLAY_BUFFER).exists():
        assert isinstance(model, OffPolicyAlgorithm)
        try:
            model.load_replay_buffer(path / REPLAY_BUFFER)
        except Exception as error:
            raise CheckpointError(path / REPLAY_BUFFER, f"cannot be read ({type(error).__name__}: {error})") from error
        buffer = model.replay_buffer
        if not exact and buffer is not None and (buffer.full or buffer.pos > 0):
            # The envs start new episodes: the last transition becomes a truncation (bootstrapped, as it
            # was not terminal), so that no n-step return runs from the old episode into the new one
            last = (buffer.pos - 1) % buffer.buffer_size
            buffer.timeouts[last] = np.logical_or(buffer.timeouts[last], buffer.dones[last] == 0)
    set_random_state(state["rng"])
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    return model
