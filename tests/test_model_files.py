"""Model files: checked without unpickling anything, custom_objects honoured, other algorithms' files named."""

import base64
import json
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sb3_contrib import QRDQN
from stable_baselines3 import DQN

from sb3_dueling import DuelingDQN, DuelingDQNPolicy, DuelingQRDQN
from sb3_dueling.checkpoints import CheckpointError, load_model_file

ALGORITHMS = {algorithm.__name__: algorithm for algorithm in (DuelingDQN, DuelingQRDQN, DQN, QRDQN)}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """A small saved model of each algorithm, by name."""
    folder = tmp_path_factory.mktemp("models")
    files = {}
    for name, algorithm in ALGORITHMS.items():
        files[name] = folder / f"{name}.zip"
        algorithm("MlpPolicy", "CartPole-v1", buffer_size=100).save(files[name])
    return files


def with_entry(model: Path, out: Path, key: str, pickled: bytes) -> Path:
    """A copy of the model file ``model`` whose ``data`` entry ``key`` is the pickle ``pickled``, as SB3 stores one."""
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(out, "w") as copy:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "data":
                data = json.loads(content)
                data[key] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickled).decode()}
                content = json.dumps(data).encode()
            copy.writestr(member, content)
    return out


class CreatesAFile:
    """Unpickling it runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("loader", [DuelingDQN, DQN])
def test_an_entry_replaced_through_custom_objects_is_never_unpickled(tmp_path, model_files, loader):
    marker = tmp_path / "unpickled"
    model = with_entry(model_files["DuelingDQN"], tmp_path / "model.zip", "lr_schedule", pickle.dumps(CreatesAFile(marker)))
    loaded = loader.load(model, custom_objects={"lr_schedule": lambda _: 1e-3})
    assert isinstance(loaded, loader)
    assert not marker.exists()
    loader.load(model)  # the payload is live: without custom_objects, SB3's load runs it
    assert marker.exists()


def test_an_entry_that_cannot_be_imported_can_be_replaced_through_custom_objects(tmp_path, model_files):
    """SB3's documented way round a class that is gone (here: policy_class)."""
    model = with_entry(model_files["DuelingDQN"], tmp_path / "model.zip", "policy_class", b"cno_such_module\nGone\n.")
    for loader in (DQN, DuelingDQN):
        assert isinstance(loader.load(model, custom_objects={"policy_class": DuelingDQNPolicy}).policy, DuelingDQNPolicy)
    with pytest.raises(ModuleNotFoundError):
        DQN.load(model)
    with pytest.raises(CheckpointError, match=re.escape(f"{model}: not a loadable DuelingDQN model: ModuleNotFoundError")):
        DuelingDQN.load(model)


DUELING_QRDQN_POLICY = "sb3_dueling.quantile_policies.DuelingQRDQNPolicy"
DUELING_DQN_POLICY = "sb3_dueling.policies.DuelingDQNPolicy"
DQN_POLICY = "stable_baselines3.dqn.policies.DQNPolicy"
QRDQN_POLICY = "sb3_contrib.qrdqn.policies.QRDQNPolicy"


@pytest.mark.parametrize(
    "loader, saver, message",
    [
        ("DuelingDQN", "DuelingQRDQN",
         f"a DuelingQRDQN model (its policy is {DUELING_QRDQN_POLICY}), not a DuelingDQN one: "
         "load it with DuelingQRDQN.load or QRDQN.load"),
        ("DuelingQRDQN", "DuelingDQN",
         f"a DuelingDQN model (its policy is {DUELING_DQN_POLICY}), not a DuelingQRDQN one: "
         "load it with DuelingDQN.load or DQN.load"),
        ("DuelingDQN", "DQN", f"a DQN model (its policy is {DQN_POLICY}), not a DuelingDQN one: load it with DQN.load"),
        ("DuelingDQN", "QRDQN",
         f"a QRDQN model (its policy is {QRDQN_POLICY}), not a DuelingDQN one: load it with QRDQN.load"),
        ("DuelingQRDQN", "QRDQN",
         f"a QRDQN model (its policy is {QRDQN_POLICY}), not a DuelingQRDQN one: load it with QRDQN.load"),
        ("DuelingQRDQN", "DQN", f"a DQN model (its policy is {DQN_POLICY}), not a DuelingQRDQN one: load it with DQN.load"),
    ],
)  # fmt: skip
def test_a_model_of_another_algorithm_names_it_and_its_load(model_files, loader, saver, message):
    with pytest.raises(CheckpointError) as error:
        ALGORITHMS[loader].load(model_files[saver])
    assert error.value.path == model_files[saver] and error.value.problem == message
    with pytest.raises(CheckpointError, match=re.escape(message)):  # the checkpoints' path says the same
        load_model_file(model_files[saver], ALGORITHMS[loader])
    assert isinstance(ALGORITHMS[saver].load(model_files[saver]), ALGORITHMS[saver])


def test_a_zip_without_the_entries_sb3_needs_names_them(tmp_path, model_files):
    model = tmp_path / "model.zip"
    with zipfile.ZipFile(model_files["DuelingDQN"]) as source, zipfile.ZipFile(model, "w") as copy:
        for member in source.infolist():
            copy.writestr(member, b'{"verbose": 0}' if member.filename == "data" else source.read(member))
    with pytest.raises(CheckpointError, match="its data member lacks policy_class, observation_space, action_space"):
        DuelingDQN.load(model)


def test_the_learners_import_no_checkpoint_code():
    """The learners' load uses a low-level module: importing them does not import the checkpoint package."""
    script = (
        "import sys, sb3_dueling.training, sb3_dueling\n"
        "assert not [name for name in sys.modules if name.startswith('sb3_dueling.checkpoints')], sys.modules.keys()\n"
        "import sb3_dueling.checkpoints as checkpoints, sb3_dueling.model_files as model_files\n"
        "names = ('CheckpointError', 'MissingCheckpointFileError', 'check_model_file', 'model_file_errors')\n"
        "assert all(getattr(checkpoints, name) is getattr(model_files, name) for name in names)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
