"""
What a Q-network outputs, in one place: a head per kind of output.

A network gives, for each state and action, one number (DQN: Q(s, a)), quantiles (QR-DQN: theta_i(s, a),
Dabney et al. 2018) or the logits of a categorical distribution over fixed atoms (C51: Bellemare et al. 2017).
The head of that kind answers everything a learner asks of those outputs:

- ``q_values``: the Q-values to act on, shape (batch, n_actions);
- ``select``: the outputs of one action per sample (the action taken, or the target's next action);
- ``target``: the TD target of its own distribution, from the next states' selected outputs;
- ``loss``: the loss to minimise and one loss per sample (prioritized replay's new priority).

``advantage_argmax_is_greedy`` says whether the argmax of a dueling network's advantage stream alone is the
greedy action: exact when Q is linear in the streams' outputs (the scalar and quantile heads, with the mean or
the max aggregation: V and the baseline are the same for every action of a state), not for the categorical
head, whose Q is the expected value of a softmax of V + A - baseline.
"""

import math
from typing import ClassVar

import torch as th
from torch.nn import functional as F

from sb3_dueling.quantile_loss import quantile_huber_loss


def check_support(n_atoms: int, v_min: float, v_max: float) -> None:
    """Raise a clear error for a categorical support that cannot be built."""
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, int):
        raise TypeError(f"n_atoms must be an int, got {n_atoms!r}")
    if n_atoms < 2:
        raise ValueError(f"n_atoms must be at least 2 (the atoms span [v_min, v_max]), got {n_atoms}")
    for name, value in (("v_min", v_min), ("v_max", v_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number, got {value!r}")
    if not v_min < v_max:
        raise ValueError(f"v_min must be smaller than v_max, got v_min={v_min!r}, v_max={v_max!r}")


class Head:
    """The outputs of a network of one kind, and what a learner computes from them."""

    #: Whether the argmax of the advantage stream alone is the greedy action (see the module docstring)
    advantage_argmax_is_greedy: ClassVar[bool]
    #: The dimensions between the batch and the actions: ``()`` for one Q-value, ``(n,)`` for a distribution
    support_shape: tuple[int, ...]

    def q_values(self, outputs: th.Tensor) -> th.Tensor:
        """
        :param outputs: the network's outputs, shape (batch, *support_shape, n_actions)
        :return: Q(s, a), shape (batch, n_actions)
        """
        raise NotImplementedError

    def greedy_actions(self, outputs: th.Tensor) -> th.Tensor:
        """The argmax of the Q-values, shape (batch,)."""
        return self.q_values(outputs).argmax(dim=1)

    def expected_streams(self, value: th.Tensor, advantage: th.Tensor, outputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        V(s) and A(s, a) of a dueling network as numbers in return units, for the logs and for ``explain``:
        here the means of the streams over the support (the streams themselves for one Q-value), whose
        argmax over the actions is the greedy action.

        :param value: the value stream, shape (batch, *support_shape, 1)
        :param advantage: the advantage stream, shape (batch, *support_shape, n_actions)
        :param outputs: the streams aggregated, shape (batch, *support_shape, n_actions)
        :return: V, shape (batch,), and A, shape (batch, n_actions)
        """
        batch_size, n_actions = advantage.shape[0], advantage.shape[-1]
        return value.reshape(batch_size, -1).mean(dim=1), advantage.reshape(batch_size, -1, n_actions).mean(dim=1)

    def select(self, outputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """
        The outputs of one action per sample.

        :param outputs: shape (batch, *support_shape, n_actions)
        :param actions: shape (batch, 1) or (batch,)
        :return: shape (batch, 1) for one Q-value, (batch, n) for a distribution
        """
        raise NotImplementedError

    def target(
        self, next_selected: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float
    ) -> th.Tensor:
        """
        The TD target: the distribution of ``r + discount * Z(s', a')``, cut at the end of an episode.

        :param next_selected: :meth:`select` of the target network's outputs on the next states, at the next actions
        :param rewards: shape (batch, 1); n-step returns with prioritized or n-step replay
        :param dones: shape (batch, 1): 1 where the episode ended (no bootstrap)
        :param discounts: gamma, or gamma ** n per sample, shape (batch, 1)
        """
        # The expression of SB3's DQN, in its order: the same floating-point result
        return rewards + (1 - dones) * discounts * next_selected

    def loss(self, current: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        """
        :param current: :meth:`select` of the online network's outputs at the actions taken (with gradients)
        :param target: :meth:`target`
        :param weights: prioritized replay's importance-sampling weights, shape (batch, 1), or ``None``
        :return: the loss (a scalar, averaged over the batch with the weights) and one error per sample,
            detached, whose absolute value is its new priority
        """
        raise NotImplementedError


class ScalarHead(Head):
    """One Q-value per action (DQN); the loss is DQN's Huber loss."""

    advantage_argmax_is_greedy = True

    def __init__(self) -> None:
        self.support_shape = ()

    def q_values(self, outputs: th.Tensor) -> th.Tensor:
        return outputs

    def select(self, outputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return th.gather(outputs, dim=1, index=actions.long().reshape(-1, 1))

    def loss(self, current: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        td_errors = (current - target).detach()
        if weights is None:
            return F.smooth_l1_loss(current, target), td_errors
        # Each sample weighted by its importance-sampling weight (Schaul et al. 2016, eq. 3)
        return (weights * F.smooth_l1_loss(current, target, reduction="none")).mean(), td_errors


def _select_along_actions(outputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """(batch, n, n_actions) at one action per sample -> (batch, n)."""
    index = actions.long().reshape(-1, 1, 1).expand(-1, outputs.shape[1], 1)
    return outputs.gather(dim=2, index=index).squeeze(dim=2)


class QuantileHead(Head):
    """
    ``n_quantiles`` quantiles per action (QR-DQN): Q is their mean; the loss is the quantile Huber loss, and
    each sample's loss is its priority.
    """

    advantage_argmax_is_greedy = True

    def __init__(self, n_quantiles: int) -> None:
        self.support_shape = (n_quantiles,)

    def q_values(self, outputs: th.Tensor) -> th.Tensor:
        return outputs.mean(dim=1)

    def select(self, outputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return _select_along_actions(outputs, actions)

    def loss(self, current: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        return quantile_huber_loss(current, target, weights)


class CategoricalHead(Head):
    """
    A categorical distribution over ``n_atoms`` fixed atoms on ``[v_min, v_max]`` per action (C51, Bellemare
    et al. 2017): the outputs are its logits, Q is the expected value of their softmax over the atoms, the
    target is the distribution of ``r + discount * z`` projected back onto the atoms, and the loss is the
    cross-entropy of the target against the prediction (each sample's, its priority, as in Rainbow).

    :param n_atoms: the number of atoms (51 in C51 and Rainbow)
    :param v_min: the smallest atom
    :param v_max: the largest atom
    """

    advantage_argmax_is_greedy = False

    def __init__(self, n_atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0) -> None:
        check_support(n_atoms, v_min, v_max)
        self.support_shape = (n_atoms,)
        self.n_atoms, self.v_min, self.v_max = n_atoms, float(v_min), float(v_max)
        self.delta_z = (self.v_max - self.v_min) / (n_atoms - 1)
        self._atoms: dict[tuple[th.device, th.dtype], th.Tensor] = {}

    def atoms(self, like: th.Tensor) -> th.Tensor:
        """The support z_0 < ... < z_{n_atoms - 1}, on the device and with the dtype of ``like``."""
        # Made once per device and dtype: every acting and every gradient step asks for it
        key = (like.device, like.dtype)
        if key not in self._atoms:
            self._atoms[key] = th.linspace(self.v_min, self.v_max, self.n_atoms, device=like.device, dtype=like.dtype)
        return self._atoms[key]

    def q_values(self, outputs: th.Tensor) -> th.Tensor:
        probabilities = outputs.softmax(dim=1)
        return th.einsum("bza,z->ba", probabilities, self.atoms(outputs))

    def select(self, outputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return _select_along_actions(outputs, actions)

    def expected_streams(self, value: th.Tensor, advantage: th.Tensor, outputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The streams are logits, joined before the softmax: as expected values, V is the expected atom of the
        value stream's own softmax, and A(s, a) = Q(s, a) - mean_a' Q(s, a'), the advantage of the aggregated
        distribution's expected values (its argmax is the greedy action).
        """
        value_probabilities = value.squeeze(-1).softmax(dim=1)
        q_values = self.q_values(outputs)
        return value_probabilities @ self.atoms(value), q_values - q_values.mean(dim=1, keepdim=True)

    def target(
        self, next_selected: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float
    ) -> th.Tensor:
        """
        The projection of the shifted atoms ``r + discount * z_j`` (clipped to the support), carrying the next
        state's probabilities p_j, onto the atoms: each shifted atom splits its probability between its two
        neighbours in proportion to closeness (C51, algorithm 1), for the whole batch at once.

        :return: the target probabilities, shape (batch, n_atoms), each row summing to 1
        """
        probabilities = next_selected.softmax(dim=1)
        atoms = self.atoms(probabilities)
        shifted = (rewards + (1 - dones) * discounts * atoms.unsqueeze(0)).clamp(self.v_min, self.v_max)
        position = (shifted - self.v_min) / self.delta_z  # in [0, n_atoms - 1]
        lower = position.floor().clamp(0, self.n_atoms - 1)
        upper = position.ceil().clamp(0, self.n_atoms - 1)
        # A shifted atom on an atom (lower == upper) gives it all its probability
        upper_share = position - lower
        lower_share = 1.0 - upper_share
        projected = th.zeros_like(probabilities)
        projected.scatter_add_(1, lower.long(), probabilities * lower_share)
        projected.scatter_add_(1, upper.long(), probabilities * upper_share)
        return projected

    def loss(self, current: th.Tensor, target: th.Tensor, weights: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        """Cross-entropy of the target probabilities against the softmax of the current logits, per sample."""
        per_sample = -(target * current.log_softmax(dim=1)).sum(dim=1)
        if weights is None:
            return per_sample.mean(), per_sample.detach()
        return (weights.reshape(-1) * per_sample).mean(), per_sample.detach()
