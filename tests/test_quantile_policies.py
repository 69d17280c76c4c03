"""The dueling quantile network: per-quantile aggregation, streams, greedy action, architectures, bad input."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QuantileNetwork
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from torch import nn

from sb3_dueling import DuelingQRDQN, DuelingQRDQNPolicy
from sb3_dueling.policies import PAPER_GRADIENT_SCALE, aggregate
from sb3_dueling.quantile_policies import DuelingQuantileNetwork
from sb3_dueling.torch_layers import NatureConvExtractor
from tests.test_policies import linear_layers

OBS_SPACE = spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)
ACTION_SPACE = spaces.Discrete(4)
N_QUANTILES = 7


def make_quantile_net(**kwargs) -> DuelingQuantileNetwork:
    extractor = FlattenExtractor(OBS_SPACE)
    kwargs.setdefault("n_quantiles", N_QUANTILES)
    return DuelingQuantileNetwork(OBS_SPACE, ACTION_SPACE, extractor, extractor.features_dim, **kwargs)


def observations(n: int = 16) -> th.Tensor:
    return th.rand(n, 5, generator=th.Generator().manual_seed(n)) * 2 - 1


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_streams_and_output_shapes_and_per_quantile_aggregation(aggregation):
    quantile_net = make_quantile_net(aggregation=aggregation)
    assert isinstance(quantile_net, QuantileNetwork)
    obs = observations()
    with th.no_grad():
        quantiles = quantile_net(obs)
        value, advantage = quantile_net.value_and_advantage(obs)
    assert value.shape == (16, N_QUANTILES, 1) and advantage.shape == (16, N_QUANTILES, 4)
    assert quantiles.shape == (16, N_QUANTILES, 4)  # sb3-contrib's shape
    th.testing.assert_close(quantile_net.advantage(obs), advantage)
    # theta_i(s, a) = V_i(s) + A_i(s, a) - mean_a' (or max_a') A_i(s, a'), each state and quantile on its own
    baseline = advantage.mean(dim=2, keepdim=True) if aggregation == "mean" else advantage.amax(dim=2, keepdim=True)
    th.testing.assert_close(quantiles, value + advantage - baseline)
    reduce = quantiles.mean(dim=2, keepdim=True) if aggregation == "mean" else quantiles.amax(dim=2, keepdim=True)
    th.testing.assert_close(reduce, value)  # eq. 9 (or 8), for each quantile
    # aggregate() is the same function for Q-values and for quantiles
    for i in range(N_QUANTILES):
        th.testing.assert_close(quantiles[:, i], aggregate(value[:, i], advantage[:, i], aggregation))


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_quantiles_of_a_state_do_not_depend_on_the_batch(aggregation):
    quantile_net = make_quantile_net(aggregation=aggregation)
    obs = observations()
    with th.no_grad():
        batch = quantile_net(obs)
        single = th.cat([quantile_net(obs[i : i + 1]) for i in range(len(obs))])
        other = obs.clone()
        other[1:] = -obs[1:]
        changed = quantile_net(other)
    th.testing.assert_close(single, batch)
    th.testing.assert_close(changed[0], batch[0])


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_greedy_action_is_the_argmax_of_the_mean_over_quantiles(aggregation):
    th.manual_seed(0)
    quantile_net = make_quantile_net(aggregation=aggregation, net_arch=[8])
    obs = th.randn(256, 5, generator=th.Generator().manual_seed(0)) * 3
    with th.no_grad():
        for p in quantile_net.advantage_net.parameters():
            p.copy_(th.randn_like(p))  # quantiles that order the actions differently
        quantiles = quantile_net(obs)
        greedy = quantile_net._predict(obs)
    expected = quantiles.mean(dim=1).argmax(dim=1)
    assert greedy.shape == (256,) and th.equal(greedy, expected)
    assert len(th.unique(expected)) > 1, "observations whose greedy actions differ, so that the test means something"
    assert not th.equal(quantiles[:, 0].argmax(dim=1), expected), "the mean over quantiles, not one quantile, decides"


def test_architectures():
    quantile_net = make_quantile_net(net_arch=dict(shared=[32], value=[16, 8]), activation_fn=nn.Tanh)
    assert linear_layers(quantile_net.shared_net) == [(5, 32)]
    assert linear_layers(quantile_net.value_net) == [(32, 16), (16, 8), (8, N_QUANTILES)]
    assert linear_layers(quantile_net.advantage_net) == [(32, N_QUANTILES * 4)]
    assert any(isinstance(layer, nn.Tanh) for layer in quantile_net.shared_net)
    default = make_quantile_net()
    assert linear_layers(default.shared_net) == [(5, 64), (64, 64)]
    assert linear_layers(default.value_net) == [(64, N_QUANTILES)]
    assert default.n_quantiles == N_QUANTILES and default.aggregation == "mean" and default.shared_gradient_scale == 1.0


def test_shared_gradient_scale_scales_backward_only():
    obs = observations()
    gradients, outputs = [], []
    for scale in (0.5, 1.0):
        th.manual_seed(0)
        quantile_net = make_quantile_net(shared_gradient_scale=scale)
        output = quantile_net(obs)
        output.sum().backward()
        outputs.append(output.detach())
        gradients.append(quantile_net.shared_net[0].weight.grad)
    th.testing.assert_close(outputs[0], outputs[1])
    th.testing.assert_close(gradients[0], 0.5 * gradients[1])


IMAGE_ENV = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1)


@pytest.mark.parametrize(
    "policy, extractor, shared, value, scale",
    [
        ("CnnPolicy", NatureCNN, [], [(512, 5)], 1.0),
        # 40x40 images: 64 features out of the convolutions
        ("DuelingNatureCnnPolicy", NatureConvExtractor, [], [(64, 512), (512, 5)], PAPER_GRADIENT_SCALE),
    ],
)
def test_image_policies(policy, extractor, shared, value, scale):
    model = DuelingQRDQN(policy, IMAGE_ENV, buffer_size=10, policy_kwargs=dict(n_quantiles=5))
    quantile_net = model.quantile_net
    assert type(quantile_net.features_extractor) is extractor
    assert linear_layers(quantile_net.shared_net) == shared
    assert linear_layers(quantile_net.value_net) == value
    n_actions = int(IMAGE_ENV.action_space.n)
    assert linear_layers(quantile_net.advantage_net)[-1] == (value[-1][0], 5 * n_actions)
    assert quantile_net.shared_gradient_scale == pytest.approx(scale)
    assert model.policy.quantile_net_target.features_extractor is not quantile_net.features_extractor


def test_policy_options_and_constructor_parameters(tmp_path):
    policy_kwargs = dict(
        n_quantiles=9, net_arch=dict(shared=[16], advantage=[8]), aggregation="max", shared_gradient_scale=0.5
    )
    model = DuelingQRDQN("MlpPolicy", "CartPole-v1", buffer_size=10, policy_kwargs=policy_kwargs)
    policy = model.policy
    assert isinstance(policy, DuelingQRDQNPolicy) and model.n_quantiles == 9
    assert policy.optimizer.defaults["fused"] is True  # as for DuelingDQN, unless the user chooses
    assert policy.optimizer.defaults["eps"] == pytest.approx(0.01 / 32)  # QRDQN's default optimizer_kwargs kept
    policy.save(tmp_path / "policy.pth")
    loaded = DuelingQRDQNPolicy.load(tmp_path / "policy.pth")
    for net in (loaded.quantile_net, loaded.quantile_net_target):
        assert net.n_quantiles == 9 and net.aggregation == "max" and net.shared_gradient_scale == 0.5
        assert net.net_arch == policy_kwargs["net_arch"]
    obs = observations(8)[:, :4]
    with th.no_grad():
        th.testing.assert_close(loaded.quantile_net(obs), policy.quantile_net(obs))


BAD_POLICY_KWARGS = [
    (dict(n_quantiles=0), ValueError, "n_quantiles"),
    (dict(n_quantiles=-1), ValueError, "n_quantiles"),
    (dict(n_quantiles=2.5), TypeError, "n_quantiles"),
    (dict(n_quantiles="10"), TypeError, "n_quantiles"),
    (dict(n_quantiles=True), TypeError, "n_quantiles"),
    (dict(aggregation="sum"), ValueError, "aggregation"),
    (dict(net_arch=dict(shared=[8], values=[4])), ValueError, "net_arch"),
    (dict(net_arch=[0]), ValueError, "net_arch"),
    (dict(net_arch="64"), TypeError, "net_arch"),
    (dict(shared_gradient_scale=-1.0), ValueError, "shared_gradient_scale"),
    (dict(activation_fn="relu"), TypeError, "activation_fn"),
]


@pytest.mark.parametrize("algo, policy", [(DuelingQRDQN, "MlpPolicy"), (QRDQN, "DuelingMlpPolicy")])
@pytest.mark.parametrize("policy_kwargs, error, name", BAD_POLICY_KWARGS, ids=str)
def test_bad_policy_kwargs_are_refused_at_construction(algo, policy, policy_kwargs, error, name):
    with pytest.raises(error, match=name):
        algo(policy, "CartPole-v1", buffer_size=10, policy_kwargs=policy_kwargs)


@pytest.mark.parametrize("n_quantiles, error", [(0, ValueError), (2.5, TypeError), ("10", TypeError), (True, TypeError)])
def test_bad_n_quantiles_of_the_network(n_quantiles, error):
    with pytest.raises(error, match="n_quantiles must be a positive int"):
        make_quantile_net(n_quantiles=n_quantiles)


def test_n_quantiles_of_numpy_int_is_accepted():
    assert make_quantile_net(n_quantiles=np.int64(3)).n_quantiles == 3
