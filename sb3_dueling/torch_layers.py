"""Building blocks of the dueling network that SB3 does not have."""

from typing import Any, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn


class NatureConvExtractor(NatureCNN):
    """
    The three convolutions of the Nature DQN (Mnih et al. 2015), flattened, without the
    fully connected layer that SB3's ``NatureCNN`` puts after them.

    This is the part of the network that the two streams of the dueling architecture share
    in Wang et al. (2016); each stream then has its own 512-unit layer.

    :param observation_space: The (image) observation space
    :param normalized_image: Whether to assume that the image is already normalized
        (disables the dtype and bounds checks of ``NatureCNN``)
    """

    def __init__(self, observation_space: spaces.Box, normalized_image: bool = False) -> None:
        # NatureCNN checks the space and builds the convolutions; its final linear layer
        # (built here with a single unit, to stay small) is not part of the shared trunk.
        super().__init__(observation_space, features_dim=1, normalized_image=normalized_image)
        self._features_dim = cast(nn.Linear, self.linear[0]).in_features
        del self.linear

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.cnn(observations)


class _ScaleGradient(th.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``scale`` in the backward pass."""

    @staticmethod
    def forward(ctx: Any, tensor: th.Tensor, scale: float) -> th.Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> tuple[th.Tensor, None]:
        return grad_output * ctx.scale, None


def scale_gradient(tensor: th.Tensor, scale: float) -> th.Tensor:
    """
    Return ``tensor`` unchanged, but scale the gradient that flows back through it.

    :param tensor: Any tensor
    :param scale: Factor applied to the incoming gradient in the backward pass
    :return: A view of ``tensor``
    """
    if scale == 1.0:
        return tensor
    return _ScaleGradient.apply(tensor, scale)


class MinAtarConvExtractor(BaseFeaturesExtractor):
    """
    The convolution of the MinAtar networks (Young & Tian 2019; Obando-Ceron & Castro 2021): 16 filters of
    3x3 with stride 1 over the game's binary channels, a ReLU, flattened. The heads come after it.

    SB3's ``NatureCNN`` cannot take MinAtar's 10x10 frames: its 8x8 stride-4 convolution leaves a 1x1 map, on
    which its 4x4 convolution fails; and it refuses observations that are not 0-255 images.

    :param observation_space: Channel-first frames, ``(channels, height, width)``; the values are used as they
        are (MinAtar's are 0 or 1)
    :param n_filters: Filters of the convolution
    :param padding: Zeros added on each side: ``1`` keeps the 10x10 map, as the Flax convolution (padding
        ``SAME``) of Revisiting Rainbow does; ``0`` leaves 8x8, as MinAtar's own PyTorch network does
    """

    def __init__(self, observation_space: spaces.Box, n_filters: int = 16, padding: int = 1) -> None:
        channels, height, width = observation_space.shape
        # A 3x3 kernel with stride 1 makes a map 2 smaller than the padded frame
        super().__init__(observation_space, features_dim=n_filters * (height + 2 * padding - 2) * (width + 2 * padding - 2))
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, n_filters, kernel_size=3, stride=1, padding=padding), nn.ReLU(), nn.Flatten()
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.cnn(observations)
