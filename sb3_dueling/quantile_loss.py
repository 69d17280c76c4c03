"""
The quantile Huber loss of QR-DQN (Dabney et al. 2018, https://arxiv.org/abs/1710.10044), with its gradient
computed in the forward pass.

sb3-contrib's ``quantile_huber_loss`` builds several (batch, n_quantiles, n_target_quantiles) tensors and
autograd keeps them for the backward pass; with 170 quantiles that is most of the time and the memory of a
QR-DQN update. Here the forward pass computes each sample's loss and its gradient with respect to the current
quantiles at once, and keeps only that gradient, (batch, n_quantiles), for the backward pass.
"""

from typing import Any

import torch as th
from torch.autograd.function import once_differentiable


class _QuantileHuberLoss(th.autograd.Function):
    """Per-sample quantile Huber loss of ``current`` (differentiable) against a constant ``target``."""

    @staticmethod
    def forward(ctx: Any, current: th.Tensor, target: th.Tensor) -> th.Tensor:
        n_quantiles = current.shape[1]
        # The midpoints tau_i of the quantile fractions (QR-DQN, Lemma 2), one per current quantile
        tau = (th.arange(n_quantiles, device=current.device, dtype=current.dtype) + 0.5) / n_quantiles
        # d_ij = target_j - current_i, shape (batch, n_quantiles, n_target_quantiles)
        delta = target.unsqueeze(1) - current.unsqueeze(2)
        # huber(d) = c * (d - c / 2) with c = clamp(d, -1, 1), and huber'(d) = c
        clipped = delta.clamp(-1.0, 1.0)
        # |tau_i - 1{d_ij < 0}| * c_ij = c_ij / 2 + (tau_i - 1/2) * |c_ij|, as c has the sign of d
        weighted = clipped.abs().mul_((tau - 0.5).unsqueeze(1)).add_(clipped, alpha=0.5)
        # d loss / d current_i = -mean_j |tau_i - 1{d_ij < 0}| * c_ij
        ctx.save_for_backward(weighted.mean(dim=2).neg_())
        # Summed over the current quantiles, averaged over the target quantiles
        huber_over_clipped = delta.sub_(clipped, alpha=0.5)
        return th.linalg.vecdot(weighted, huber_over_clipped).sum(dim=1) / target.shape[1]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: th.Tensor) -> tuple[th.Tensor, None]:
        (gradient,) = ctx.saved_tensors
        return grad_output.unsqueeze(1) * gradient, None


def quantile_huber_loss(
    current_quantiles: th.Tensor, target_quantiles: th.Tensor, weights: th.Tensor | None = None
) -> tuple[th.Tensor, th.Tensor]:
    """
    QR-DQN's quantile Huber loss: the same values and gradients as sb3-contrib's
    ``quantile_huber_loss(current_quantiles, target_quantiles, sum_over_quantiles=True)``, in less time and
    memory. With prioritized replay, each sample's loss is weighted by its importance-sampling weight
    (Schaul et al. 2016, eq. 3). The target quantiles are constants (the TD target): no gradient flows into them.

    :param current_quantiles: the current quantiles of the actions taken, shape (batch, n_quantiles)
    :param target_quantiles: their TD targets, shape (batch, n_target_quantiles)
    :param weights: the importance-sampling weights, shape (batch, 1) or (batch,), or ``None`` (uniform replay)
    :return: the loss, averaged over the batch, and each sample's loss (summed over the current
        quantiles, averaged over the target quantiles), detached, shape (batch,)
    """
    if current_quantiles.ndim != 2 or target_quantiles.ndim != 2:
        raise ValueError(
            "current_quantiles and target_quantiles must have shape (batch, n_quantiles), "
            f"got {tuple(current_quantiles.shape)} and {tuple(target_quantiles.shape)}"
        )
    if current_quantiles.shape[0] != target_quantiles.shape[0]:
        raise ValueError(
            f"current_quantiles and target_quantiles must have the same batch size, "
            f"got {current_quantiles.shape[0]} and {target_quantiles.shape[0]}"
        )
    per_sample_loss = _QuantileHuberLoss.apply(current_quantiles, target_quantiles.detach())
    if weights is None:
        return per_sample_loss.mean(), per_sample_loss.detach()
    return (weights.reshape(-1) * per_sample_loss).mean(), per_sample_loss.detach()
