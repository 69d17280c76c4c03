"""Property-based: any policy arguments either give a model that builds, predicts, saves and loads, or a clear error."""

import numpy as np
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.envs import IdentityEnv
from torch import nn

from sb3_dueling import DuelingDQN

layer_sizes = st.lists(st.integers(min_value=-2, max_value=24), max_size=3)
net_archs = st.one_of(
    st.none(),
    layer_sizes,
    st.dictionaries(st.sampled_from(["shared", "value", "advantage", "pi", "qf"]), layer_sizes, max_size=3),
    st.sampled_from(["64", 64, [8, "8"], [8.0]]),
)
activations = st.sampled_from([nn.ReLU, nn.Tanh, nn.ELU, nn.LeakyReLU, "relu", th.relu, nn.Linear])
aggregations = st.sampled_from(["mean", "max", "min", None, 1])
observation_spaces = st.sampled_from(
    [
        spaces.Box(-1, 1, (3,), np.float32),
        spaces.Box(-1, 1, (2, 2), np.float32),
        spaces.Discrete(4),
        spaces.MultiBinary(3),
        spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32), "b": spaces.Discrete(3)}),
    ]
)


class SpaceEnv(IdentityEnv):
    """An env with the given observation space and 3 discrete actions."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(space=spaces.Discrete(3), ep_length=5)
        self.observation_space = observation_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return self.observation_space.sample(), reward, terminated, truncated, info


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net_arch=net_archs, activation_fn=activations, aggregation=aggregations, observation_space=observation_spaces)
def test_policy_arguments_build_and_round_trip_or_fail_clearly(
    tmp_path, net_arch, activation_fn, aggregation, observation_space
):
    policy_kwargs = {"activation_fn": activation_fn, "aggregation": aggregation}
    if net_arch is not None:
        policy_kwargs["net_arch"] = net_arch
    policy = "MultiInputPolicy" if isinstance(observation_space, spaces.Dict) else "MlpPolicy"
    env = SpaceEnv(observation_space)
    try:
        model = DuelingDQN(policy, env, policy_kwargs=policy_kwargs, learning_starts=0, seed=0)
    except (ValueError, TypeError) as error:
        event("clear error at construction")
        message = str(error)
        # a clear error names the parameter it is about
        assert any(name in message for name in ("net_arch", "activation_fn", "aggregation")), message
        return
    observations = (
        np.stack([observation_space.sample() for _ in range(4)]) if not isinstance(observation_space, spaces.Dict) else None
    )
    observation = observation_space.sample()
    action, _ = model.predict(observation, deterministic=True)
    assert model.action_space.contains(int(action))
    event("built, predicted, trained, saved and loaded")
    model.learn(20)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = DuelingDQN.load(path)
    assert loaded.predict(observation, deterministic=True)[0] == model.predict(observation, deterministic=True)[0]
    if observations is not None:
        with th.no_grad():
            q, q_loaded = (m.q_net(m.policy.obs_to_tensor(observations)[0]) for m in (model, loaded))
        th.testing.assert_close(q, q_loaded)
