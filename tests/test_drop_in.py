"""`import sb3_dueling` makes the dueling policies available to stock SB3 DQN."""

import subprocess
import sys

import pytest
from stable_baselines3 import DQN
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_dueling import DuelingCnnPolicy, DuelingDQN, DuelingMlpPolicy, DuelingMultiInputPolicy, register_dueling_policies
from sb3_dueling.policies import DuelingQNetwork
from sb3_dueling.registration import DUELING_POLICIES


def test_import_registers_the_aliases_in_a_fresh_process():
    code = (
        "from stable_baselines3 import DQN\n"
        "assert 'DuelingMlpPolicy' not in DQN.policy_aliases\n"
        "import sb3_dueling\n"
        "print(sorted(name for name in DQN.policy_aliases if name.startswith('Dueling')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(sorted(DUELING_POLICIES))


def test_aliases_name_the_dueling_policies():
    assert DQN.policy_aliases["DuelingMlpPolicy"] is DuelingMlpPolicy
    assert DQN.policy_aliases["DuelingCnnPolicy"] is DuelingCnnPolicy
    assert DQN.policy_aliases["DuelingMultiInputPolicy"] is DuelingMultiInputPolicy
    # SB3's own aliases are untouched
    assert DQN.policy_aliases["MlpPolicy"] is DQNPolicy
    # DuelingDQN maps the plain names to the dueling policies
    assert DuelingDQN.policy_aliases["MlpPolicy"] is DuelingMlpPolicy
    assert DuelingDQN.policy_aliases["CnnPolicy"] is DuelingCnnPolicy


def test_registration_is_idempotent():
    before = dict(DQN.policy_aliases)
    register_dueling_policies()
    register_dueling_policies()
    assert DQN.policy_aliases == before


def test_registration_never_overwrites(monkeypatch):
    class Other(DQN):
        policy_aliases = {"DuelingMlpPolicy": DQNPolicy}  # noqa: RUF012

    with pytest.warns(UserWarning, match=r"Other.policy_aliases\['DuelingMlpPolicy'\] is already"):
        register_dueling_policies(Other)
    assert Other.policy_aliases["DuelingMlpPolicy"] is DQNPolicy
    assert Other.policy_aliases["DuelingCnnPolicy"] is DuelingCnnPolicy


def test_stock_dqn_builds_the_dueling_network():
    model = DQN("DuelingMlpPolicy", "CartPole-v1", buffer_size=100)
    assert isinstance(model.q_net, DuelingQNetwork)
    assert isinstance(model.q_net_target, DuelingQNetwork)
    model.learn(150)
