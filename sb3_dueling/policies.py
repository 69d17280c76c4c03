"""
Dueling Q-networks (Wang et al. 2016, https://arxiv.org/abs/1511.06581) as SB3 DQN policies.
"""

import inspect
import math
from numbers import Integral
from typing import Any, ClassVar, Literal, NamedTuple

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_dueling.torch_layers import NatureConvExtractor, scale_gradient

Aggregation = Literal["mean", "max"]
AGGREGATIONS: tuple[str, ...] = ("mean", "max")
NetArch = list[int] | dict[str, list[int]]

#: The rescale of the gradient entering the shared layers used in the paper (Section 4.2).
PAPER_GRADIENT_SCALE = 1 / math.sqrt(2)


def aggregate(value: th.Tensor, advantage: th.Tensor, aggregation: Aggregation = "mean") -> th.Tensor:
    """
    Combine the two streams into Q-values, for each state separately.

    ``"mean"``: Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')   (eq. 9 of the paper, used for all its results)
    ``"max"``:  Q(s, a) = V(s) + A(s, a) - max_a' A(s, a')    (eq. 8)

    :param value: V(s), shape (batch, 1)
    :param advantage: A(s, a), shape (batch, n_actions)
    :param aggregation: ``"mean"`` or ``"max"``
    :return: Q(s, a), shape (batch, n_actions)
    """
    # Reduce over the actions (dim=1) of each state only: Q of one state must not depend
    # on the other states of the batch.
    if aggregation == "mean":
        baseline = advantage.mean(dim=1, keepdim=True)
    else:
        baseline = advantage.amax(dim=1, keepdim=True)
    return value + (advantage - baseline)


class DuelingNetArch(NamedTuple):
    """Hidden layer sizes of the shared trunk and of each stream."""

    shared: list[int]
    value: list[int]
    advantage: list[int]


def parse_net_arch(net_arch: NetArch) -> DuelingNetArch:
    """
    Check ``net_arch`` and bring it to one form.

    :param net_arch: Either a list of layer sizes shared by both streams (each stream is then
        a single linear layer), or a dict with the keys ``shared``, ``value`` and ``advantage``
        (each a list of layer sizes; a missing key means no hidden layer).
    :return: The layer sizes of the shared trunk, the value stream and the advantage stream
    """
    if isinstance(net_arch, dict):
        unknown = sorted(set(net_arch) - set(DuelingNetArch._fields))
        if unknown:
            raise ValueError(f"net_arch has unknown key(s) {unknown}; allowed keys are {list(DuelingNetArch._fields)}")
        layers = {key: net_arch.get(key, []) for key in DuelingNetArch._fields}
    elif isinstance(net_arch, (list, tuple)):
        layers = {"shared": net_arch, "value": [], "advantage": []}
    else:
        raise TypeError(
            "net_arch must be a list of ints (layers shared by both streams) or a dict with keys "
            f"{list(DuelingNetArch._fields)}, got {type(net_arch).__name__}: {net_arch!r}"
        )

    for key, sizes in layers.items():
        where = "net_arch" if isinstance(net_arch, (list, tuple)) else f"net_arch[{key!r}]"
        if not isinstance(sizes, (list, tuple)) or not all(
            isinstance(size, Integral) and not isinstance(size, bool) for size in sizes
        ):
            raise TypeError(f"{where} must be a list of ints, got {sizes!r}")
        if any(size <= 0 for size in sizes):
            raise ValueError(f"{where} must contain positive layer sizes, got {sizes!r}")
    return DuelingNetArch(**{key: [int(size) for size in sizes] for key, sizes in layers.items()})


def check_dueling_options(aggregation: str, shared_gradient_scale: float, activation_fn: type[nn.Module]) -> None:
    """Raise a clear error for an unknown ``aggregation``, a bad ``shared_gradient_scale`` or ``activation_fn``."""
    if not (isinstance(activation_fn, type) and issubclass(activation_fn, nn.Module)):
        raise TypeError(f"activation_fn must be a torch.nn.Module class such as nn.ReLU, got {activation_fn!r}")
    try:
        activation_fn()
    except TypeError as error:
        raise TypeError(f"activation_fn must take no arguments, like nn.ReLU; {activation_fn.__name__}(): {error}") from error
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    if isinstance(shared_gradient_scale, bool) or not isinstance(shared_gradient_scale, (int, float)):
        raise TypeError(f"shared_gradient_scale must be a positive float, got {shared_gradient_scale!r}")
    if not (0 < shared_gradient_scale < math.inf):
        raise ValueError(f"shared_gradient_scale must be a positive, finite float, got {shared_gradient_scale!r}")


def with_fused_optimizer(optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """
    Ask for PyTorch's fused implementation of the optimizer (Adam, AdamW, SGD...) unless the
    user chose an implementation: the same update in one kernel instead of several per
    parameter tensor, which is most of the optimizer's cost for the small networks of DQN.

    :param optimizer_class: The optimizer class
    :param optimizer_kwargs: The user's keyword arguments for it
    :return: The keyword arguments to use
    """
    optimizer_kwargs = dict(optimizer_kwargs or {})
    if "fused" in inspect.signature(optimizer_class).parameters and "foreach" not in optimizer_kwargs:
        optimizer_kwargs.setdefault("fused", True)
    return optimizer_kwargs


class DuelingQNetwork(QNetwork):
    """
    Dueling Q-network: features extractor -> shared hidden layers -> a value stream V(s)
    and an advantage stream A(s, a) -> Q(s, a) by :func:`aggregate`.

    :param observation_space: Observation space
    :param action_space: Action space
    :param features_extractor: The features extractor (shared by both streams)
    :param features_dim: Number of features out of the extractor
    :param net_arch: A list of hidden layer sizes shared by both streams, or a dict with the keys
        ``shared``, ``value`` and ``advantage`` (see :func:`parse_net_arch`). Default ``[64, 64]``.
    :param activation_fn: Activation function of the hidden layers
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param aggregation: ``"mean"`` (eq. 9 of the paper) or ``"max"`` (eq. 8)
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
        from the two streams; the forward pass is unchanged. The paper uses ``1/sqrt(2)``
        (:data:`PAPER_GRADIENT_SCALE`); 1.0 (the default) leaves the gradient as it is.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: NetArch | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        aggregation: Aggregation = "mean",
        shared_gradient_scale: float = 1.0,
    ) -> None:
        # QNetwork.__init__ would build the single-stream q_net, which this network replaces.
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"action_space must be a gymnasium.spaces.Discrete, got {action_space}")
        if net_arch is None:
            net_arch = [64, 64]
        layers = parse_net_arch(net_arch)
        check_dueling_options(aggregation, shared_gradient_scale, activation_fn)

        self.net_arch = net_arch  # type: ignore[assignment]  # a dict too, unlike QNetwork's
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self.aggregation = aggregation
        self.shared_gradient_scale = shared_gradient_scale

        n_actions = int(self.action_space.n)
        self.shared_net = nn.Sequential(*create_mlp(features_dim, -1, layers.shared, activation_fn))
        latent_dim = layers.shared[-1] if layers.shared else features_dim
        self.value_net = nn.Sequential(*create_mlp(latent_dim, 1, layers.value, activation_fn))
        self.advantage_net = nn.Sequential(*create_mlp(latent_dim, n_actions, layers.advantage, activation_fn))

    def _latent(self, obs: PyTorchObs) -> th.Tensor:
        latent = self.shared_net(self.extract_features(obs, self.features_extractor))
        # The two streams' gradients add up in the shared layers; the paper rescales their sum.
        return scale_gradient(latent, self.shared_gradient_scale)

    def value_and_advantage(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        Evaluate the two streams separately.

        :param obs: Observation
        :return: V(s) with shape (batch, 1) and A(s, a) with shape (batch, n_actions)
        """
        latent = self._latent(obs)
        return self.value_net(latent), self.advantage_net(latent)

    def advantage(self, obs: PyTorchObs) -> th.Tensor:
        """
        Evaluate the advantage stream only.

        :param obs: Observation
        :return: A(s, a) with shape (batch, n_actions)
        """
        return self.advantage_net(self._latent(obs))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        Predict the Q-values.

        :param obs: Observation
        :return: The estimated Q-Value for each action.
        """
        value, advantage = self.value_and_advantage(obs)
        return aggregate(value, advantage, self.aggregation)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        # V(s) and the mean (or max) of A(s, .) are the same for every action of a state, so the
        # greedy action is the argmax of A: acting needs the advantage stream only (paper, Sec. 3).
        return self.advantage(observation).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale)
        return data


class DuelingDQNPolicy(DQNPolicy):
    """
    Policy class with a dueling Q-network and its target network.

    The subclasses below only change the defaults of ``features_extractor_class``,
    ``net_arch`` and ``shared_gradient_scale`` (their class attributes ``default_*``).

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
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
    :param aggregation: ``"mean"`` (eq. 9 of the paper, default) or ``"max"`` (eq. 8)
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
        from the two streams (the paper uses ``1/sqrt(2)``, :data:`PAPER_GRADIENT_SCALE`;
        default: the policy's ``default_shared_gradient_scale``, 1.0 here)
    """

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor
    default_net_arch: ClassVar[NetArch | None] = None
    default_shared_gradient_scale: ClassVar[float] = 1.0

    q_net: DuelingQNetwork
    q_net_target: DuelingQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
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
        if net_arch is None:
            net_arch = self.default_net_arch
        # Checked before DQNPolicy builds anything, so that bad input fails first and clearly
        if net_arch is not None:
            parse_net_arch(net_arch)
        if shared_gradient_scale is None:
            shared_gradient_scale = self.default_shared_gradient_scale
        check_dueling_options(aggregation, shared_gradient_scale, activation_fn)
        # Read by make_q_net(), which DQNPolicy.__init__ calls.
        self.aggregation = aggregation
        self.shared_gradient_scale = shared_gradient_scale
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,  # type: ignore[arg-type]  # DQNPolicy only stores it for make_q_net()
            activation_fn,
            features_extractor_class or self.default_features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            with_fused_optimizer(optimizer_class, optimizer_kwargs),
        )

    def make_q_net(self) -> DuelingQNetwork:
        # Make sure we always have separate networks for features extractors etc
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args, aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale).to(
            self.device
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale)
        return data


DuelingMlpPolicy = DuelingDQNPolicy


class DuelingCnnPolicy(DuelingDQNPolicy):
    """
    Dueling policy for image observations: SB3's ``NatureCNN`` (convolutions and a 512-unit
    layer) is shared and each stream is one linear layer, as with SB3's DQN ``CnnPolicy``.
    :class:`DuelingNatureCnnPolicy` is the paper's network.
    """

    default_features_extractor_class = NatureCNN


class DuelingNatureCnnPolicy(DuelingDQNPolicy):
    """
    The paper's Atari network (Wang et al. 2016, Section 4.2): the Nature-DQN convolutions are
    shared (:class:`~sb3_dueling.torch_layers.NatureConvExtractor`), the value and the advantage
    stream each have their own 512-unit layer, and the gradient entering the shared
    convolutions is rescaled by ``1/sqrt(2)``.
    """

    default_features_extractor_class = NatureConvExtractor
    default_net_arch: ClassVar[NetArch | None] = {"value": [512], "advantage": [512]}
    default_shared_gradient_scale = PAPER_GRADIENT_SCALE


class DuelingMultiInputPolicy(DuelingDQNPolicy):
    """Dueling policy for Dict observations, with SB3's ``CombinedExtractor``."""

    default_features_extractor_class = CombinedExtractor
