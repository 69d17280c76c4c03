"""
Noisy networks for exploration (Fortunato et al. 2018, https://arxiv.org/abs/1706.10295): factorised Gaussian
``NoisyLinear`` layers.

The noise is state that the training loop drives, not a side effect of ``train()`` / ``eval()``: SB3 collects
experience with the policy in eval mode and keeps the target network in eval mode, so a layer that turned its
noise off in eval mode would never explore. Here a layer acts with its noise whenever ``noisy`` is set (the
default), whatever the mode, with the noise drawn by the last :func:`reset_noise`; with ``noisy`` unset (the
mean network, for deterministic predictions) it uses its mean weights.
"""

import itertools
import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch as th
from torch import nn
from torch.nn import functional as F

#: The paper's initial noise scale of factorised noisy layers (Section 3.2)
SIGMA0 = 0.5


def check_sigma0(sigma0: float) -> None:
    """Raise a clear error for a noise scale that is not a positive, finite number."""
    if isinstance(sigma0, bool) or not isinstance(sigma0, (int, float)):
        raise TypeError(f"sigma0 must be a positive float, got {sigma0!r}")
    if not (0 < sigma0 < math.inf):
        raise ValueError(f"sigma0 must be a positive, finite float, got {sigma0!r}")


def _scaled_noise(size: int, device: th.device, generator: th.Generator | None) -> th.Tensor:
    # f(x) = sign(x) sqrt(|x|) of standard normal draws (factorised noise, eq. 11)
    noise = th.randn(size, device=device, generator=generator)
    return noise.sign().mul_(noise.abs().sqrt_())


class NoisyLinear(nn.Module):
    """
    A linear layer y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b with factorised Gaussian noise:
    eps_w = f(eps_out) f(eps_in)^T, eps_b = f(eps_out), f(x) = sign(x) sqrt(|x|).

    :param in_features: size of each input
    :param out_features: size of each output
    :param sigma0: initial noise scale; sigma starts at ``sigma0 / sqrt(in_features)`` (the paper's 0.5)
    """

    epsilon_in: th.Tensor
    epsilon_out: th.Tensor

    def __init__(self, in_features: int, out_features: int, sigma0: float = SIGMA0) -> None:
        super().__init__()
        check_sigma0(sigma0)
        self.in_features, self.out_features, self.sigma0 = in_features, out_features, sigma0
        self.weight_mu = nn.Parameter(th.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(th.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(th.empty(out_features))
        self.bias_sigma = nn.Parameter(th.empty(out_features))
        # Saved with the weights, so that a saved model acts as it did with the noise it had
        self.register_buffer("epsilon_in", th.zeros(in_features))
        self.register_buffer("epsilon_out", th.zeros(out_features))
        #: Act with the noise (True) or with the mean weights (False); independent of train/eval mode
        self.noisy = True
        # The noisy weights and bias of the last batch, and the tensors (with their versions) they were built from
        self._built: tuple[tuple[tuple[th.Tensor, int], ...], th.Tensor, th.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation of factorised noisy layers (Section 3.2)."""
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        nn.init.uniform_(self.bias_mu, -bound, bound)
        nn.init.constant_(self.weight_sigma, self.sigma0 * bound)
        nn.init.constant_(self.bias_sigma, self.sigma0 * bound)

    def reset_noise(self, generator: th.Generator | None = None) -> None:
        """Draw new noise (in_features + out_features normal draws)."""
        device = self.weight_mu.device
        self.epsilon_in.copy_(_scaled_noise(self.in_features, device, generator))
        self.epsilon_out.copy_(_scaled_noise(self.out_features, device, generator))

    def forward(self, input: th.Tensor) -> th.Tensor:
        if not self.noisy:
            return F.linear(input, self.weight_mu, self.bias_mu)
        if input.numel() == self.in_features:
            # One observation (acting): (mu_w + sigma_w * eps_out eps_in^T) x = mu_w x + eps_out * sigma_w (eps_in * x),
            # two products that cost less than building the (out, in) noisy weights (MinAtar's 1600x306: 2.3x)
            bias = self.bias_mu + self.bias_sigma * self.epsilon_out
            noise = F.linear(input * self.epsilon_in, self.weight_sigma) * self.epsilon_out
            return F.linear(input, self.weight_mu, bias) + noise
        # A batch: building the weights once costs less than a second product, forward and backward (1.5-1.8x)
        return F.linear(input, *self._noisy_weight_and_bias())

    def _noisy_weight_and_bias(self) -> tuple[th.Tensor, th.Tensor]:
        # A training step passes a batch through the online network twice with the same weights and noise: for
        # the loss, then without gradients for the Double target's next actions. The second pass reuses the
        # first's weights (the same numbers: nothing they are built from has changed, not even in place); a pass
        # with gradients always builds its own, for its own graph.
        sources = tuple(
            (tensor, tensor._version)
            for tensor in (self.weight_mu, self.weight_sigma, self.bias_mu, self.bias_sigma, self.epsilon_in, self.epsilon_out)
        )
        if self._built is not None and not th.is_grad_enabled():
            built_from, weight, bias = self._built
            if all(a is b and u == v for (a, u), (b, v) in zip(built_from, sources, strict=True)):
                return weight.detach(), bias.detach()
        weight = self.weight_mu + self.weight_sigma * th.outer(self.epsilon_out, self.epsilon_in)
        bias = self.bias_mu + self.bias_sigma * self.epsilon_out
        self._built = sources, weight, bias
        return weight, bias

    def __getstate__(self) -> dict[str, Any]:
        # The last weights built are a cache (with a graph, which pickle refuses): not part of the layer
        return {**super().__getstate__(), "_built": None}

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sigma0={self.sigma0}"


#: The noisy layers of each network asked for: a network's noise is reset at every acting and every gradient step,
#: where visiting all its modules each time would cost more than drawing the noise
_noisy_layers: "weakref.WeakKeyDictionary[nn.Module, list[NoisyLinear]]" = weakref.WeakKeyDictionary()


def noisy_layers(module: nn.Module) -> list[NoisyLinear]:
    """The noisy layers of ``module`` (found once: a network does not change its layers after it is built)."""
    layers = _noisy_layers.get(module)
    if layers is None:
        layers = _noisy_layers[module] = [layer for layer in module.modules() if isinstance(layer, NoisyLinear)]
    return layers


def reset_noise(module: nn.Module, generator: th.Generator | None = None) -> None:
    """
    Draw new noise for every noisy layer of ``module`` (nothing for a network without one): one draw for all
    of them, split between their buffers (a network is reset at every acting and every gradient step, where
    two draws per layer would be a dozen small operations each).
    """
    layers = noisy_layers(module)
    if not layers:
        return
    # The buffers themselves are looked up at each call: Module.to() replaces them
    buffers = [buffer for layer in layers for buffer in (layer.epsilon_in, layer.epsilon_out)]
    with th.no_grad():
        noise = _scaled_noise(sum(buffer.numel() for buffer in buffers), buffers[0].device, generator)
        th._foreach_copy_(buffers, noise.split([buffer.numel() for buffer in buffers]))


@contextmanager
def mean_network(module: nn.Module) -> Iterator[None]:
    """Within the block, every noisy layer of ``module`` uses its mean weights; as it was after."""
    layers = noisy_layers(module)
    states = [layer.noisy for layer in layers]
    for layer in layers:
        layer.noisy = False
    try:
        yield
    finally:
        for layer, state in zip(layers, states):
            layer.noisy = state


def noisy_mlp(
    input_dim: int, output_dim: int, net_arch: list[int], activation_fn: type[nn.Module], sigma0: float = SIGMA0
) -> list[nn.Module]:
    """
    SB3's ``create_mlp`` with ``NoisyLinear`` layers: hidden layers of the sizes ``net_arch``, each followed
    by ``activation_fn``, then a linear output layer of ``output_dim`` units (none if ``output_dim`` < 0).
    """
    sizes = [input_dim, *net_arch]
    modules: list[nn.Module] = []
    for size_in, size_out in itertools.pairwise(sizes):
        modules += [NoisyLinear(size_in, size_out, sigma0), activation_fn()]
    if output_dim > 0:
        modules.append(NoisyLinear(sizes[-1], output_dim, sigma0))
    return modules
