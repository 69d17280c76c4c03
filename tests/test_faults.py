"""
Fault injection for checkpoints: a kill and a full disk at every phase of a save, each file of a
checkpoint and the manifest missing, truncated or corrupted, a lost manifest, and non-finite weights
with and without the guard. After each fault the previous checkpoint still loads, nothing that was
saved is deleted, and the next save leaves no debris.
"""

import errno
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_dueling import DuelingDQN
from sb3_dueling.checkpoints import (
    MANIFEST,
    CheckpointError,
    ResumableCheckpointCallback,
    find_latest_checkpoint,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
    save_load,
)
from sb3_dueling.checkpoints.save_load import CheckpointWriteError
from tests.conftest import SMALL_SETTINGS
from tests.test_checkpoints import damage

SMALL = dict(SMALL_SETTINGS, policy_kwargs=dict(net_arch=[32]))
SAVED = ["step_000000000100", "step_000000000200"]  # what the user saved before each fault
NEW = "step_000000000300"  # the checkpoint being saved when the fault comes
FILES = ["model.zip", "replay_buffer.pkl", "envs.pkl", "state.pkl", "files.json"]
KILLED = 86  # the exit status of a save killed by a fault


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[DuelingDQN, Path]:
    """A model at step 300 and its checkpoint folder as the user has it: checkpoints at steps 100 and 200."""
    folder = tmp_path_factory.mktemp("saved") / "checkpoints"
    model = DuelingDQN("MlpPolicy", make_vec_env("CartPole-v1", seed=0), seed=0, **SMALL)
    model.learn(200, callback=ResumableCheckpointCallback(100, folder, keep=5))
    model.learn(100, reset_num_timesteps=False)
    return model, folder


def fresh_copy(saved_folder: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(saved_folder, folder)
    return folder


def latest_loads(folder: Path) -> tuple[int, str]:
    """The step of the newest intact checkpoint, which loads, and what finding it warned of."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        latest = find_latest_checkpoint(folder)
        assert latest is not None, f"{folder}: no checkpoint"
        model = load_checkpoint(folder)
    assert model.num_timesteps == int(latest.name.removeprefix("step_"))
    return model.num_timesteps, "\n".join(str(warning.message) for warning in caught)


def assert_nothing_lost(folder: Path, newest: int = 200) -> None:
    """Every checkpoint saved before the fault is still there, and the newest intact one (``newest`` steps or more) loads."""
    missing = [name for name in SAVED if not (folder / name).is_dir()]
    assert not missing, f"{folder}: {missing} deleted"
    assert latest_loads(folder)[0] >= newest


def assert_no_debris(folder: Path) -> None:
    """No temporary and no checkpoint that the manifest does not name (besides one set aside, by name)."""
    named = {entry["name"] for entry in read_manifest(folder)}
    unnamed = [path.name for path in folder.glob("step_*") if path.name not in named and not path.name.endswith(".unnamed")]
    assert not list(folder.glob(".*")) and not unnamed, sorted(path.name for path in folder.iterdir())


class Faults:
    """
    Counts the phases of a save, each a durable step (a file's or a folder's fsync, a rename) or the
    writing of a file, and calls ``fault`` at the ``at``-th (from 0) instead of going on.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int, fault: Callable[[str], None]) -> None:
        self.calls: list[str] = []
        self.at, self.fault = at, fault
        real_fsync, real_replace, real_write = os.fsync, os.replace, save_load.write_atomically
        monkeypatch.setattr(os, "fsync", lambda descriptor: self.phase("fsync", real_fsync, descriptor))
        monkeypatch.setattr(os, "replace", lambda source, target: self.phase("replace", real_replace, source, target))

        def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
            def write_then_fault(temporary: Path) -> None:
                write(temporary)  # the temporary is written, as far as a full disk lets it
                self.phase(f"write {path.name}", lambda: None)

            real_write(path, write_then_fault)

        monkeypatch.setattr(save_load, "write_atomically", write_atomically)

    def phase(self, name: str, call: Callable, *args):
        self.calls.append(name)
        if len(self.calls) - 1 == self.at:
            self.fault(name)
        return call(*args)


def full_disk(phase: str) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def kill(phase: str) -> None:
    os._exit(KILLED)


@pytest.fixture(scope="module")
def phases(saved, tmp_path_factory) -> list[str]:
    """The phases of a save without faults."""
    model, folder = saved
    with pytest.MonkeyPatch.context() as monkeypatch:
        faults = Faults(monkeypatch, -1, full_disk)
        save_checkpoint(model, fresh_copy(folder, tmp_path_factory.mktemp("phases"), "run"), keep=5)
    assert len(faults.calls) >= 20 and "write model.zip" in faults.calls
    return faults.calls


def test_a_full_disk_at_each_phase_of_a_save(saved, phases, tmp_path, monkeypatch):
    model, saved_folder = saved
    for at, phase in enumerate(phases):
        folder = fresh_copy(saved_folder, tmp_path, str(at))
        with monkeypatch.context() as patched:
            Faults(patched, at, full_disk)
            with pytest.raises(CheckpointWriteError) as raised:
                save_checkpoint(model, folder, keep=5)
        error = raised.value
        assert isinstance(error, OSError) and isinstance(error.__cause__, OSError), phase
        assert error.__cause__.errno == errno.ENOSPC and "No space left on device" in str(error), phase
        assert NEW in str(error) and str(folder) in str(error), f"{phase}: {error}"
        saved_anyway = NEW in {entry["name"] for entry in read_manifest(folder)}
        if saved_anyway:  # only the last fsync, of the folder the manifest was renamed in, comes after
            assert at == len(phases) - 1 and "not made durable" in str(error), f"{phase}: {error}"
        else:
            assert error.path.name in [*FILES, NEW, MANIFEST] and "was not saved" in str(error), f"{phase}: {error}"
        assert_nothing_lost(folder)
        assert_no_debris(folder)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked save")
def test_a_kill_at_each_phase_of_a_save(saved, phases, tmp_path, monkeypatch):
    model, saved_folder = saved
    for at, phase in enumerate(phases):
        folder = fresh_copy(saved_folder, tmp_path, str(at))
        pid = os.fork()
        if pid == 0:  # the save, killed at the phase: no exception handler, no cleanup runs
            try:
                Faults(monkeypatch, at, kill)
                save_checkpoint(model, folder, keep=5)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == KILLED, phase
        assert_nothing_lost(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a checkpoint renamed into place but not named is set aside, with a warning
            assert save_checkpoint(model, folder, keep=5) == folder / NEW  # the next save cleans up after the kill
        assert_no_debris(folder)
        assert latest_loads(folder)[0] == 300


HOW = ["missing", "truncate", "flip"]


@pytest.mark.parametrize("without_manifest", [False, True])
def test_each_file_of_a_checkpoint_damaged(saved, tmp_path, without_manifest):
    model, saved_folder = saved
    for name in FILES:
        for how in HOW:
            folder = fresh_copy(saved_folder, tmp_path, f"{name}-{how}")
            if without_manifest:
                (folder / MANIFEST).unlink()
            damage(folder / SAVED[-1] / name, how)
            step, warned = latest_loads(folder)
            # The manifest's own list is what a named checkpoint is verified by: its files.json is not used
            undetected = name == "files.json" and not without_manifest
            assert step == (200 if undetected else 100), (name, how)
            skipped = {line for line in warned.splitlines() if line.startswith("skipping") and str(folder / SAVED[-1]) in line}
            assert undetected or (len(skipped) == 1 and name in skipped.pop()), (name, how, warned)
            assert without_manifest == (f"{folder} holds no {MANIFEST}" in warned), warned
            assert_nothing_lost(folder, newest=100)
            assert save_checkpoint(model, folder, keep=5) == folder / NEW
            assert_nothing_lost(folder, newest=300)


def test_the_manifest_damaged(saved, tmp_path):
    model, saved_folder = saved
    for how in HOW:
        folder = fresh_copy(saved_folder, tmp_path, how)
        damage(folder / MANIFEST, how)
        step, warned = latest_loads(folder)
        assert step >= 200 and MANIFEST in warned, warned
        assert_nothing_lost(folder)
        if how == "missing":  # a new manifest, which names the new checkpoint only; the others are kept
            save_checkpoint(model, folder, keep=1)
            assert [entry["name"] for entry in read_manifest(folder)] == [NEW]
        else:  # which checkpoints it named, and so may be pruned, is unknown: no save until a person decides
            with pytest.raises(CheckpointError, match=f"{MANIFEST}: not a valid checkpoint manifest .* moved aside"):
                save_checkpoint(model, folder, keep=1)
        assert_nothing_lost(folder)


@pytest.mark.parametrize("check_finite", [True, False])
def test_non_finite_weights_are_never_checkpointed(tmp_path, check_finite):
    # The first gradient step, at step 100, makes the weights infinite; the checkpoint at step 50 is the last finite one
    settings = dict(SMALL, learning_starts=99, train_freq=50, learning_rate=1e38, check_finite=check_finite)
    model = DuelingDQN("MlpPolicy", make_vec_env("CartPole-v1", seed=0), seed=0, **settings)
    expected = (
        (
            FloatingPointError,
            r"non-finite weights at env step 100, gradient update 1: training stopped after the optimizer step",
        )
        if check_finite
        else (CheckpointError, r"step_000000000100: not saved: the policy's q_net\..* holds a NaN or an infinity")
    )
    with pytest.raises(expected[0], match=expected[1]):
        model.learn(300, callback=ResumableCheckpointCallback(50, tmp_path))
    assert [entry["name"] for entry in read_manifest(tmp_path)] == ["step_000000000050"]
    resumed = load_checkpoint(tmp_path)
    assert all(th.isfinite(parameter).all() for parameter in resumed.policy.parameters())
