"""Bad input gets a clear error at construction, naming the parameter and what is allowed; SB3's error where SB3 has one."""

import inspect
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_dueling import DuelingDQN, DuelingQRDQN, PrioritizedReplayBuffer
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


@pytest.mark.parametrize("algo", [DuelingDQN, DQN])
@pytest.mark.parametrize("env", ["Pendulum-v1", IdentityEnv(space=spaces.MultiDiscrete([2, 3]))])
def test_unsupported_action_space_raises_sb3s_error(algo, env):
    # A drop-in raises what DQN raises: the AssertionError of SB3's supported_action_spaces check
    with pytest.raises(AssertionError, match=r"only supports .*Discrete.* as action spaces but (Box|MultiDiscrete)"):
        algo("MlpPolicy", env)


@pytest.mark.parametrize("algo", [DuelingDQN, DQN])
def test_n_steps_with_optimize_memory_usage_raises_sb3s_error(algo):
    kwargs = dict(n_steps=3, optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False))
    with pytest.raises(NotImplementedError, match="doesn't support optimize_memory_usage"):
        algo("MlpPolicy", "CartPole-v1", buffer_size=100, **kwargs)
    if algo is DuelingDQN:  # the same with the prioritized buffer
        with pytest.raises(NotImplementedError, match="doesn't support optimize_memory_usage"):
            algo("MlpPolicy", "CartPole-v1", buffer_size=100, replay_buffer_class=PrioritizedReplayBuffer, **kwargs)


def test_network_refuses_continuous_action_space():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(TypeError, match=r"action_space must be a gymnasium\.spaces\.Discrete"):
        DuelingQNetwork(obs_space, spaces.Box(-1, 1, (2,), np.float32), FlattenExtractor(obs_space), 3)


@pytest.mark.parametrize("name", ["double_q", "check_finite"])
def test_flags_must_be_bool(name):
    with pytest.raises(TypeError, match=f"{name} must be a bool, got 'yes'"):
        DuelingDQN("MlpPolicy", "CartPole-v1", **{name: "yes"})


def test_single_stream_policy_is_refused():
    from stable_baselines3.dqn.policies import DQNPolicy

    with pytest.raises(TypeError, match="DuelingDQN needs a dueling policy"):
        DuelingDQN(DQNPolicy, "CartPole-v1")


def test_unknown_policy_alias_lists_the_known_ones():
    with pytest.raises(ValueError, match="Policy DuelingMLPPolicy unknown"):
        DuelingDQN("DuelingMLPPolicy", gym.make("CartPole-v1"))


@pytest.mark.parametrize("algo", [DuelingDQN, DuelingQRDQN])
@pytest.mark.parametrize("key", ["aggregation", "net_arch", "shared_gradient_scale"])
def test_a_policy_argument_given_to_the_learner_says_to_put_it_in_policy_kwargs(algo, key):
    message = (
        f"'{key}' is not an argument of {algo.__name__} but an argument of its policy: "
        f"give it in policy_kwargs, as in policy_kwargs=dict({key}=...)"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        algo("MlpPolicy", "CartPole-v1", buffer_size=100, **{key: "max"})


@pytest.mark.parametrize("algo, policy", [(DuelingDQN, "DuelingDQNPolicy"), (DuelingQRDQN, "DuelingQRDQNPolicy")])
def test_a_misspelled_policy_kwargs_key_is_named_with_the_valid_ones(algo, policy):
    with pytest.raises(TypeError) as error:
        algo("MlpPolicy", "CartPole-v1", buffer_size=100, policy_kwargs=dict(net_arhc=[64]))
    assert str(error.value).startswith(
        f"'net_arhc' is not an argument of {policy} in policy_kwargs (did you mean 'net_arch'?); it takes "
    )
    assert "aggregation, " in str(error.value) and "observation_space" not in str(error.value)


def test_a_misspelled_learner_argument_is_named():
    message = "'learning_rat' is not an argument of DuelingDQN (did you mean 'learning_rate'?)"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        DuelingDQN("MlpPolicy", "CartPole-v1", learning_rat=1e-3)


def test_the_checked_constructors_keep_their_signatures_and_load():
    assert "policy_kwargs" in inspect.signature(DuelingQRDQN).parameters
    model = DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100, policy_kwargs=dict(net_arch=[8]))
    assert type(model.policy).__name__ == "DuelingDQNPolicy"
