"""
Crash-safe checkpoints, exact resume, envs that lose their state when pickled, damaged files, a full
disk, and the non-finite guard.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_dueling import DuelingDQN, DuelingQRDQN, PrioritizedReplayBuffer
from sb3_dueling.checkpoints import (
    MANIFEST,
    CheckpointError,
    MissingCheckpointFileError,
    ResumableCheckpointCallback,
    find_latest_checkpoint,
    load_checkpoint,
    load_model_file,
    read_manifest,
    resume_training,
    save_checkpoint,
)
from sb3_dueling.checkpoints.env_state import save_envs
from tests.conftest import SMALL_SETTINGS

SMALL = dict(SMALL_SETTINGS, policy_kwargs=dict(net_arch=[32]), exploration_fraction=0.5)
#: The online network of each learner (its target network adds ``_target``)
NETWORKS = {DuelingDQN: "q_net", DuelingQRDQN: "quantile_net"}


def new_model(seed: int = 0, learner: type[DuelingDQN | DuelingQRDQN] = DuelingDQN, **kwargs) -> DuelingDQN | DuelingQRDQN:
    settings = dict(SMALL)
    if learner is DuelingQRDQN:
        settings["policy_kwargs"] = dict(SMALL["policy_kwargs"], n_quantiles=10)
    return learner("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=seed), seed=seed, **settings, **kwargs)


def test_checkpoints_are_written_and_pruned(tmp_path):
    model = new_model()
    model.learn(1000, callback=ResumableCheckpointCallback(200, tmp_path, keep=2))
    entries = read_manifest(tmp_path)
    assert [entry["timesteps"] for entry in entries] == [800, 1000]  # every 200 steps and at the end, newest 2 kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "step_000000000800", "step_000000001000"]
    assert set(entries[-1]["files"]) == {"model.zip", "replay_buffer.pkl", "envs.pkl", "state.pkl"}
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000000001000"


def snapshot(model) -> dict:
    buffer = model.replay_buffer
    return {
        "counters": (model.num_timesteps, model._n_updates, model._n_calls, model._episode_num, model.exploration_rate),
        "buffer": [getattr(buffer, name).copy() for name in ("observations", "actions", "rewards", "dones", "timeouts")],
        "position": (buffer.pos, buffer.full),
        "parameters": [p.detach().clone() for p in model.policy.parameters()],
    }


@pytest.mark.parametrize("learner", NETWORKS)
@pytest.mark.parametrize("buffer_class", [None, PrioritizedReplayBuffer])
def test_resume_is_exact(tmp_path, buffer_class, learner):
    """
    Guaranteed (CPU, one process, envs that pickle): a run interrupted at a checkpoint and resumed gives
    the same step and update counters, exploration rate, replay buffer (contents and priorities) and
    network parameters as the uninterrupted run. Not guaranteed: the same on GPU (non-deterministic
    kernels), or with envs that cannot be pickled (they restart their episode on resume).
    """
    kwargs = dict(learner=learner, replay_buffer_class=buffer_class, n_steps=3)
    uninterrupted = new_model(**kwargs)
    uninterrupted.learn(1200, callback=ResumableCheckpointCallback(600, tmp_path / "a", keep=5))
    expected = snapshot(uninterrupted)

    interrupted = new_model(**kwargs)
    interrupted.learn(1200, callback=ResumableCheckpointCallback(600, tmp_path / "b", keep=5))
    # a crash right after the checkpoint at step 600: everything after it is lost
    for entry in read_manifest(tmp_path / "b")[1:]:
        (tmp_path / "b" / entry["name"] / "model.zip").unlink()
    with pytest.warns(UserWarning, match="skipping a damaged checkpoint"):
        resumed = resume_training(tmp_path / "b", total_timesteps=1200, save_freq=600)
    assert type(resumed) is learner
    got = snapshot(resumed)
    assert got["counters"] == expected["counters"] and got["position"] == expected["position"]
    for got_array, expected_array in zip(got["buffer"], expected["buffer"], strict=True):
        np.testing.assert_array_equal(got_array, expected_array)
    for got_param, expected_param in zip(got["parameters"], expected["parameters"], strict=True):
        th.testing.assert_close(got_param, expected_param, rtol=0, atol=0)
    if buffer_class is not None:
        np.testing.assert_array_equal(resumed.replay_buffer.tree.levels[0], uninterrupted.replay_buffer.tree.levels[0])


def test_resume_with_vec_normalize_restarts_episodes(tmp_path):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = DuelingDQN("MlpPolicy", env, seed=0, **SMALL)
    model.learn(400, callback=ResumableCheckpointCallback(200, tmp_path))
    assert "envs.pkl" not in read_manifest(tmp_path)[-1]["files"]  # VecNormalize does not pickle its envs
    with pytest.raises(CheckpointError, match="pass the envs"):
        load_checkpoint(tmp_path)
    resumed = load_checkpoint(tmp_path, env=make_vec_env("CartPole-v1", n_envs=2, seed=1))
    restored = resumed.get_vec_normalize_env()
    np.testing.assert_array_equal(restored.obs_rms.mean, env.obs_rms.mean)
    last = (resumed.replay_buffer.pos - 1) % resumed.replay_buffer.buffer_size
    assert np.all(resumed.replay_buffer.timeouts[last] + resumed.replay_buffer.dones[last] > 0)
    resumed.learn(200, reset_num_timesteps=False)
    assert resumed.num_timesteps >= 600


def damage(path: Path, how: str) -> None:
    """Damage a file: ``missing``, ``truncate`` (to half) or ``flip`` (a bit of one byte)."""
    if how == "missing":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        data[len(data) // 3] ^= 0x40
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip"])
@pytest.mark.parametrize("name", ["model.zip", "replay_buffer.pkl", "state.pkl"])
def test_a_damaged_checkpoint_is_named_and_the_previous_one_used(tmp_path, how, name):
    model = new_model()
    model.learn(600, callback=ResumableCheckpointCallback(200, tmp_path, keep=3))
    newest = tmp_path / read_manifest(tmp_path)[-1]["name"] / name
    damage(newest, how)
    with pytest.warns(UserWarning, match=str(newest)):
        assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000000000400"
    with pytest.warns(UserWarning):
        assert load_checkpoint(tmp_path).num_timesteps == 400
    for entry in read_manifest(tmp_path)[:-1]:  # the newest is damaged already
        damage(tmp_path / entry["name"] / name, how)
    with pytest.raises(CheckpointError, match="no intact checkpoint"), pytest.warns(UserWarning):
        load_checkpoint(tmp_path)


def test_foreign_and_incompatible_files(tmp_path):
    foreign = tmp_path / "foreign.zip"
    foreign.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"foreign\.zip: not a loadable DuelingDQN model"):
        load_model_file(foreign, DuelingDQN)
    with pytest.raises(CheckpointError, match="no such file"):
        load_model_file(tmp_path / "missing.zip", DuelingDQN)
    # a missing file is also SB3's FileNotFoundError, and a path without .zip is named as given
    with pytest.raises(FileNotFoundError, match=r"missing: no such file \(nor .*missing\.zip\)$") as raised:
        load_model_file(tmp_path / "missing", DuelingDQN)
    assert isinstance(raised.value, MissingCheckpointFileError) and raised.value.path == tmp_path / "missing"
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        load_checkpoint(tmp_path)

    model = new_model()
    model.learn(200, callback=ResumableCheckpointCallback(200, tmp_path / "run"))
    manifest = tmp_path / "run" / MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 99}))
    with pytest.raises(CheckpointError, match="format 99; this sb3_dueling reads format 1"):
        load_checkpoint(tmp_path / "run")
    manifest.write_text("{ not json")
    # its checkpoint verifies itself; but saving, which would not know what the manifest named, refuses
    with pytest.warns(UserWarning, match=r"manifest\.json: not a valid checkpoint manifest .* until it is moved aside"):
        assert load_checkpoint(tmp_path / "run").num_timesteps == 200
    # a callback refuses a folder with a foreign manifest before training starts
    with pytest.raises(CheckpointError, match="manifest"):
        new_model().learn(100, callback=ResumableCheckpointCallback(50, tmp_path / "run"))


def test_a_full_disk_loses_no_earlier_checkpoint(tmp_path, monkeypatch):
    model = new_model()
    model.learn(400, callback=ResumableCheckpointCallback(200, tmp_path))
    before = read_manifest(tmp_path)
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_disk(descriptor):
        calls["n"] += 1
        if calls["n"] == 3:  # partway through the next checkpoint
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left") as raised:
        model.learn(200, reset_num_timesteps=False, callback=ResumableCheckpointCallback(100, tmp_path))
    # the message names the file and the checkpoint; the cause is kept
    assert str(raised.value).startswith(f"{tmp_path / 'step_000000000500' / 'replay_buffer.pkl'}: cannot be written")
    assert "checkpoint step_000000000500 was not saved" in str(raised.value)
    assert raised.value.__cause__.errno == errno.ENOSPC
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert read_manifest(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, *(entry["name"] for entry in before)]  # no leftovers
    assert load_checkpoint(tmp_path).num_timesteps == 400


@pytest.mark.parametrize("learner, policy", [(DQN, "MlpPolicy"), (QRDQN, "DuelingMlpPolicy")])
def test_stock_learners_checkpoint_too(tmp_path, learner, policy):
    model = learner(policy, "CartPole-v1", seed=0, **SMALL)
    model.learn(300, callback=ResumableCheckpointCallback(100, tmp_path))
    resumed = load_checkpoint(tmp_path)
    assert type(resumed) is learner and type(resumed.policy) is type(model.policy) and resumed.num_timesteps == 300
    for got, expected in zip(resumed.policy.parameters(), model.policy.parameters(), strict=True):
        th.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [dict(save_freq=0), dict(save_freq=1.5), dict(keep=0)])
def test_bad_callback_parameters(tmp_path, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ResumableCheckpointCallback(**{"save_freq": 100, "save_path": tmp_path, **bad})


class NaNAfter(gym.Wrapper):
    """Returns a NaN observation at its `step`-th step."""

    def __init__(self, env: gym.Env, step: int) -> None:
        super().__init__(env)
        self.countdown = step

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.countdown -= 1
        if self.countdown == 0:
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


def test_guard_names_the_step_of_a_non_finite_observation(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0, wrapper_class=NaNAfter, wrapper_kwargs=dict(step=150))
    model = DuelingDQN("MlpPolicy", env, seed=0, check_finite=True, **SMALL)
    with pytest.raises(ValueError, match="non-finite value from the env at env step 150"):
        model.learn(300, callback=ResumableCheckpointCallback(100, tmp_path))
    assert load_checkpoint(tmp_path, env=make_vec_env("CartPole-v1")).num_timesteps == 100


@pytest.mark.parametrize("learner, network", NETWORKS.items())
def test_guard_stops_at_a_non_finite_loss_with_the_weights_intact(tmp_path, learner, network):
    model = new_model(learner=learner, check_finite=True)
    model.learn(300, callback=ResumableCheckpointCallback(100, tmp_path))
    online, target = getattr(model, network), getattr(model, f"{network}_target")
    weights = [p.detach().clone() for p in online.parameters()]
    with th.no_grad():
        target.advantage_net[0].bias.fill_(float("nan"))  # targets become NaN
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* at env step"):
        model.learn(200, reset_num_timesteps=False, callback=ResumableCheckpointCallback(100, tmp_path))
    for before, after in zip(weights, online.parameters(), strict=True):
        th.testing.assert_close(before, after.detach())
    assert load_checkpoint(tmp_path).num_timesteps >= 300
    with pytest.raises(TypeError, match="check_finite"):
        new_model(check_finite="yes")


TRAIN_SCRIPT = """
import sys
from sb3_dueling import DuelingDQN
from sb3_dueling.checkpoints import ResumableCheckpointCallback, find_latest_checkpoint, resume_training
from stable_baselines3.common.env_util import make_vec_env

folder, total, env_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if find_latest_checkpoint(folder) is None:
    model = DuelingDQN("MlpPolicy", make_vec_env(env_id, seed=0), seed=0, learning_starts=100, buffer_size=5000,
                       batch_size=16, train_freq=4, target_update_interval=50, policy_kwargs=dict(net_arch=[32]))
    model.learn(total, callback=ResumableCheckpointCallback(100, folder, keep=2))
else:
    model = resume_training(folder, total, save_freq=100, keep=2)
print("finished", model.num_timesteps)
"""


def newest_step(folder: Path) -> int:
    entries = read_manifest(folder)
    return int(entries[-1]["timesteps"]) if entries else 0


def kill_loop(folder: Path, total: int, kills: int, seed: int, env_id: str = "CartPole-v1") -> int:
    """
    Start training, SIGKILL it `kills` times at random moments, resume each time; return the kills survived.

    Each kill comes once the run has checkpointed a random 1-300 steps past where it started, then a
    random 0-150 ms later: anywhere in the cycle of training and saving (a save every 100 steps),
    whatever the machine's speed, so that every kill lands while training runs.
    """
    rng = random.Random(seed)
    survived = 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = folder.parent / "kill_loop.log"
    for attempt in range(kills + 1):
        target = newest_step(folder) + rng.randint(1, 300)
        with open(log, "w") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", TRAIN_SCRIPT, str(folder), str(total), env_id], env=env, stdout=output, stderr=output
            )
        if attempt == kills:
            assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
            break
        deadline = time.monotonic() + 120
        while process.poll() is None and newest_step(folder) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, f"attempt {attempt} ended by itself:\n{log.read_text()[-3000:]}"
        survived += 1
        latest = find_latest_checkpoint(folder)  # after every kill, the newest checkpoint verifies and loads
        assert latest is not None and load_checkpoint(latest).num_timesteps == int(latest.name.split("_")[1])
    final = load_checkpoint(folder)
    assert final.num_timesteps == total
    return survived


def test_training_survives_sigkill_at_random_moments(tmp_path):
    survived = kill_loop(tmp_path, total=6000, kills=8, seed=0)
    print(f"survived {survived} kills")
    assert survived == 8


def test_lunar_lander_survives_sigkill_and_resumes_without_env(tmp_path):
    """LunarLander pickles without error but comes back without its Box2D bodies: rebuilt from its spec."""
    survived = kill_loop(tmp_path, total=1500, kills=2, seed=2, env_id="LunarLander-v3")
    assert survived == 2
    assert "envs.pkl" not in read_manifest(tmp_path)[-1]["files"]


CLIPPED_REWARDS = dict(wrapper_class=gym.wrappers.ClipReward, wrapper_kwargs=dict(min_reward=-1.0, max_reward=1.0))


def test_an_env_that_loses_its_state_when_pickled_gets_no_snapshot():
    cartpole, lunar_lander = make_vec_env("CartPole-v1", n_envs=2), make_vec_env("LunarLander-v3", n_envs=2)
    cartpole.reset(), lunar_lander.reset()
    assert save_envs(cartpole).snapshot is not None and save_envs(cartpole).problem is None
    saved = save_envs(lunar_lander)
    assert saved.snapshot is None and [spec.id for spec in saved.specs] == ["LunarLander-v3"] * 2
    assert saved.problem.startswith("the envs lose their state when pickled: env.envs[0].env") and ".legs" in saved.problem
    # an extra wrapper: neither a snapshot nor a spec to rebuild from, so loading asks for env=
    wrapped = make_vec_env("LunarLander-v3", **CLIPPED_REWARDS)
    wrapped.reset()
    assert save_envs(wrapped).snapshot is None and save_envs(wrapped).specs is None


def test_lossy_envs_that_cannot_be_rebuilt_ask_for_env(tmp_path):
    env = make_vec_env("LunarLander-v3", seed=0, **CLIPPED_REWARDS)
    model = DuelingDQN("MlpPolicy", env, seed=0, **SMALL)
    model.learn(100, callback=ResumableCheckpointCallback(100, tmp_path))
    with pytest.raises(CheckpointError, match=r"lose their state when pickled.*pass the envs to continue in as env="):
        load_checkpoint(tmp_path)
    resumed = load_checkpoint(tmp_path, env=make_vec_env("LunarLander-v3", seed=1))
    resumed.learn(100, reset_num_timesteps=False)
    assert resumed.num_timesteps == 200


gym.register_envs(ale_py)
ATARI = dict(learning_starts=50, buffer_size=100, batch_size=8, train_freq=4, target_update_interval=50)


def test_atari_resumes_without_env_or_asks_for_it(tmp_path):
    """From an env id (Monitor-wrapped gym.make): rebuilt on load. Through Atari wrappers: a clear message."""
    model = DuelingDQN("CnnPolicy", "ALE/Pong-v5", seed=0, **ATARI)
    model.learn(100, callback=ResumableCheckpointCallback(100, tmp_path / "id"))
    resumed = load_checkpoint(tmp_path / "id")
    resumed.learn(100, reset_num_timesteps=False)
    assert resumed.num_timesteps >= 200 and resumed.get_env().observation_space.shape == (3, 210, 160)

    model = DuelingDQN("CnnPolicy", make_atari_env("PongNoFrameskip-v4", seed=0), seed=0, **ATARI)
    model.learn(100, callback=ResumableCheckpointCallback(100, tmp_path / "wrapped"))
    with pytest.raises(CheckpointError, match="pass the envs to continue in as env="):
        load_checkpoint(tmp_path / "wrapped")


@pytest.mark.slow
def test_training_survives_many_sigkills(tmp_path):
    survived = kill_loop(tmp_path, total=30000, kills=40, seed=1)
    print(f"survived {survived} kills")
    assert survived == 40


def test_leftovers_of_a_crash_are_set_aside_or_cleaned(tmp_path):
    model = new_model()
    model.learn(200, callback=ResumableCheckpointCallback(100, tmp_path))
    # a folder of the next checkpoint's name that the manifest does not name (copied in by hand, or left
    # by a crash before the manifest named it), and the temporaries of a killed writer and a running one
    (tmp_path / "step_000000000300").mkdir()
    (tmp_path / "step_000000000300" / "model.zip").write_bytes(b"half")
    killed = subprocess.Popen([sys.executable, "-c", ""])
    killed.wait()
    (tmp_path / f".step_000000000300.{killed.pid}.tmp").mkdir()
    (tmp_path / f".manifest.json.{killed.pid}.tmp").write_text("{")
    running = tmp_path / f".manifest.json.{os.getppid()}.tmp"
    running.write_text("{")
    model.learn(100, reset_num_timesteps=False)
    with pytest.warns(UserWarning, match=r"step_000000000300 is not named by manifest\.json .* kept as .*\.unnamed"):
        assert save_checkpoint(model, tmp_path) == tmp_path / "step_000000000300"
    assert load_checkpoint(tmp_path).num_timesteps == 300
    assert (tmp_path / "step_000000000300.unnamed" / "model.zip").read_bytes() == b"half"
    assert list(tmp_path.glob(".*.tmp")) == [running]


def test_a_lost_manifest_loses_no_checkpoint(tmp_path):
    """The README's pattern, resume else start fresh, after a sync that lost the manifest."""
    model = new_model()
    model.learn(300, callback=ResumableCheckpointCallback(100, tmp_path, keep=3))
    (tmp_path / MANIFEST).unlink()
    with pytest.warns(
        UserWarning, match=f"{tmp_path} holds no manifest.json: each checkpoint is verified by its own files.json"
    ):
        assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000000000300"
    with pytest.warns(UserWarning, match="holds no manifest.json"):
        resumed = resume_training(tmp_path, total_timesteps=500, save_freq=100, keep=1)
    assert resumed.num_timesteps == 500
    # the new manifest names the new checkpoints only, and keep prunes only those: none it did not name is deleted
    assert [entry["name"] for entry in read_manifest(tmp_path)] == ["step_000000000500"]
    assert sorted(path.name for path in tmp_path.glob("step_*")) == [f"step_000000000{n}00" for n in (1, 2, 3, 5)]
    # without a manifest nor files.json (an older sb3_dueling's checkpoint), a folder is skipped, or loaded unverified
    (tmp_path / MANIFEST).unlink()
    for path in tmp_path.glob("step_*/files.json"):
        path.unlink()
    with pytest.raises(CheckpointError, match="no intact checkpoint"), pytest.warns(UserWarning, match="cannot be verified"):
        find_latest_checkpoint(tmp_path)
    with pytest.warns(UserWarning, match="loading it unverified"):
        assert load_checkpoint(tmp_path / "step_000000000500").num_timesteps == 500


def test_a_checkpoint_given_by_itself_is_verified(tmp_path):
    model = new_model()
    model.learn(200, callback=ResumableCheckpointCallback(100, tmp_path))
    damage(tmp_path / "step_000000000200" / "replay_buffer.pkl", "flip")  # would load, with a wrong transition
    with pytest.raises(
        CheckpointError, match=r"replay_buffer\.pkl: corrupted: its SHA-256 differs from the one in the manifest"
    ):
        load_checkpoint(tmp_path / "step_000000000200")
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(
        CheckpointError, match=r"replay_buffer\.pkl: corrupted: its SHA-256 differs from the one in files\.json"
    ):
        load_checkpoint(tmp_path / "step_000000000200")
    with pytest.raises(MissingCheckpointFileError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "step_000000000300")


def draws() -> tuple[float, float, float]:
    """A draw from each global generator: Python's, NumPy's, PyTorch's."""
    return random.random(), np.random.rand(), th.rand(1).item()


def seeded_draws(seed: int) -> tuple[float, float, float]:
    random.seed(seed), np.random.seed(seed), th.manual_seed(seed)
    return draws()


def test_loading_a_checkpoint_leaves_the_global_generators_alone(tmp_path):
    model = new_model()
    model.learn(100, callback=ResumableCheckpointCallback(100, tmp_path))
    saved = draws()  # the checkpoint saved the generators' states just before these draws
    expected = seeded_draws(7)
    random.seed(7), np.random.seed(7), th.manual_seed(7)
    load_checkpoint(tmp_path)  # to evaluate it: SB3's load alone would reseed them with the model's seed
    assert draws() == expected
    load_checkpoint(tmp_path, restore_random_state=True)  # to resume
    assert draws() == saved
