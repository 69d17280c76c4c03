"""
Dueling quantile networks as sb3-contrib QR-DQN policies: the dueling architecture of
:mod:`sb3_dueling.policies` with one value and one advantage per quantile,
theta_i(s, a) = V_i(s) + A_i(s, a) - mean_a' A_i(s, a')   (or max), as in Rainbow (Hessel et al. 2018).
"""

from numbers import Integral
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_dueling.heads import QuantileHead
from sb3_dueling.policies import (
    Aggregation,
    CnnDefaults,
    DuelingPolicyMixin,
    DuelingStreams,
    MultiInputDefaults,
    NatureCnnDefaults,
    NetArch,
)


def check_n_quantiles(n_quantiles: Any) -> int:
    """Return ``n_quantiles`` as an int, or raise a clear error if it is not a positive int."""
    if isinstance(n_quantiles, bool) or not isinstance(n_quantiles, Integral):
        raise TypeError(f"n_quantiles must be a positive int, got {n_quantiles!r}")
    if n_quantiles < 1:
        raise ValueError(f"n_quantiles must be a positive int, got {n_quantiles!r}")
    return int(n_quantiles)


class DuelingQuantileNetwork(DuelingStreams, QuantileNetwork):
    """
    Dueling quantile network: features extractor -> shared hidden layers -> a value stream V_i(s) and an
    advantage stream A_i(s, a), one output per quantile i -> theta_i(s, a) by
    :func:`~sb3_dueling.policies.aggregate`, for each quantile separately.

    :param observation_space: Observation space
    :param action_space: Action space
    :param features_extractor: The features extractor (shared by both streams)
    :param features_dim: Number of features out of the extractor
    :param n_quantiles: Number of quantiles
    :param net_arch: A list of hidden layer sizes shared by both streams, or a dict with the keys
        ``shared``, ``value`` and ``advantage`` (see :func:`~sb3_dueling.policies.parse_net_arch`).
        Default ``[64, 64]``.
    :param activation_fn: Activation function of the hidden layers
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param aggregation: ``"mean"`` (eq. 9 of the dueling paper) or ``"max"`` (eq. 8)
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
        from the two streams; the forward pass is unchanged (the paper uses ``1/sqrt(2)``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_quantiles: int = 200,
        net_arch: NetArch | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        aggregation: Aggregation = "mean",
        shared_gradient_scale: float = 1.0,
    ) -> None:
        n_quantiles = check_n_quantiles(n_quantiles)
        # QuantileNetwork.__init__ would build the single-stream quantile_net, which this network replaces.
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.n_quantiles = n_quantiles
        self._build_streams(
            features_dim, net_arch, activation_fn, aggregation, shared_gradient_scale, QuantileHead(n_quantiles)
        )


class DuelingQRDQNPolicy(DuelingPolicyMixin, QRDQNPolicy):
    """
    Policy class with a dueling quantile network and its target network, for QR-DQN.

    The subclasses below only change the defaults of ``features_extractor_class``,
    ``net_arch`` and ``shared_gradient_scale``, as for :class:`~sb3_dueling.policies.DuelingDQNPolicy`.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param n_quantiles: Number of quantiles
    :param net_arch: A list of hidden layer sizes shared by both streams (default ``[64, 64]``,
        ``[]`` with ``NatureCNN``), or a dict with the keys ``shared``, ``value`` and ``advantage``
        for separate hidden layers per stream
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use
        (default: the policy's ``default_features_extractor_class``, ``FlattenExtractor`` here)
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer. Unless they set ``fused`` or
        ``foreach``, the optimizer runs fused (``fused=True``) where PyTorch offers it.
    :param aggregation: ``"mean"`` (eq. 9 of the dueling paper, default) or ``"max"`` (eq. 8)
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
        from the two streams (the paper uses ``1/sqrt(2)``; default: the policy's
        ``default_shared_gradient_scale``, 1.0 here)
    """

    quantile_net: DuelingQuantileNetwork
    quantile_net_target: DuelingQuantileNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 200,
        net_arch: NetArch | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        aggregation: Aggregation = "mean",
        shared_gradient_scale: float | None = None,
    ) -> None:
        n_quantiles = check_n_quantiles(n_quantiles)
        net_arch, features_extractor_class, optimizer_kwargs = self._set_dueling_options(
            net_arch,
            activation_fn,
            features_extractor_class,
            optimizer_class,
            optimizer_kwargs,
            aggregation,
            shared_gradient_scale,
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            n_quantiles,
            net_arch,  # type: ignore[arg-type]  # QRDQNPolicy only stores it for make_quantile_net()
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    def make_quantile_net(self) -> DuelingQuantileNetwork:
        return self._make_dueling_net(DuelingQuantileNetwork)


DuelingQRDQNMlpPolicy = DuelingQRDQNPolicy


class DuelingQRDQNCnnPolicy(CnnDefaults, DuelingQRDQNPolicy):
    """
    Dueling quantile policy for image observations: SB3's ``NatureCNN`` is shared and each stream is one
    linear layer, as with sb3-contrib's QR-DQN ``CnnPolicy``. :class:`DuelingQRDQNNatureCnnPolicy` is the
    dueling paper's network.
    """


class DuelingQRDQNNatureCnnPolicy(NatureCnnDefaults, DuelingQRDQNPolicy):
    """
    The dueling paper's Atari network (see :class:`~sb3_dueling.policies.DuelingNatureCnnPolicy`) with
    quantile outputs: shared Nature-DQN convolutions, a 512-unit layer in each stream and the gradient
    entering the convolutions rescaled by ``1/sqrt(2)``.
    """


class DuelingQRDQNMultiInputPolicy(MultiInputDefaults, DuelingQRDQNPolicy):
    """Dueling quantile policy for Dict observations, with SB3's ``CombinedExtractor``."""
