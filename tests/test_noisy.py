"""Factorised Gaussian noisy layers: the noise is driven by reset_noise, not by train/eval mode."""

import math

import pytest
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_dueling.noisy import NoisyLinear, mean_network, noisy_layers, reset_noise


def test_initialisation_is_the_papers():
    layer = NoisyLinear(16, 4, sigma0=0.5)
    bound = 1 / math.sqrt(16)
    assert layer.weight_mu.abs().max() <= bound and layer.bias_mu.abs().max() <= bound
    assert th.all(layer.weight_sigma == 0.5 * bound) and th.all(layer.bias_sigma == 0.5 * bound)


def test_noise_is_factorised_and_drawn_by_reset_noise_only():
    th.manual_seed(0)
    layer = NoisyLinear(8, 3)
    x = th.randn(5, 8)
    reset_noise(layer)
    first = layer(x)
    assert th.equal(layer(x), first)  # the same noise until it is drawn again
    eps_in, eps_out = layer.epsilon_in.clone(), layer.epsilon_out.clone()
    weight = layer.weight_mu + layer.weight_sigma * th.outer(eps_out, eps_in)
    th.testing.assert_close(first, F.linear(x, weight, layer.bias_mu + layer.bias_sigma * eps_out))
    reset_noise(layer)
    assert not th.equal(layer(x), first)
    assert not th.equal(layer.epsilon_in, eps_in) and not th.equal(layer.epsilon_out, eps_out)


def test_eval_mode_keeps_the_noise_and_the_mean_network_drops_it():
    th.manual_seed(1)
    network = nn.Sequential(NoisyLinear(4, 8), nn.ReLU(), NoisyLinear(8, 2))
    reset_noise(network)
    x = th.randn(3, 4)
    noisy = network(x)
    network.eval()  # how SB3 collects experience: the noise must stay on
    assert th.equal(network(x), noisy)
    with mean_network(network):
        mean = network(x)
        first, second = noisy_layers(network)
        expected = F.linear(F.relu(F.linear(x, first.weight_mu, first.bias_mu)), second.weight_mu, second.bias_mu)
        th.testing.assert_close(mean, expected)
    assert all(layer.noisy for layer in noisy_layers(network)) and th.equal(network(x), noisy)


def test_the_noise_scales_learn():
    layer = NoisyLinear(4, 2)
    reset_noise(layer)
    layer(th.randn(6, 4)).sum().backward()
    assert layer.weight_sigma.grad is not None and layer.weight_sigma.grad.abs().sum() > 0
    assert layer.epsilon_in.grad is None  # a buffer, not a parameter


def test_the_noise_is_saved_with_the_weights():
    layer = NoisyLinear(4, 2)
    reset_noise(layer)
    assert {"epsilon_in", "epsilon_out"} <= set(layer.state_dict())


@pytest.mark.parametrize("sigma0, error", [(0.0, ValueError), (-1.0, ValueError), (math.inf, ValueError), ("0.5", TypeError)])
def test_bad_sigma0_is_refused(sigma0, error):
    with pytest.raises(error, match="sigma0"):
        NoisyLinear(4, 2, sigma0=sigma0)


def test_one_observation_and_a_batch_see_the_same_noisy_weights():
    # Acting on one observation takes another path than a batch: the same function
    th.manual_seed(2)
    layer = NoisyLinear(16, 5)
    reset_noise(layer)
    batch = th.randn(8, 16)
    rows = th.cat([layer(row[None]) for row in batch])
    th.testing.assert_close(rows, layer(batch))
    th.testing.assert_close(layer(batch[0]), layer(batch)[0])


def test_a_pass_without_gradients_reuses_the_noisy_weights_only_while_nothing_changed():
    th.manual_seed(0)
    layer, x = NoisyLinear(6, 3), th.randn(5, 6)

    def fresh() -> th.Tensor:  # the layer's output, its noisy weights built anew
        weight = layer.weight_mu + layer.weight_sigma * th.outer(layer.epsilon_out, layer.epsilon_in)
        return F.linear(x, weight, layer.bias_mu + layer.bias_sigma * layer.epsilon_out).detach()

    layer(x).sum().backward()  # a pass with gradients builds the weights
    built = layer._built
    with th.no_grad():
        assert th.equal(layer(x), fresh()) and layer._built is built  # reused
    with th.no_grad():
        layer.weight_mu.add_(1.0)  # an optimizer step changes the weights in place
        assert th.equal(layer(x), fresh()) and layer._built is not built
        layer.bias_sigma.mul_(2.0)
        assert th.equal(layer(x), fresh())
    reset_noise(layer)
    with th.no_grad():
        assert th.equal(layer(x), fresh())
    layer.load_state_dict({name: value + 1 for name, value in layer.state_dict().items()})
    with th.no_grad():
        assert th.equal(layer(x), fresh())
    assert th.allclose(layer(x), fresh()) and layer(x).requires_grad  # with gradients: its own graph
