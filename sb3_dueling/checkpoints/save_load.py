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
import itertools
import os
import re
import shutil
import warnings
from collections.abc import Callable
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
from sb3_dueling.checkpoints.atomic_files import (
    fsync_directory,
    remove_stale_temporaries,
    temporary_path,
    write_atomically,
)
from sb3_dueling.checkpoints.env_state import find_vec_normalize, rebuild_envs, save_envs
from sb3_dueling.checkpoints.errors import CheckpointError, MissingCheckpointFileError, model_file_errors
from sb3_dueling.checkpoints.manifest import (
    CHECKPOINT_NAME,
    FILES,
    FORMAT_VERSION,
    MANIFEST,
    PREFIX,
    UnverifiableCheckpointError,
    file_digest,
    find_latest_checkpoint,
    manifest_entry,
    read_manifest,
    verify_checkpoint,
    write_file_list,
    write_manifest,
)
from sb3_dueling.checkpoints.random_state import get_random_state, random_state_kept, set_random_state

MODEL, REPLAY_BUFFER, VEC_NORMALIZE, ENVS, STATE = (
    "model.zip",
    "replay_buffer.pkl",
    "vecnormalize.pkl",
    "envs.pkl",
    "state.pkl",
)


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint that could not be written (a full disk): also an ``OSError``, as what caused it."""


def _non_finite_parameter(model: BaseAlgorithm) -> str | None:
    """The name of the first tensor of the policy (networks and their buffers) that holds a NaN or infinity."""
    return next((name for name, tensor in model.policy.state_dict().items() if not th.isfinite(tensor).all()), None)


def _checkpoint_files(model: BaseAlgorithm, save_replay_buffer: bool) -> dict[str, Callable[[Path], Any]]:
    """What goes into a checkpoint: each file's name, and what writes it."""
    writers: dict[str, Callable[[Path], Any]] = {MODEL: model.save}
    if save_replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        writers[REPLAY_BUFFER] = model.save_replay_buffer
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        writers[VEC_NORMALIZE] = lambda path: vec_normalize.save(str(path))
    envs = save_envs(model.get_env())
    snapshot = envs.snapshot
    if snapshot is not None:
        writers[ENVS] = lambda path: path.write_bytes(snapshot)
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
    writers[STATE] = lambda path: save_to_pkl(path, state)
    return writers


def _set_aside(checkpoint: Path, why: str) -> None:
    """Rename a checkpoint folder out of the way of a new one of its name, rather than delete it; ``why``, for the warning."""
    aside = next(
        path for n in itertools.count() if not (path := checkpoint.with_name(f"{checkpoint.name}.unnamed{n or ''}")).exists()
    )
    os.replace(checkpoint, aside)
    warnings.warn(f"{checkpoint} is {why}: a new checkpoint takes its name, it is kept as {aside}", stacklevel=3)


def save_checkpoint(model: BaseAlgorithm, folder: Path | str, keep: int = 3, save_replay_buffer: bool = True) -> Path:
    """
    Save everything needed to resume training as a new checkpoint in ``folder``; keep the newest ``keep``.

    Nothing the manifest does not name is deleted: only the checkpoints it named that fall out of
    ``keep``, and the temporaries of writers that were killed. A save that fails leaves the folder as it
    was and raises a ``CheckpointWriteError`` (also an ``OSError``) naming the file it could not write.

    :param model: the model being trained; one with a NaN or infinity in its policy is not saved (a
        ``CheckpointError`` names the tensor): the newest checkpoint stays one training can go on from
    :param folder: the checkpoint folder (created if needed)
    :param keep: how many checkpoints to keep (older ones are deleted once the new one is complete)
    :param save_replay_buffer: save the replay buffer (off-policy algorithms)
    :return: the new checkpoint's folder
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(folder)
    name = f"{PREFIX}{model.num_timesteps:012d}"
    checkpoint = folder / name
    existing = next((entry for entry in entries if entry["name"] == name), None)
    if existing is not None:
        try:
            return verify_checkpoint(checkpoint, existing)  # saved already (training ended right after a periodic save)
        except CheckpointError as error:  # damaged (training went on from an older one): saved anew
            entries.remove(existing)
            _set_aside(checkpoint, f"damaged ({error.problem})")
    non_finite = _non_finite_parameter(model)
    if non_finite is not None:
        raise CheckpointError(
            checkpoint, f"not saved: the policy's {non_finite} holds a NaN or an infinity; the earlier checkpoints are kept"
        )
    remove_stale_temporaries(folder, rf"{CHECKPOINT_NAME}|{re.escape(MANIFEST)}")
    if checkpoint.exists():
        _set_aside(checkpoint, f"not named by {MANIFEST} (left by a crash before it was)")
    staging = temporary_path(checkpoint)
    writing = checkpoint
    try:
        staging.mkdir()
        for file_name, write in _checkpoint_files(model, save_replay_buffer).items():
            writing = checkpoint / file_name
            write_atomically(staging / file_name, write)
        files = {path.name: file_digest(path) for path in sorted(staging.iterdir())}
        writing = checkpoint / FILES
        write_file_list(staging, files)
        writing = checkpoint
        fsync_directory(staging)
        os.replace(staging, checkpoint)
        fsync_directory(folder)
        writing = folder / MANIFEST
        new = {"name": name, "timesteps": model.num_timesteps, "files": files}
        kept = sorted([*entries, new], key=lambda entry: entry["timesteps"])[-keep:]
        write_manifest(folder, kept)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        saved = manifest_entry(checkpoint) is not None
        if not saved:  # nothing names it: it would fill the disk until removed by hand
            shutil.rmtree(checkpoint, ignore_errors=True)
        if not isinstance(error, OSError):
            raise
        problem = (
            f"written, but not made durable ({error}): checkpoint {name} may not survive a power cut"
            if saved
            else f"cannot be written ({error}): checkpoint {name} was not saved, the earlier checkpoints are kept"
        )
        raise CheckpointWriteError(writing, problem) from error
    # Only now, with the manifest naming the new checkpoint, may the ones it named and no longer keeps go
    names = {entry["name"] for entry in kept}
    for entry in entries:
        if entry["name"] not in names:
            shutil.rmtree(folder / entry["name"], ignore_errors=True)
    return checkpoint


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


def _checkpoint_to_load(path: Path) -> Path:
    """The checkpoint ``load_checkpoint`` takes for ``path``, verified."""
    if not path.exists():
        raise MissingCheckpointFileError(path, "no such checkpoint folder")
    if re.fullmatch(CHECKPOINT_NAME, path.name) or (path / STATE).exists():  # one checkpoint, given by itself
        try:
            return verify_checkpoint(path, manifest_entry(path))
        except UnverifiableCheckpointError as error:  # an older sb3_dueling's, which its manifest no longer names
            warnings.warn(f"loading it unverified: {error}", stacklevel=3)
            return path
    latest = find_latest_checkpoint(path)
    if latest is None:
        raise CheckpointError(path, f"not a checkpoint folder (no {PREFIX}* checkpoint, {MANIFEST} or {STATE} in it)")
    return latest


def load_checkpoint(
    path: Path | str, env: VecEnv | None = None, device: th.device | str = "auto", restore_random_state: bool = False
) -> BaseAlgorithm:
    """
    Load a checkpoint: the model, its replay buffer, the VecNormalize statistics and the envs (their
    snapshot, else rebuilt from their specs, else ``env``, which is reset). Every file is verified first
    (see ``find_latest_checkpoint``).

    :param path: a checkpoint folder (its newest intact checkpoint is taken), or one ``step_*``
        checkpoint inside it
    :param env: the envs to continue in; needed only when the checkpoint can bring back none
    :param device: where to put the networks
    :param restore_random_state: set the global random number generators (Python's, NumPy's,
        PyTorch's) to their saved states, to continue training exactly as ``resume_training`` does.
        Otherwise loading leaves them as they were.
    :return: the model, ready for ``learn(..., reset_num_timesteps=False)``
    """
    path = _checkpoint_to_load(Path(path))
    state = _load_pickle(path / STATE)
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(path / STATE, f"checkpoint format {found}; this sb3_dueling reads format {FORMAT_VERSION}")
    cls = _algorithm_class(path / STATE, state["algorithm"])
    with random_state_kept():  # SB3's load reseeds the global generators with the model's seed
        model = _load_model(path, state, cls, env, device)
    if restore_random_state:
        set_random_state(state["rng"])
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    return model


def _load_model(
    path: Path, state: dict[str, Any], cls: type[BaseAlgorithm], env: VecEnv | None, device: th.device | str
) -> BaseAlgorithm:
    """The model of a checkpoint, in its envs, with its replay buffer."""
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
    return model
