"""Save/load round trips: in a fresh process, with both classes, and policy-only; clear errors for bad files."""

import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from sb3_dueling import DuelingDQN, DuelingDQNPolicy
from sb3_dueling.checkpoints import CheckpointError
from tests.conftest import SMALL_SETTINGS as SMALL

POLICY_KWARGS = dict(net_arch=dict(shared=[32], value=[16]), aggregation="max", shared_gradient_scale=0.5)

# Runs in a fresh interpreter: nothing imported here beforehand, so unpickling the saved policy
# class must import sb3_dueling by itself.
LOAD_AND_PREDICT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch as th
    from stable_baselines3 import DQN
    from sb3_dueling import DuelingDQN

    path, loader, out = sys.argv[1:]
    model = {"DQN": DQN, "DuelingDQN": DuelingDQN}[loader].load(path, device="cpu")
    obs = np.load(out + ".obs.npy")
    actions, _ = model.predict(obs, deterministic=True)
    with th.no_grad():
        q_values = model.q_net(th.as_tensor(obs)).numpy()
    np.savez(out, actions=actions, q_values=q_values, policy=type(model.policy).__name__,
             double_q=getattr(model, "double_q", None), aggregation=model.q_net.aggregation)
    """
)


@pytest.mark.parametrize("saver", ["DQN", "DuelingDQN"])
@pytest.mark.parametrize("loader", ["DQN", "DuelingDQN"])
def test_round_trip_in_fresh_process(tmp_path, saver, loader):
    if saver == "DQN":
        model = DQN("DuelingMlpPolicy", "CartPole-v1", seed=0, policy_kwargs=POLICY_KWARGS, **SMALL)
    else:
        model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, double_q=False, policy_kwargs=POLICY_KWARGS, **SMALL)
    model.learn(300)
    obs = np.stack([model.observation_space.sample() for _ in range(32)])
    actions, _ = model.predict(obs, deterministic=True)
    with th.no_grad():
        q_values = model.q_net(th.as_tensor(obs)).numpy()
    model.save(tmp_path / "model.zip")
    np.save(tmp_path / "out.obs.npy", obs)

    script = tmp_path / "load.py"
    script.write_text(LOAD_AND_PREDICT)
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "model.zip"), loader, str(tmp_path / "out")],
        check=True,
        capture_output=True,
    )
    loaded = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(loaded["actions"], actions)
    np.testing.assert_allclose(loaded["q_values"], q_values, rtol=1e-6)
    assert str(loaded["policy"]) == "DuelingDQNPolicy"
    assert str(loaded["aggregation"]) == "max"
    if saver == "DuelingDQN" and loader == "DuelingDQN":
        assert not loaded["double_q"]  # the algorithm's own setting survives too


def test_policy_save_load_rebuilds_the_network(tmp_path):
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=POLICY_KWARGS, **SMALL)
    model.policy.save(tmp_path / "policy.pth")
    policy = DuelingDQNPolicy.load(tmp_path / "policy.pth")
    assert policy.aggregation == "max" and policy.shared_gradient_scale == 0.5
    assert policy.net_arch == POLICY_KWARGS["net_arch"]
    obs = th.randn(8, 4)
    with th.no_grad():
        th.testing.assert_close(policy.q_net(obs), model.q_net(obs))


def test_continue_training_after_load(tmp_path):
    model = DuelingDQN("MlpPolicy", "CartPole-v1", seed=0, **SMALL)
    model.learn(200)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = DuelingDQN.load(tmp_path / "model", env=model.get_env())
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert loaded.replay_buffer.size() == model.replay_buffer.size()
    loaded.learn(200, reset_num_timesteps=False)
    assert loaded.num_timesteps == 400


def flip_a_bit_of_the_weights(data: bytes, path: Path) -> bytes:
    """``data`` with one bit flipped in the middle of the stored policy weights of the model zip ``path``."""
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("policy.pth")
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)  # after the local header
    flipped = bytearray(data)
    flipped[start + member.compress_size // 2] ^= 0x10
    return bytes(flipped)


def write_bad_file(folder: Path, kind: str) -> Path:
    """A model file that cannot be loaded: truncated, bit-flipped, a foreign zip or a text file."""
    model = folder / "model.zip"
    DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100).save(model)
    data = model.read_bytes()
    bad = folder / f"{kind}.zip"
    if kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "bit-flipped":
        bad.write_bytes(flip_a_bit_of_the_weights(data, model))
    elif kind == "foreign":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    else:
        bad = folder / "notes.txt"
        bad.write_text("not a model\n")
    return bad


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize(
    "kind, reason",
    [
        # SB3: "AssertionError: No data found in the saved file" (the zip found is one of the weights files)
        ("truncated", "no data or policy.pth in the zip (truncated, or a zip that SB3 did not save)"),
        # SB3: "wasn't a zip-file"
        ("bit-flipped", "its member policy.pth is damaged (a CRC-32 or header check of the zip failed)"),
        ("foreign", "no data or policy.pth in the zip (truncated, or a zip that SB3 did not save)"),
        ("text", "not an intact zip file, truncated or of another kind (File is not a zip file)"),
    ],
)
def test_load_of_a_bad_file_names_the_file(tmp_path, kind, reason):
    bad = write_bad_file(tmp_path, kind)
    with pytest.raises((AssertionError, ValueError)):  # what SB3 says
        DQN.load(bad)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match=re.escape(str(bad))) as error:
        DuelingDQN.load(bad)
    assert error.value.path == bad and "not a loadable DuelingDQN model" in error.value.problem
    assert reason in error.value.problem
    assert snapshot(tmp_path) == before  # a failed load touches nothing


@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_load_of_a_missing_file_names_it_and_is_a_file_not_found_error(tmp_path, name):
    with pytest.raises(FileNotFoundError):
        DQN.load(tmp_path / name)
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / name))) as error:
        DuelingDQN.load(tmp_path / name)
    assert isinstance(error.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []


def test_load_keeps_sb3s_errors_about_its_arguments(tmp_path):
    """A readable file with an env of other spaces: SB3's ValueError, as DQN.load raises it."""
    DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100).save(tmp_path / "model.zip")
    DQN("MlpPolicy", "CartPole-v1", buffer_size=100).save(tmp_path / "dqn.zip")
    other_env = make_vec_env("Acrobot-v1", n_envs=1)
    with pytest.raises(ValueError, match="Observation spaces do not match") as sb3_error:
        DQN.load(tmp_path / "dqn.zip", env=other_env)
    with pytest.raises(ValueError, match="Observation spaces do not match") as error:
        DuelingDQN.load(tmp_path / "model.zip", env=other_env)
    assert not isinstance(error.value, CheckpointError) and type(error.value) is type(sb3_error.value)


def test_load_reads_an_open_file_from_where_it_was(tmp_path):
    DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100, seed=0).save(tmp_path / "model.zip")
    with open(tmp_path / "model.zip", "rb") as file:
        model = DuelingDQN.load(file)
    assert isinstance(model, DuelingDQN)
