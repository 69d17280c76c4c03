"""The quantile Huber loss: sb3-contrib's values and gradients, with weights, and only (batch, N) kept for backward."""

import pytest
import torch as th
from sb3_contrib.common.utils import quantile_huber_loss as sb3_contrib_loss

from sb3_dueling.quantile_loss import quantile_huber_loss

# (batch, current quantiles, target quantiles)
SHAPES = [(1, 1, 1), (5, 2, 7), (16, 10, 10), (64, 51, 33)]


def quantiles(batch: int, n_quantiles: int, n_targets: int, dtype: th.dtype = th.float32) -> tuple[th.Tensor, th.Tensor]:
    generator = th.Generator().manual_seed(batch * 1000 + n_quantiles + n_targets)
    # Spread so that both the quadratic and the linear part of the Huber loss are hit
    current = th.randn(batch, n_quantiles, generator=generator, dtype=dtype) * 2
    target = th.randn(batch, n_targets, generator=generator, dtype=dtype) * 2
    return current, target


def reference(current: th.Tensor, target: th.Tensor, weights: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
    """sb3-contrib's loss of each sample alone, weighted and averaged over the batch."""
    per_sample = th.stack([sb3_contrib_loss(current[i : i + 1], target[i : i + 1]) for i in range(len(current))])
    if weights is None:
        return per_sample.mean(), per_sample
    return (weights.flatten() * per_sample).mean(), per_sample


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_values_and_gradients_equal_sb3_contrib(shape):
    current, target = quantiles(*shape)
    mine, theirs = current.clone().requires_grad_(), current.clone().requires_grad_()
    loss, per_sample = quantile_huber_loss(mine, target)
    expected = sb3_contrib_loss(theirs, target, sum_over_quantiles=True)
    th.testing.assert_close(loss, expected)
    th.testing.assert_close(per_sample, reference(current, target, None)[1])
    loss.backward()
    expected.backward()
    th.testing.assert_close(mine.grad, theirs.grad)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_weighted_values_and_gradients(shape):
    current, target = quantiles(*shape)
    weights = th.rand(shape[0], 1, generator=th.Generator().manual_seed(7)) + 0.1
    mine, theirs = current.clone().requires_grad_(), current.clone().requires_grad_()
    loss, per_sample = quantile_huber_loss(mine, target, weights)
    expected, expected_per_sample = reference(theirs, target, weights)
    th.testing.assert_close(loss, expected)
    th.testing.assert_close(per_sample, expected_per_sample.detach())
    assert not per_sample.requires_grad
    loss.backward()
    expected.backward()
    th.testing.assert_close(mine.grad, theirs.grad)
    # weights of shape (batch,) weigh the same
    th.testing.assert_close(quantile_huber_loss(current, target, weights.flatten())[0], loss.detach())


@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck_in_float64(weighted):
    current, target = quantiles(4, 6, 5, dtype=th.float64)
    weights = th.rand(4, 1, dtype=th.float64, generator=th.Generator().manual_seed(1)) if weighted else None
    # Away from the kinks of the loss (d = 0, |d| = 1), where finite differences are not its gradient
    assert ((target.unsqueeze(1) - current.unsqueeze(2)).abs() - 1).abs().min() > 1e-3
    assert th.autograd.gradcheck(
        lambda x: quantile_huber_loss(x, target, weights)[0], (current.requires_grad_(),), eps=1e-6, atol=1e-7
    )


def test_no_gradient_flows_into_the_target():
    current, target = quantiles(8, 5, 5)
    current.requires_grad_()
    target.requires_grad_()
    quantile_huber_loss(current, target)[0].backward()
    assert current.grad is not None and target.grad is None


def test_backward_keeps_only_the_gradient_of_the_current_quantiles():
    current, target = quantiles(32, 20, 20)
    current.requires_grad_()
    saved_shapes = []

    def pack(tensor):
        saved_shapes.append(tuple(tensor.shape))
        return tensor

    with th.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        quantile_huber_loss(current, target)[0].backward()
    # sb3-contrib's keeps several (batch, N, N) tensors for backward; this keeps one (batch, N)
    assert max(saved_shapes, key=lambda shape: th.Size(shape).numel()) == (32, 20)
    saved_shapes.clear()
    with th.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        sb3_contrib_loss(current, target)
    assert (32, 20, 20) in saved_shapes, "the reference keeps the pairwise tensors (what this test guards against)"


@pytest.mark.parametrize(
    "current_shape, target_shape, match",
    [((4, 5, 1), (4, 5), "shape"), ((4, 5), (5,), "shape"), ((4, 5), (3, 5), "same batch size")],
)
def test_bad_shapes(current_shape, target_shape, match):
    with pytest.raises(ValueError, match=match):
        quantile_huber_loss(th.zeros(current_shape), th.zeros(target_shape))
