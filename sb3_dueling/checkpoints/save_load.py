"""
Checkpoints that a crash cannot corrupt, and exact resume

A checkpoint is a folder ``step_<timesteps>`` holding the model (``model.zip``, SB3's format: weights,
optimizer, step and update counters, exploration schedule, the last observation), the replay buffer,
the VecNormalize statistics if any, a snapshot of the envs where they can be pickled, and the random
number generators' states. Every file is written under a temporary name, flushed, fsynced and
renamed; the folder is assembled under a temporary name and renamed whole; only then does
``manifest.json`` (written the same way) name it, with the size and SHA-256 of each file. A kill at
any moment leaves either the previous manifest or the new one, each naming complete checkpoints.

    model = DuelingDQN("MlpPolicy", "CartPole-v1")
    model.learn(1_000_000, callback=ResumableCheckpointCallback(10_000, "checkpoints"))
    # after a crash:
    model = load_checkpoint("checkpoints")
    model.learn(1_000_000 - model.num_timesteps, reset_num_timesteps=False)  # or resume_training(...)
"""

import hashlib
import importlib
import json
import os
import pickle
import random
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import stable_baselines3
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecCheckNan, VecEnv, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

import sb3_dueling
from sb3_dueling.checkpoints.errors import CheckpointError, model_file_errors

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL, REPLAY_BUFFER, VEC_NORMALIZE, ENVS, STATE = (
    "model.zip",
    "replay_buffer.pkl",
    "vecnormalize.pkl",
    "envs.pkl",
    "state.pkl",
)
PREFIX = "step_"


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry is data of the directory)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` through a temporary file in the same folder (``write`` gets its path): fsynced, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _pickler(obj: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as file:
            pickle.dump(obj, file, pickle.HIGHEST_PROTOCOL)

    return write


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "cuda": th.cuda.get_rng_state_all() if th.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if state["cuda"] and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


def _find_vec_normalize(env: VecEnv) -> VecNormalize | None:
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize):
            return env
        env = env.venv
    return None


def _env_snapshot(env: VecEnv | None) -> bytes | None:
    """The envs, pickled, where that captures them whole (not across processes, files or VecNormalize)."""
    if env is None or _find_vec_normalize(env) is not None:  # VecNormalize does not pickle the envs it wraps
        return None
    if isinstance(env, VecCheckNan):  # a guard that does not pickle; DuelingDQN(check_finite=True) adds it again
        env = env.venv
    try:
        return cloudpickle.dumps(env)
    except Exception:  # subprocess envs, open files (Monitor logs), emulators: resumed with a reset instead
        return None


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    """The checkpoints the manifest names, oldest first (none if there is no manifest yet)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["checkpoints"]
        version = manifest["format"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(path, f"not a valid checkpoint manifest ({error})") from error
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"written in checkpoint format {version}; this sb3_dueling reads format {FORMAT_VERSION}")
    return entries


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
        buffer = getattr(model, "replay_buffer", None)
        if save_replay_buffer and isinstance(model, OffPolicyAlgorithm) and buffer is not None:
            write_atomically(staging / REPLAY_BUFFER, _pickler(buffer))
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            write_atomically(staging / VEC_NORMALIZE, _pickler(vec_normalize))
        envs = _env_snapshot(model.get_env())
        if envs is not None:
            write_atomically(staging / ENVS, lambda path: path.write_bytes(envs))
        state = {
            "format": FORMAT_VERSION,
            "algorithm": f"{type(model).__module__}:{type(model).__qualname__}",
            "num_timesteps": model.num_timesteps,
            "versions": {"sb3_dueling": sb3_dueling.__version__, "stable_baselines3": stable_baselines3.__version__},
            "rng": _rng_state(),
            # Random actions come from the model's action space, which SB3's load() seeds anew
            "action_space_rng": model.action_space.np_random.bit_generator.state,
        }
        write_atomically(staging / STATE, _pickler(state))
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
    manifest = {"format": FORMAT_VERSION, "checkpoints": kept}
    write_atomically(folder / MANIFEST, lambda path: path.write_text(json.dumps(manifest, indent=1)))
    # Only now, with the manifest naming the new checkpoint, may older ones go
    names = {entry["name"] for entry in kept}
    for path in folder.iterdir():
        if path.is_dir() and ((path.name.startswith(PREFIX) and path.name not in names) or path.name.endswith(".tmp")):
            shutil.rmtree(path, ignore_errors=True)
    return folder / name


def verify_checkpoint(folder: Path, entry: dict[str, Any]) -> Path:
    """Check that every file of a manifest entry is there, whole and unchanged; return its folder."""
    checkpoint = Path(folder) / entry["name"]
    for name, expected in entry["files"].items():
        path = checkpoint / name
        if not path.exists():
            raise CheckpointError(path, "missing")
        found = file_digest(path)
        if found["size"] != expected["size"]:
            raise CheckpointError(path, f"truncated or extended: {found['size']} bytes, {expected['size']} expected")
        if found["sha256"] != expected["sha256"]:
            raise CheckpointError(path, "corrupted: its SHA-256 differs from the manifest's")
    return checkpoint


def find_latest_checkpoint(folder: Path | str) -> Path | None:
    """
    The newest complete checkpoint in ``folder`` (every file verified against the manifest).

    A damaged newer checkpoint is skipped with a warning that names the file; ``None`` if there is none
    yet. Raises ``CheckpointError`` when there are checkpoints but none is intact.
    """
    entries = read_manifest(Path(folder))
    problems = []
    for entry in reversed(entries):
        try:
            return verify_checkpoint(Path(folder), entry)
        except CheckpointError as error:
            problems.append(str(error))
            warnings.warn(f"skipping a damaged checkpoint: {error}", stacklevel=2)
    if problems:
        raise CheckpointError(Path(folder) / MANIFEST, "no intact checkpoint: " + "; ".join(problems))
    return None


def _load_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            return pickle.load(file)
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
    """``cls.load(path, **kwargs)``, with a clear error for a truncated, corrupted or foreign file."""
    with model_file_errors(path, cls.__name__):
        return cls.load(path, **kwargs)


def load_checkpoint(path: Path | str, env: VecEnv | None = None, device: th.device | str = "auto") -> BaseAlgorithm:
    """
    Load a checkpoint to continue training: the model, its replay buffer, the VecNormalize statistics,
    the envs (when they were saved; else ``env`` is used and reset) and the random number generators.

    :param path: a checkpoint folder with a manifest (its newest complete checkpoint is taken), or one
        ``step_*`` checkpoint inside it
    :param env: the envs to continue in; needed only when the checkpoint holds no snapshot of them
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

    exact = env is None and (path / ENVS).exists()
    if exact:
        env = _load_pickle(path / ENVS)
    elif env is None:
        raise CheckpointError(path, "holds no snapshot of the envs: pass the envs to continue in as env=...")
    elif (path / VEC_NORMALIZE).exists():
        saved = _load_pickle(path / VEC_NORMALIZE)
        existing = _find_vec_normalize(env)
        if existing is None:
            saved.set_venv(env)
            env = saved
        else:  # the envs are normalized already (the Zoo's `normalize: true`): give them the saved statistics
            existing.obs_rms, existing.ret_rms = saved.obs_rms, saved.ret_rms
    # With the envs restored, the episode in progress goes on from the saved last observation
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
    _set_rng_state(state["rng"])
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    return model


def resume_training(
    folder: Path | str,
    total_timesteps: int,
    save_freq: int,
    keep: int = 3,
    env: VecEnv | None = None,
    callback: BaseCallback | list[BaseCallback] | None = None,
    **learn_kwargs: Any,
) -> BaseAlgorithm:
    """
    Continue the run checkpointed in ``folder`` until ``total_timesteps`` in all (the same total as the
    first call, so that the schedules stay the same), checkpointing on into the same folder.

    :param folder: the checkpoint folder
    :param total_timesteps: the run's total number of env steps
    :param save_freq: env steps between checkpoints from here on
    :param keep: how many checkpoints to keep
    :param env: the envs, if the checkpoint holds none
    :param callback: more callbacks
    :return: the trained model
    """
    model = load_checkpoint(folder, env=env)
    callbacks = callback if isinstance(callback, list) else [] if callback is None else [callback]
    checkpoints = ResumableCheckpointCallback(save_freq, folder, keep=keep)
    remaining = max(total_timesteps - model.num_timesteps, 0)
    return model.learn(remaining, callback=[checkpoints, *callbacks], reset_num_timesteps=False, **learn_kwargs)


class ResumableCheckpointCallback(BaseCallback):
    """
    Save a complete, crash-safe checkpoint (see ``save_checkpoint``) every ``save_freq`` env steps and
    at the end of training, keeping the newest ``keep``.

    Checkpoints are taken between rollouts, after the training step that ends one rollout and before
    the next begins, so that a resumed run repeats exactly what the uninterrupted one does next.

    :param save_freq: env steps between checkpoints (counted over all envs, like ``num_timesteps``)
    :param save_path: the checkpoint folder
    :param keep: how many checkpoints to keep
    :param save_replay_buffer: save the replay buffer too (needed to resume exactly)
    :param verbose: 1 to print each checkpoint's path
    """

    def __init__(
        self, save_freq: int, save_path: Path | str, keep: int = 3, save_replay_buffer: bool = True, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"save_freq must be a positive integer (env steps), got {save_freq!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, got {keep!r}")
        self.save_freq = save_freq
        self.save_path = Path(save_path)
        self.keep = keep
        self.save_replay_buffer = save_replay_buffer
        self.next_save = save_freq

    def _init_callback(self) -> None:
        read_manifest(self.save_path)  # fail now, not after the first save_freq steps, on a foreign manifest
        self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _save(self) -> None:
        path = save_checkpoint(self.model, self.save_path, self.keep, self.save_replay_buffer)
        if self.verbose >= 1:
            print(f"Saved checkpoint {path}")

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_save:
            self._save()
            self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._save()
