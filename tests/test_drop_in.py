"""`import sb3_dueling` makes the dueling policies available to stock SB3 DQN and sb3-contrib QR-DQN."""

import subprocess
import sys

import pytest
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3 import DQN, PPO
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_dueling import (
    DuelingCnnPolicy,
    DuelingDQN,
    DuelingMlpPolicy,
    DuelingMultiInputPolicy,
    DuelingQRDQN,
    DuelingQRDQNCnnPolicy,
    DuelingQRDQNMlpPolicy,
    DuelingQRDQNNatureCnnPolicy,
    register_dueling_policies,
)
from sb3_dueling.policies import DuelingQNetwork
from sb3_dueling.registration import DUELING_POLICIES, DUELING_QUANTILE_POLICIES

#: Each algorithm, its stock policy and the dueling policies registered in it
ALGORITHMS = [(DQN, DQNPolicy, DUELING_POLICIES), (QRDQN, QRDQNPolicy, DUELING_QUANTILE_POLICIES)]


@pytest.mark.parametrize("algo", ["DQN", "QRDQN"])
def test_import_registers_the_aliases_in_a_fresh_process(algo):
    module = "stable_baselines3" if algo == "DQN" else "sb3_contrib"
    code = (
        f"from {module} import {algo}\n"
        f"assert 'DuelingMlpPolicy' not in {algo}.policy_aliases\n"
        "import sb3_dueling\n"
        f"print(sorted(name for name in {algo}.policy_aliases if name.startswith('Dueling')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(sorted(DUELING_POLICIES))


def test_aliases_name_the_dueling_policies():
    assert DQN.policy_aliases["DuelingMlpPolicy"] is DuelingMlpPolicy
    assert DQN.policy_aliases["DuelingCnnPolicy"] is DuelingCnnPolicy
    assert DQN.policy_aliases["DuelingMultiInputPolicy"] is DuelingMultiInputPolicy
    assert QRDQN.policy_aliases["DuelingMlpPolicy"] is DuelingQRDQNMlpPolicy
    assert QRDQN.policy_aliases["DuelingNatureCnnPolicy"] is DuelingQRDQNNatureCnnPolicy
    assert sorted(DUELING_QUANTILE_POLICIES) == sorted(DUELING_POLICIES)
    # SB3's own aliases are untouched
    assert DQN.policy_aliases["MlpPolicy"] is DQNPolicy
    assert QRDQN.policy_aliases["MlpPolicy"] is QRDQNPolicy
    # DuelingDQN and DuelingQRDQN map the plain names to the dueling policies
    assert DuelingDQN.policy_aliases["MlpPolicy"] is DuelingMlpPolicy
    assert DuelingDQN.policy_aliases["CnnPolicy"] is DuelingCnnPolicy
    assert DuelingQRDQN.policy_aliases["MlpPolicy"] is DuelingQRDQNMlpPolicy
    assert DuelingQRDQN.policy_aliases["CnnPolicy"] is DuelingQRDQNCnnPolicy
    assert DuelingQRDQN.policy_aliases["DuelingMlpPolicy"] is DuelingQRDQNMlpPolicy


@pytest.mark.parametrize("algorithm_class", [None, DQN, QRDQN])
def test_registration_is_idempotent(algorithm_class):
    before = dict(DQN.policy_aliases), dict(QRDQN.policy_aliases)
    register_dueling_policies(algorithm_class)
    register_dueling_policies(algorithm_class)
    assert (DQN.policy_aliases, QRDQN.policy_aliases) == before


@pytest.mark.parametrize("algo, stock_policy, dueling_policies", ALGORITHMS)
def test_registration_never_overwrites(algo, stock_policy, dueling_policies):
    class Other(algo):
        policy_aliases = {"DuelingMlpPolicy": stock_policy}  # noqa: RUF012

    with pytest.warns(UserWarning, match=r"Other.policy_aliases\['DuelingMlpPolicy'\] is already"):
        register_dueling_policies(Other)
    assert Other.policy_aliases["DuelingMlpPolicy"] is stock_policy
    assert Other.policy_aliases["DuelingCnnPolicy"] is dueling_policies["DuelingCnnPolicy"]


def test_registration_names_the_algorithms_it_serves():
    with pytest.raises(TypeError, match="algorithm_class must be DQN, QRDQN or a subclass"):
        register_dueling_policies(PPO)


def test_stock_dqn_builds_the_dueling_network():
    model = DQN("DuelingMlpPolicy", "CartPole-v1", buffer_size=100)
    assert isinstance(model.q_net, DuelingQNetwork)
    assert isinstance(model.q_net_target, DuelingQNetwork)
    model.learn(150)
