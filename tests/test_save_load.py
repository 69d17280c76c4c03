"""Save/load round trips: in a fresh process, with both classes, and policy-only."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN

from tests.conftest import SMALL_SETTINGS as SMALL
from sb3_dueling import DuelingDQN, DuelingDQNPolicy

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
