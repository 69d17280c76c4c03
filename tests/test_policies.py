"""The dueling network: aggregation, streams, gradient rescale, architectures."""

import math

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from torch import nn

from sb3_dueling import DuelingDQN
from sb3_dueling.policies import PAPER_GRADIENT_SCALE, DuelingQNetwork, aggregate, parse_net_arch
from sb3_dueling.torch_layers import NatureConvExtractor

OBS_SPACE = spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)
ACTION_SPACE = spaces.Discrete(4)


def make_q_net(**kwargs) -> DuelingQNetwork:
    extractor = FlattenExtractor(OBS_SPACE)
    return DuelingQNetwork(OBS_SPACE, ACTION_SPACE, extractor, extractor.features_dim, **kwargs)


def linear_layers(module: nn.Module) -> list[tuple[int, int]]:
    return [(layer.in_features, layer.out_features) for layer in module.modules() if isinstance(layer, nn.Linear)]


@pytest.fixture
def streams() -> tuple[th.Tensor, th.Tensor]:
    generator = th.Generator().manual_seed(0)
    return th.randn(8, 1, generator=generator), th.randn(8, 4, generator=generator) * 3


def test_mean_aggregation_centres_advantages_per_state(streams):
    value, advantage = streams
    q_values = aggregate(value, advantage, "mean")
    # Each state's Q-values average to its V (eq. 9): the mean is over that state's actions only.
    th.testing.assert_close(q_values.mean(dim=1, keepdim=True), value)
    th.testing.assert_close(q_values - value, advantage - advantage.mean(dim=1, keepdim=True))


def test_max_aggregation_puts_best_action_at_value(streams):
    value, advantage = streams
    q_values = aggregate(value, advantage, "max")
    # eq. 8: the greedy action's Q-value is V
    th.testing.assert_close(q_values.amax(dim=1, keepdim=True), value)
    assert th.equal(q_values.argmax(dim=1), advantage.argmax(dim=1))


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_q_of_a_state_does_not_depend_on_the_batch(aggregation, streams):
    value, advantage = streams
    q_batch = aggregate(value, advantage, aggregation)
    for i in range(len(value)):
        th.testing.assert_close(q_batch[i : i + 1], aggregate(value[i : i + 1], advantage[i : i + 1], aggregation))
    # Changing the other states leaves the first one's Q-values as they were
    other = advantage.clone()
    other[1:] += 100.0
    th.testing.assert_close(aggregate(value, other, aggregation)[0], q_batch[0])


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_network_batch_independence_and_streams(aggregation):
    q_net = make_q_net(aggregation=aggregation)
    obs = th.randn(16, 5)
    with th.no_grad():
        q_values = q_net(obs)
        value, advantage = q_net.value_and_advantage(obs)
        single = th.cat([q_net(obs[i : i + 1]) for i in range(len(obs))])
    assert value.shape == (16, 1) and advantage.shape == (16, 4) and q_values.shape == (16, 4)
    th.testing.assert_close(single, q_values)
    th.testing.assert_close(q_values, aggregate(value, advantage, aggregation))
    # Greedy action from the advantage stream alone is the argmax of Q
    assert th.equal(q_net._predict(obs), q_values.argmax(dim=1))


def test_outputs_are_not_squashed():
    # The heads end in a linear layer (no activation): Q can take any sign and size.
    q_net = make_q_net()
    assert isinstance(q_net.value_net[-1], nn.Linear)
    assert isinstance(q_net.advantage_net[-1], nn.Linear)
    with th.no_grad():
        q_net.value_net[-1].bias.fill_(-1000.0)
        q_values = q_net(th.randn(4, 5))
    assert (q_values < -900).all()


def test_default_architecture_matches_sb3_dqn_trunk():
    q_net = make_q_net()
    assert linear_layers(q_net.shared_net) == [(5, 64), (64, 64)]
    assert linear_layers(q_net.value_net) == [(64, 1)]
    assert linear_layers(q_net.advantage_net) == [(64, 4)]


def test_dict_net_arch_builds_separate_streams():
    q_net = make_q_net(net_arch=dict(shared=[32], value=[16, 8]), activation_fn=nn.Tanh)
    assert linear_layers(q_net.shared_net) == [(5, 32)]
    assert linear_layers(q_net.value_net) == [(32, 16), (16, 8), (8, 1)]
    assert linear_layers(q_net.advantage_net) == [(32, 4)]  # missing key: no hidden layer
    assert sum(isinstance(m, nn.Tanh) for m in q_net.modules()) == 3


def test_parse_net_arch_forms():
    assert parse_net_arch([8, 8]) == ([8, 8], [], [])
    assert parse_net_arch(dict(advantage=[3])) == ([], [], [3])
    assert parse_net_arch([np.int64(4)]).shared == [4]


@pytest.mark.parametrize("scale", [0.5, PAPER_GRADIENT_SCALE])
def test_shared_gradient_scale_scales_backward_only(scale):
    th.manual_seed(0)
    plain = make_q_net()
    scaled = make_q_net(shared_gradient_scale=scale)
    scaled.load_state_dict(plain.state_dict())
    obs = th.randn(32, 5)
    q_plain, q_scaled = plain(obs), scaled(obs)
    th.testing.assert_close(q_scaled, q_plain)  # forward pass unchanged
    (q_plain**2).sum().backward()
    (q_scaled**2).sum().backward()
    for (name, p_plain), p_scaled in zip(plain.named_parameters(), scaled.parameters()):
        expected = p_plain.grad * (scale if name.startswith("shared_net") else 1.0)
        th.testing.assert_close(p_scaled.grad, expected, msg=name)


def test_nature_conv_extractor_stops_after_convolutions():
    env = FakeImageEnv(screen_height=84, screen_width=84, n_channels=4, channel_first=True)
    extractor = NatureConvExtractor(env.observation_space)
    assert extractor.features_dim == 64 * 7 * 7
    assert not any(isinstance(m, nn.Linear) for m in extractor.modules())
    assert extractor(th.zeros(2, 4, 84, 84)).shape == (2, 3136)


def test_paper_atari_network_is_one_setting_away():
    env = FakeImageEnv(screen_height=84, screen_width=84, n_channels=4, channel_first=True)
    model = DuelingDQN("DuelingNatureCnnPolicy", env, buffer_size=100)
    q_net = model.q_net
    assert isinstance(q_net.features_extractor, NatureConvExtractor)
    assert [m.out_channels for m in q_net.features_extractor.modules() if isinstance(m, nn.Conv2d)] == [32, 64, 64]
    assert linear_layers(q_net.shared_net) == []
    assert linear_layers(q_net.value_net) == [(3136, 512), (512, 1)]
    assert linear_layers(q_net.advantage_net) == [(3136, 512), (512, 6)]
    assert math.isclose(q_net.shared_gradient_scale, 1 / math.sqrt(2))


def test_cnn_policy_keeps_sb3_defaults():
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1)
    q_net = DuelingDQN("CnnPolicy", env, buffer_size=100).q_net
    assert isinstance(q_net.features_extractor, NatureCNN)
    assert linear_layers(q_net.shared_net) == []
    assert linear_layers(q_net.value_net) == [(512, 1)]
    assert q_net.shared_gradient_scale == 1.0


def test_policy_arguments_are_passed_through():
    model = DuelingDQN(
        "MlpPolicy",
        "CartPole-v1",
        buffer_size=100,
        policy_kwargs=dict(
            net_arch=dict(shared=[16], advantage=[8]),
            activation_fn=nn.ELU,
            optimizer_class=th.optim.RMSprop,
            optimizer_kwargs=dict(alpha=0.9),
            aggregation="max",
        ),
    )
    assert isinstance(model.policy.optimizer, th.optim.RMSprop)
    assert model.policy.optimizer.defaults["alpha"] == 0.9
    assert model.q_net.aggregation == "max" and model.q_net_target.aggregation == "max"
    assert any(isinstance(m, nn.ELU) for m in model.q_net.modules())
    # online and target networks are separate objects with equal weights
    assert model.q_net.features_extractor is not model.q_net_target.features_extractor
    for p, p_target in zip(model.q_net.parameters(), model.q_net_target.parameters()):
        assert p is not p_target and th.equal(p, p_target)


def test_optimizer_runs_fused_unless_the_user_chooses():
    fused = DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100)
    assert fused.policy.optimizer.defaults["fused"] is True
    chosen = DuelingDQN("MlpPolicy", "CartPole-v1", buffer_size=100, policy_kwargs=dict(optimizer_kwargs=dict(foreach=True)))
    assert not chosen.policy.optimizer.defaults["fused"]
    assert chosen.policy.optimizer.defaults["foreach"] is True


@pytest.mark.parametrize("normalize_images", [True, False])
def test_normalize_images_as_in_sb3(normalize_images):
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1)
    model = DuelingDQN("CnnPolicy", env, buffer_size=100, policy_kwargs=dict(normalize_images=normalize_images))
    q_net = model.q_net
    obs = th.full((2, 1, 40, 40), 255.0)
    with th.no_grad():
        scaled = q_net.shared_net(q_net.features_extractor(obs / 255.0))
        latent = q_net._latent(obs)
    assert q_net.normalize_images is normalize_images
    assert th.allclose(latent, scaled) is normalize_images


def test_paper_network_defaults_can_be_overridden():
    env = FakeImageEnv(screen_height=84, screen_width=84, n_channels=4, channel_first=True)
    kwargs = dict(net_arch=dict(value=[256], advantage=[128]), shared_gradient_scale=1.0)
    q_net = DuelingDQN("DuelingNatureCnnPolicy", env, buffer_size=100, policy_kwargs=kwargs).q_net
    assert linear_layers(q_net.value_net) == [(3136, 256), (256, 1)]
    assert linear_layers(q_net.advantage_net) == [(3136, 128), (128, 6)]
    assert q_net.shared_gradient_scale == 1.0


def test_training_mode_is_passed_on_only_when_it_changes(monkeypatch):
    policy = DuelingDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8])).policy
    policy.set_training_mode(True)
    assert all(module.training for module in policy.q_net.modules())
    visits = []
    monkeypatch.setattr(nn.Module, "train", lambda module, mode=True: visits.append(mode) or module)
    policy.set_training_mode(True)  # as SB3 asks at each predict(): nothing to visit
    assert visits == []
    monkeypatch.undo()
    policy.set_training_mode(False)
    assert not any(module.training for module in policy.q_net.modules())
    assert not any(module.training for module in policy.q_net_target.modules())
