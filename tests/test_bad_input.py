"""Bad input gets a clear error at construction, naming the parameter and what is allowed."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_dueling import DuelingDQN
from sb3_dueling.policies import DuelingQNetwork


@pytest.mark.parametrize("algo", [DuelingDQN, DQN])
@pytest.mark.parametrize(
    "policy_kwargs, error, match",
    [
        (dict(aggregation="median"), ValueError, r"aggregation must be one of \['mean', 'max'\], got 'median'"),
        (dict(net_arch="64"), TypeError, "net_arch must be a list of ints .* or a dict with keys"),
        (dict(net_arch=[64, "64"]), TypeError, "net_arch must be a list of ints"),
        (dict(net_arch=[64, 0]), ValueError, "net_arch must contain positive layer sizes"),
        (dict(net_arch=[-8]), ValueError, "net_arch must contain positive layer sizes"),
        (dict(net_arch=dict(shared=[64], values=[32])), ValueError, r"unknown key\(s\) \['values'\]"),
        (dict(net_arch=dict(value=64)), TypeError, r"net_arch\['value'\] must be a list of ints"),
        (dict(net_arch=dict(advantage=[0])), ValueError, r"net_arch\['advantage'\] must contain positive"),
        (dict(shared_gradient_scale=0.0), ValueError, "shared_gradient_scale must be a positive"),
        (dict(shared_gradient_scale=-0.7), ValueError, "shared_gradient_scale must be a positive"),
        (dict(shared_gradient_scale=float("inf")), ValueError, "shared_gradient_scale must be a positive"),
        (dict(shared_gradient_scale="0.7"), TypeError, "shared_gradient_scale must be a positive float"),
    ],
)
def test_bad_policy_kwargs(algo, policy_kwargs, error, match):
    policy = "MlpPolicy" if algo is DuelingDQN else "DuelingMlpPolicy"
    with pytest.raises(error, match=match):
        algo(policy, "CartPole-v1", buffer_size=100, policy_kwargs=policy_kwargs)


def test_continuous_action_space_is_refused():
    with pytest.raises(ValueError, match=r"Discrete action space .* got env.action_space=Box"):
        DuelingDQN("MlpPolicy", "Pendulum-v1")


def test_network_refuses_continuous_action_space():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(TypeError, match=r"action_space must be a gymnasium\.spaces\.Discrete"):
        DuelingQNetwork(obs_space, spaces.Box(-1, 1, (2,), np.float32), FlattenExtractor(obs_space), 3)


def test_double_q_must_be_bool():
    with pytest.raises(TypeError, match="double_q must be a bool, got 'yes'"):
        DuelingDQN("MlpPolicy", "CartPole-v1", double_q="yes")


def test_single_stream_policy_is_refused():
    from stable_baselines3.dqn.policies import DQNPolicy

    with pytest.raises(TypeError, match="DuelingDQN needs a dueling policy"):
        DuelingDQN(DQNPolicy, "CartPole-v1")


def test_unknown_policy_alias_lists_the_known_ones():
    with pytest.raises(ValueError, match="Policy DuelingMLPPolicy unknown"):
        DuelingDQN("DuelingMLPPolicy", gym.make("CartPole-v1"))
