"""Learning tests: one small deterministic one in the default run, the CartPole goal marked slow."""

import subprocess
import sys
from pathlib import Path

import pytest
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_dueling import DuelingDQN

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("double_q", [True, False])
def test_learns_identity(double_q):
    # Reward 1 when the action repeats the observed state: a greedy policy must find it for all 4 states.
    env = IdentityEnv(dim=4, ep_length=10)
    model = DuelingDQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        learning_starts=200,
        buffer_size=5000,
        batch_size=32,
        train_freq=1,
        target_update_interval=100,
        exploration_fraction=0.3,
        exploration_final_eps=0.02,
        policy_kwargs=dict(net_arch=[32]),
        double_q=double_q,
        seed=0,
    )
    model.learn(3000)
    mean_reward, _ = evaluate_policy(model, Monitor(IdentityEnv(dim=4, ep_length=10)), n_eval_episodes=20)
    assert mean_reward >= 9.5


@pytest.mark.slow
def test_cartpole_example_reaches_475(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "cartpole.py"), "--seed", "0", "--output", str(tmp_path / "model")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in out.splitlines() if "mean return" in line]
    returns = {line.split()[0]: float(line.split("mean return ")[1].split()[0]) for line in lines}
    assert set(returns) == {"final", "best", "saved"}, out
    assert returns["best"] >= 475 and returns["saved"] >= 475, out
    assert (tmp_path / "model.zip").exists()
