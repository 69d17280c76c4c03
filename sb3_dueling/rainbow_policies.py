"""
Rainbow's networks (Hessel et al. 2018, https://arxiv.org/abs/1710.02298) as SB3 DQN policies: the dueling
architecture of :mod:`sb3_dueling.policies` with any head (C51's categorical distribution, quantiles or one
Q-value), one stream or two, plain or noisy linear layers. Each part is one argument, so that each can be
switched off and its worth measured.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_dueling.heads import CategoricalHead, Head, QuantileHead, ScalarHead, check_support
from sb3_dueling.noisy import SIGMA0, check_sigma0, mean_network, reset_noise
from sb3_dueling.policies import (
    Aggregation,
    CnnDefaults,
    DuelingDQNPolicy,
    DuelingQNetwork,
    MultiInputDefaults,
    NatureCnnDefaults,
    NetArch,
)
from sb3_dueling.quantile_policies import check_n_quantiles
from sb3_dueling.training import check_flag

Distribution = Literal["categorical", "quantile"] | None
DISTRIBUTIONS: tuple[Distribution, ...] = ("categorical", "quantile", None)

#: Set while ``Rainbow`` builds its policy: SB3's DQN, which cannot train these networks, is refused
_BUILT_BY_RAINBOW: ContextVar[bool] = ContextVar("built_by_rainbow", default=False)


@contextmanager
def building_for_rainbow() -> Iterator[None]:
    """Within the block, a ``RainbowPolicy`` may be built (``Rainbow`` builds its policy in it)."""
    token = _BUILT_BY_RAINBOW.set(True)
    try:
        yield
    finally:
        _BUILT_BY_RAINBOW.reset(token)


def check_distribution(distribution: Any) -> None:
    """Raise a clear error for a ``distribution`` that is not one of :data:`DISTRIBUTIONS`."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r}")


def make_head(distribution: Distribution, n_atoms: int, v_min: float, v_max: float, n_quantiles: int) -> Head:
    """The head of a ``distribution``: C51's atoms, QR-DQN's quantiles, or one Q-value (``None``)."""
    if distribution == "categorical":
        return CategoricalHead(n_atoms, v_min, v_max)
    if distribution == "quantile":
        return QuantileHead(n_quantiles)
    return ScalarHead()


class RainbowNetwork(DuelingQNetwork):
    """
    Rainbow's Q-network: features extractor -> shared hidden layers -> a value and an advantage stream (or one
    stream) -> the outputs of ``head`` per action, each linear layer after the features extractor noisy or not.

    With noisy layers, acting for exploration (``deterministic=False``) draws new noise for every acting step
    (unless ``draws_noise_to_act`` is unset: then the noise last drawn is held); deterministic acting uses the mean
    weights (Fortunato et al. 2018).

    :param observation_space: Observation space
    :param action_space: Action space
    :param features_extractor: The features extractor (shared by both streams)
    :param features_dim: Number of features out of the extractor
    :param head: What the network outputs per action
    :param net_arch: See :func:`~sb3_dueling.policies.parse_net_arch`
    :param activation_fn: Activation function of the hidden layers
    :param normalize_images: Whether to normalize images or not, dividing by 255.0
    :param aggregation: ``"mean"`` or ``"max"``
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
    :param dueling: The value and advantage streams, else one stream
    :param noisy: Noisy linear layers
    :param sigma0: Their initial noise scale
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        head: Head,
        net_arch: NetArch | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        aggregation: Aggregation = "mean",
        shared_gradient_scale: float = 1.0,
        dueling: bool = True,
        noisy: bool = True,
        sigma0: float = SIGMA0,
    ) -> None:
        # QNetwork.__init__ would build the single-stream q_net, which this network replaces.
        BasePolicy.__init__(
            self, observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self._build_streams(
            features_dim, net_arch, activation_fn, aggregation, shared_gradient_scale, head, dueling, noisy, sigma0
        )
        #: Draw new noise at every acting step (unset by a learner that draws it on a schedule of its own)
        self.draws_noise_to_act = True

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        if deterministic:
            with mean_network(self):
                return self.greedy_actions(observation)
        if self.draws_noise_to_act:
            reset_noise(self)  # a new draw for every acting step (none without noisy layers)
        return self.greedy_actions(observation)


class RainbowPolicy(DuelingDQNPolicy):
    """
    Rainbow's policy: the dueling policy with a :class:`RainbowNetwork` and its target network, trained by
    ``sb3_dueling.Rainbow`` only. SB3's ``DQN`` would read a categorical network's logits as Q-values and never
    draw new noise for its gradient steps or its target network: it is refused with a clear ``TypeError``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param distribution: ``"categorical"`` (C51, Rainbow's), ``"quantile"`` (QR-DQN) or ``None`` (one Q-value)
    :param n_atoms: The atoms of the categorical distribution (51 in C51 and Rainbow)
    :param v_min: The smallest atom
    :param v_max: The largest atom
    :param n_quantiles: The quantiles of the quantile distribution
    :param dueling: The value and advantage streams (else one stream, as in DQN)
    :param noisy: Noisy linear layers after the features extractor (factorised Gaussian)
    :param sigma0: The noisy layers' initial noise scale (0.5 in the paper)
    :param net_arch: A list of hidden layer sizes shared by both streams (default ``[64, 64]``), or a dict with the
        keys ``shared``, ``value`` and ``advantage``
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to normalize images or not, dividing by 255.0
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param aggregation: ``"mean"`` (eq. 9 of the dueling paper, default) or ``"max"`` (eq. 8)
    :param shared_gradient_scale: Factor applied to the gradient that enters the shared layers
    """

    #: The one learner that trains it (the model files' check names no other ``load``)
    trained_only_by: ClassVar[str] = "Rainbow"
    q_net: RainbowNetwork
    q_net_target: RainbowNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        distribution: Distribution = "categorical",
        n_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
        n_quantiles: int = 200,
        dueling: bool = True,
        noisy: bool = True,
        sigma0: float = SIGMA0,
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
        if not _BUILT_BY_RAINBOW.get():
            raise TypeError(
                f"{type(self).__name__} is trained by sb3_dueling.Rainbow only: SB3's DQN would read a categorical "
                "network's logits as Q-values and never draw new noise for its updates; use Rainbow(...) (with "
                "distribution=None, noisy=False, dueling=False for a DQN-like agent)"
            )
        check_distribution(distribution)
        check_support(n_atoms, v_min, v_max)
        self.n_quantiles = check_n_quantiles(n_quantiles)
        self.dueling, self.noisy = check_flag("dueling", dueling), check_flag("noisy", noisy)
        check_sigma0(sigma0)
        self.distribution, self.n_atoms, self.v_min, self.v_max, self.sigma0 = distribution, n_atoms, v_min, v_max, sigma0
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            aggregation,
            shared_gradient_scale,
        )

    def make_q_net(self) -> RainbowNetwork:
        head = make_head(self.distribution, self.n_atoms, self.v_min, self.v_max, self.n_quantiles)
        return self._make_dueling_net(RainbowNetwork, head=head, dueling=self.dueling, noisy=self.noisy, sigma0=self.sigma0)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            distribution=self.distribution,
            n_atoms=self.n_atoms,
            v_min=self.v_min,
            v_max=self.v_max,
            n_quantiles=self.n_quantiles,
            dueling=self.dueling,
            noisy=self.noisy,
            sigma0=self.sigma0,
        )
        return data


RainbowMlpPolicy = RainbowPolicy


class RainbowCnnPolicy(CnnDefaults, RainbowPolicy):
    """Rainbow's policy for image observations: SB3's ``NatureCNN`` shared, each stream one (noisy) linear layer."""


class RainbowNatureCnnPolicy(NatureCnnDefaults, RainbowPolicy):
    """
    Rainbow's policy with the dueling paper's Atari network: the Nature-DQN convolutions shared, a 512-unit (noisy)
    layer in each stream, the gradient entering the convolutions rescaled by ``1/sqrt(2)`` (Hessel et al. 2018 use
    the dueling network of Wang et al. 2016).
    """


class RainbowMultiInputPolicy(MultiInputDefaults, RainbowPolicy):
    """Rainbow's policy for Dict observations: SB3's ``CombinedExtractor``."""
