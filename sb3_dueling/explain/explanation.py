"""
What the two streams learned: V(s), A(s, .), Q(s, .) and each stream's saliency for a batch of observations.

Saliency as in Wang et al. (2016), after Simonyan et al. (2013): the absolute Jacobian of the value
stream, ``|dV(s)/ds|``, and of the advantage of the greedy action, ``|dA(s, a*)/ds|``, with respect to
the observation, computed with autograd: one batched forward pass, one backward pass per stream.

A quantile network (QR-DQN) has a V_i(s) and an A_i(s, a) per quantile i: V and A are then their means
over the quantiles, and Q(s, a) the mean over the quantiles of theta_i(s, a), the aggregated quantiles
(QR-DQN's Q-value). The greedy action a* is the argmax of A's mean, as the network acts. A categorical
network (C51, Rainbow) joins the streams' logits before the softmax over the atoms: V is then the expected
atom of the value stream's softmax and A(s, a) = Q(s, a) - mean_a' Q(s, a'), in return units (see
``Head.expected_streams``). Noisy layers give their mean weights, as when the model acts deterministically.

    from sb3_dueling.explain import explain
    explanation = explain(model, observations)  # a DuelingDQN or DuelingQRDQN, or a DQN / QRDQN with a dueling policy
    explanation.value, explanation.advantage_saliency
"""

from dataclasses import dataclass

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling.noisy import mean_network
from sb3_dueling.policies import DuelingStreams, aggregate


@dataclass
class Explanation:
    """
    The streams of a dueling network on a batch of observations (NumPy arrays, batch first); for a quantile
    network, V, A and Q are their means over the quantiles.
    """

    #: V(s), shape (batch,)
    value: np.ndarray
    #: A(s, a), shape (batch, n_actions)
    advantage: np.ndarray
    #: Q(s, a), shape (batch, n_actions)
    q_values: np.ndarray
    #: The greedy action a*, shape (batch,)
    action: np.ndarray
    #: |dV(s)/ds|, the shape of the observations
    value_saliency: np.ndarray
    #: |dA(s, a*)/ds|, the shape of the observations
    advantage_saliency: np.ndarray

    @property
    def advantage_gap(self) -> np.ndarray:
        """A of the best action minus A of the second best: how much the choice matters, shape (batch,)."""
        ordered = np.sort(self.advantage, axis=1)
        return ordered[:, -1] - ordered[:, -2] if ordered.shape[1] > 1 else np.zeros(len(ordered))


def dueling_network(model: BaseAlgorithm) -> DuelingStreams:
    """The model's online dueling network (a Q-network or a quantile network), or a clear error for a model without one."""
    network = getattr(model, "q_net", getattr(model, "quantile_net", None))
    if not isinstance(network, DuelingStreams) or not network.dueling:
        raise TypeError(
            f"the model has no dueling head (its network is {type(network).__name__}): explain needs a DuelingDQN, a "
            "DuelingQRDQN, or an SB3 DQN or sb3-contrib QRDQN with a dueling policy (DuelingMlpPolicy, DuelingCnnPolicy...)"
        )
    if not isinstance(model.observation_space, spaces.Box):
        raise TypeError(f"explain needs a Box observation space (vectors or images), got {model.observation_space}")
    return network


def explain(model: BaseAlgorithm, observations: np.ndarray) -> Explanation:
    """
    Evaluate both streams and their saliency on a batch of observations.

    :param model: a ``DuelingDQN`` or ``DuelingQRDQN``, or an SB3 ``DQN`` or sb3-contrib ``QRDQN`` with a
        dueling policy
    :param observations: a batch of observations as the env gives them (images as they come, before
        the network's scaling), shape ``(batch, *observation_space.shape)``
    :return: the values, advantages, Q-values, greedy actions and saliencies
    """
    network = dueling_network(model)
    observations = np.asarray(observations)
    expected = tuple(model.observation_space.shape or ())
    if observations.shape[1:] != expected:
        raise ValueError(f"observations must have shape (batch, {', '.join(map(str, expected))}), got {observations.shape}")
    # Float and leaf, so that autograd reaches the raw observation (the network scales images itself)
    obs = th.as_tensor(observations, dtype=th.float32, device=model.device).requires_grad_(True)
    # Eval mode for batch norm and dropout, given back as found: explaining a model in training changes nothing
    was_training = network.training
    network.set_training_mode(False)
    try:
        # The paper's 1/sqrt(2) rescale is a training device: the saliency is the network's true gradient; noisy
        # layers give their mean weights, with which the model acts deterministically
        with mean_network(network):
            streams = network.value_and_advantage(obs, gradient_scale=1.0)
    finally:
        network.set_training_mode(was_training)
    # Aggregated per quantile (or atom) first: with the max aggregation, the mean of theta_i is not the aggregate of
    # the means
    outputs = aggregate(*streams, network.aggregation)
    q_values = network.head.q_values(outputs)
    value, advantage = network.head.expected_streams(*streams, outputs)
    action = advantage.argmax(dim=1)
    # Samples do not interact in the network, so the gradient of the sum is each sample's own gradient
    value_gradient, advantage_gradient = (
        th.autograd.grad(output.sum(), obs, retain_graph=True)[0] for output in (value, advantage.gather(1, action[:, None]))
    )
    return Explanation(
        value=value.detach().cpu().numpy(),
        advantage=advantage.detach().cpu().numpy(),
        q_values=q_values.detach().cpu().numpy(),
        action=action.cpu().numpy(),
        value_saliency=value_gradient.abs().cpu().numpy(),
        advantage_saliency=advantage_gradient.abs().cpu().numpy(),
    )
