"""
Dueling networks (Wang et al. 2016, https://arxiv.org/abs/1511.06581): what every dueling network and
policy shares (the aggregation, the streams, the options), and the dueling Q-networks as SB3 DQN policies.
The quantile networks for sb3-contrib's QR-DQN are in :mod:`sb3_dueling.quantile_policies`.
"""

import inspect
import math
from functools import partial
from numbers import Integral
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

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

from sb3_dueling.heads import Head, ScalarHead
from sb3_dueling.noisy import SIGMA0, check_sigma0, noisy_mlp
from sb3_dueling.torch_layers import NatureConvExtractor, scale_gradient

Aggregation = Literal["mean", "max"]
AGGREGATIONS: tuple[str, ...] = ("mean", "max")
NetArch = list[int] | dict[str, list[int]]

#: The rescale of the gradient entering the shared layers used in the paper (Section 4.2).
PAPER_GRADIENT_SCALE = 1 / math.sqrt(2)


def aggregate(value: th.Tensor, advantage: th.Tensor, aggregation: Aggregation = "mean") -> th.Tensor:
    """
    Combine the two streams into Q-values (or into quantiles), for each state (and quantile) separately.

    ``"mean"``: Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')   (eq. 9 of the paper, used for all its results)
    ``"max"``:  Q(s, a) = V(s) + A(s, a) - max_a' A(s, a')    (eq. 8)

    For quantiles, the same for each quantile i: theta_i(s, a) = V_i(s) + A_i(s, a) - mean_a' A_i(s, a') (or max).

    :param value: V(s), shape (batch, 1), or V_i(s), shape (batch, n_quantiles, 1)
    :param advantage: A(s, a), shape (batch, n_actions), or A_i(s, a), shape (batch, n_quantiles, n_actions)
    :param aggregation: ``"mean"`` or ``"max"``
    :return: Q(s, a), shape (batch, n_actions), or theta_i(s, a), shape (batch, n_quantiles, n_actions)
    """
    # Reduce over the actions (the last dim) of each state and quantile only: Q of one state must not
    # depend on the other states of the batch, nor one quantile on the others.
    if aggregation == "mean":
        baseline = advantage.mean(dim=-1, keepdim=True)
    else:
        baseline = advantage.amax(dim=-1, keepdim=True)
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


class DuelingStreams(BasePolicy):
    """
    The dueling architecture, the same in every dueling network: features extractor -> shared hidden
    layers -> a value stream and an advantage stream -> :func:`aggregate`. A Q-network's streams give
    V(s) and A(s, a); a quantile network's give them for each quantile, V_i(s) and A_i(s, a).

    A network puts it first among its bases and calls :meth:`_build_streams` in its ``__init__``.
    """

    action_space: spaces.Discrete
    #: A list of layer sizes as in SB3's networks, or a dict (see :func:`parse_net_arch`)
    net_arch: Any
    aggregation: Aggregation
    shared_gradient_scale: float
    #: What the network outputs per action (one Q-value, quantiles, ...): see :mod:`sb3_dueling.heads`
    head: Head
    #: The value and advantage streams (True), or a single stream of outputs per action (False)
    dueling: bool

    def _build_streams(
        self,
        features_dim: int,
        net_arch: NetArch | None,
        activation_fn: type[nn.Module],
        aggregation: Aggregation,
        shared_gradient_scale: float,
        head: Head | None = None,
        dueling: bool = True,
        noisy: bool = False,
        sigma0: float = SIGMA0,
    ) -> None:
        """
        Check the options and build the shared layers and the two streams.

        :param features_dim: Number of features out of the extractor
        :param net_arch: See :func:`parse_net_arch`; default ``[64, 64]``
        :param activation_fn: Activation function of the hidden layers
        :param aggregation: ``"mean"`` or ``"max"``
        :param shared_gradient_scale: Factor applied to the gradient entering the shared layers
        :param head: What the network outputs per action; default one Q-value (:class:`~sb3_dueling.heads.ScalarHead`)
        :param dueling: The two streams; ``False``: one stream of outputs per action (with the hidden layers that
            ``net_arch`` gives the advantage stream), as in DQN
        :param noisy: Every linear layer after the features extractor is a factorised ``NoisyLinear``
        :param sigma0: The initial noise scale of the noisy layers
        """
        if not isinstance(self.action_space, spaces.Discrete):
            raise TypeError(f"action_space must be a gymnasium.spaces.Discrete, got {self.action_space}")
        if net_arch is None:
            net_arch = [64, 64]
        layers = parse_net_arch(net_arch)
        check_dueling_options(aggregation, shared_gradient_scale, activation_fn)
        check_sigma0(sigma0)

        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self.aggregation = aggregation
        self.shared_gradient_scale = shared_gradient_scale
        self.head = ScalarHead() if head is None else head
        self.dueling = dueling

        n_outputs = math.prod(self.head.support_shape)  # of each stream, per action: 1 for a Q-network
        n_actions = int(self.action_space.n)
        mlp = partial(noisy_mlp, sigma0=sigma0) if noisy else create_mlp
        self.shared_net = nn.Sequential(*mlp(features_dim, -1, layers.shared, activation_fn))
        latent_dim = layers.shared[-1] if layers.shared else features_dim
        if dueling:
            self.value_net = nn.Sequential(*mlp(latent_dim, n_outputs, layers.value, activation_fn))
            self.advantage_net = nn.Sequential(*mlp(latent_dim, n_outputs * n_actions, layers.advantage, activation_fn))
        else:
            # One stream, with the advantage stream's hidden layers: taking dueling out keeps the depth
            self.output_net = nn.Sequential(*mlp(latent_dim, n_outputs * n_actions, layers.advantage, activation_fn))

    def _latent(self, obs: PyTorchObs, gradient_scale: float | None = None) -> th.Tensor:
        latent = self.shared_net(self.extract_features(obs, self.features_extractor))
        # The two streams' gradients add up in the shared layers; the paper rescales their sum.
        return scale_gradient(latent, self.shared_gradient_scale if gradient_scale is None else gradient_scale)

    def _per_support(self, outputs: th.Tensor, n_columns: int) -> th.Tensor:
        # (batch, n_quantiles * n_columns) -> (batch, n_quantiles, n_columns); a Q-network's stay as they are
        return outputs.unflatten(-1, (*self.head.support_shape, n_columns))

    def value_and_advantage(self, obs: PyTorchObs, gradient_scale: float | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        Evaluate the two streams separately.

        :param obs: Observation
        :param gradient_scale: Factor applied to the gradient entering the shared layers in this pass only
            (default: the network's ``shared_gradient_scale``); the network is left as it is
        :return: V(s) with shape (batch, 1) and A(s, a) with shape (batch, n_actions);
            for quantiles, (batch, n_quantiles, 1) and (batch, n_quantiles, n_actions)
        """
        if not self.dueling:
            raise TypeError("the network has one stream (dueling=False): it has no value and advantage streams")
        latent = self._latent(obs, gradient_scale)
        value = self._per_support(self.value_net(latent), 1)
        return value, self._per_support(self.advantage_net(latent), int(self.action_space.n))

    def outputs_and_streams(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor | None, th.Tensor | None]:
        """
        The network's outputs per action (Q-values, quantiles, logits), shape (batch, *support, n_actions),
        and the value and advantage streams they were aggregated from (``None`` for a one-stream network).
        """
        if not self.dueling:
            return self._per_support(self.output_net(self._latent(obs)), int(self.action_space.n)), None, None
        value, advantage = self.value_and_advantage(obs)
        return aggregate(value, advantage, self.aggregation), value, advantage

    def advantage(self, obs: PyTorchObs) -> th.Tensor:
        """
        Evaluate the advantage stream only.

        :param obs: Observation
        :return: A(s, a) with shape (batch, n_actions); for quantiles, (batch, n_quantiles, n_actions)
        """
        return self._per_support(self.advantage_net(self._latent(obs)), int(self.action_space.n))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        Predict the Q-values (or their quantiles).

        :param obs: Observation
        :return: The estimated Q-Value (or its quantiles, or the logits of its distribution) for each action.
        """
        return self.outputs_and_streams(obs)[0]

    def greedy_actions(self, obs: PyTorchObs) -> th.Tensor:
        """
        The greedy action of each state, shape (batch,).

        Where Q is linear in the streams' outputs (``head.advantage_argmax_is_greedy``: one Q-value or
        quantiles), V(s) and the mean (or max) of A(s, .) are the same for every action of a state, so the
        greedy action is the argmax of A: acting needs the advantage stream only (paper, Sec. 3). With quantiles,
        Q(s, a) = mean_i theta_i(s, a) = mean_i V_i(s) + mean_i A_i(s, a) - mean_i (mean or max of A_i(s, .)),
        where only the middle term depends on a: the argmax of the mean of A over the quantiles. Otherwise (a
        softmax over atoms, or a network without streams), the argmax of the Q-values of the whole network.
        """
        if self.dueling and self.head.advantage_argmax_is_greedy:
            return self.head.q_values(self.advantage(obs)).argmax(dim=1).reshape(-1)
        return self.head.greedy_actions(self(obs)).reshape(-1)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.greedy_actions(observation)

    def set_training_mode(self, mode: bool) -> None:
        # SB3 sets the eval mode at every predict(), so at every env step, and nn.Module.train visits every
        # submodule: only a change of mode is passed on (the network's modules change mode together)
        if mode != self.training:
            super().set_training_mode(mode)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale)
        return data


class DuelingQNetwork(DuelingStreams, QNetwork):
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
        self._build_streams(features_dim, net_arch, activation_fn, aggregation, shared_gradient_scale)


DuelingNetwork = TypeVar("DuelingNetwork", bound=DuelingStreams)


class DuelingPolicyMixin(BasePolicy):
    """
    The options of a dueling policy, the same for DQN and QR-DQN: put it first among the policy's bases,
    call :meth:`_set_dueling_options` first in ``__init__`` and build the networks with
    :meth:`_make_dueling_net`. A subclass changes the defaults of ``features_extractor_class``,
    ``net_arch`` and ``shared_gradient_scale`` with its class attributes ``default_*``.
    """

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor
    default_net_arch: ClassVar[NetArch | None] = None
    default_shared_gradient_scale: ClassVar[float] = 1.0

    net_args: dict[str, Any]
    aggregation: Aggregation
    shared_gradient_scale: float

    def _set_dueling_options(
        self,
        net_arch: NetArch | None,
        activation_fn: type[nn.Module],
        features_extractor_class: type[BaseFeaturesExtractor] | None,
        optimizer_class: type[th.optim.Optimizer],
        optimizer_kwargs: dict[str, Any] | None,
        aggregation: Aggregation,
        shared_gradient_scale: float | None,
    ) -> tuple[NetArch | None, type[BaseFeaturesExtractor], dict[str, Any]]:
        """
        Check the dueling options, before the parent policy builds anything so that bad input fails first
        and clearly, fill in the policy's defaults and keep ``aggregation`` and ``shared_gradient_scale``
        for :meth:`_make_dueling_net`.

        :return: ``net_arch``, ``features_extractor_class`` and ``optimizer_kwargs`` for the parent policy
        """
        if net_arch is None:
            net_arch = self.default_net_arch
        if net_arch is not None:
            parse_net_arch(net_arch)
        if shared_gradient_scale is None:
            shared_gradient_scale = self.default_shared_gradient_scale
        check_dueling_options(aggregation, shared_gradient_scale, activation_fn)
        self.aggregation = aggregation
        self.shared_gradient_scale = shared_gradient_scale
        extractor_class = features_extractor_class or self.default_features_extractor_class
        return net_arch, extractor_class, with_fused_optimizer(optimizer_class, optimizer_kwargs)

    def _make_dueling_net(self, network_class: type[DuelingNetwork], **network_kwargs: Any) -> DuelingNetwork:
        # Make sure we always have separate networks for features extractors etc
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        network = network_class(
            **net_args, aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale, **network_kwargs
        )
        return network.to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(aggregation=self.aggregation, shared_gradient_scale=self.shared_gradient_scale)
        return data


class CnnDefaults:
    """The defaults of a dueling policy for images: SB3's ``NatureCNN``, each stream one linear layer."""

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = NatureCNN


class NatureCnnDefaults:
    """
    The defaults of the paper's Atari network (Section 4.2): the Nature-DQN convolutions shared, a
    512-unit layer in each stream, the gradient entering the convolutions rescaled by ``1/sqrt(2)``.
    """

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = NatureConvExtractor
    default_net_arch: ClassVar[NetArch | None] = {"value": [512], "advantage": [512]}
    default_shared_gradient_scale: ClassVar[float] = PAPER_GRADIENT_SCALE


class MultiInputDefaults:
    """The defaults of a dueling policy for Dict observations: SB3's ``CombinedExtractor``."""

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = CombinedExtractor


class DuelingDQNPolicy(DuelingPolicyMixin, DQNPolicy):
    """
    Policy class with a dueling Q-network and its target network.

    The subclasses below only change the defaults of ``features_extractor_class``,
    ``net_arch`` and ``shared_gradient_scale`` (the class attributes ``default_*`` of
    :class:`CnnDefaults`, :class:`NatureCnnDefaults`, :class:`MultiInputDefaults`).

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
            net_arch,  # type: ignore[arg-type]  # DQNPolicy only stores it for make_q_net()
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    def make_q_net(self) -> DuelingQNetwork:
        return self._make_dueling_net(DuelingQNetwork)


DuelingMlpPolicy = DuelingDQNPolicy


class DuelingCnnPolicy(CnnDefaults, DuelingDQNPolicy):
    """
    Dueling policy for image observations: SB3's ``NatureCNN`` (convolutions and a 512-unit
    layer) is shared and each stream is one linear layer, as with SB3's DQN ``CnnPolicy``.
    :class:`DuelingNatureCnnPolicy` is the paper's network.
    """


class DuelingNatureCnnPolicy(NatureCnnDefaults, DuelingDQNPolicy):
    """
    The paper's Atari network (Wang et al. 2016, Section 4.2): the Nature-DQN convolutions are
    shared (:class:`~sb3_dueling.torch_layers.NatureConvExtractor`), the value and the advantage
    stream each have their own 512-unit layer, and the gradient entering the shared
    convolutions is rescaled by ``1/sqrt(2)``.
    """


class DuelingMultiInputPolicy(MultiInputDefaults, DuelingDQNPolicy):
    """Dueling policy for Dict observations, with SB3's ``CombinedExtractor``."""
