"""The heads: what each kind of network output means, its TD target and its loss."""

import numpy as np
import pytest
import torch as th
from torch.nn import functional as F

from sb3_dueling.heads import CategoricalHead, QuantileHead, ScalarHead
from sb3_dueling.policies import aggregate
from sb3_dueling.quantile_loss import quantile_huber_loss


def projection_by_loop(probabilities, rewards, dones, discounts, atoms):
    """C51's algorithm 1, one sample and one atom at a time."""
    v_min, v_max, delta = atoms[0], atoms[-1], atoms[1] - atoms[0]
    projected = np.zeros_like(probabilities)
    for i in range(len(probabilities)):
        for j, atom in enumerate(atoms):
            shifted = min(max(rewards[i] + (1 - dones[i]) * discounts[i] * atom, v_min), v_max)
            b = (shifted - v_min) / delta
            lower, upper = int(np.floor(b)), int(np.ceil(b))
            if lower == upper:
                projected[i, lower] += probabilities[i, j]
            else:
                projected[i, lower] += probabilities[i, j] * (upper - b)
                projected[i, upper] += probabilities[i, j] * (b - lower)
    return projected


@pytest.mark.parametrize("n_atoms, v_min, v_max", [(51, -10.0, 10.0), (5, -2.0, 3.0), (2, 0.0, 1.0)])
def test_categorical_target_is_the_projection_of_algorithm_1(n_atoms, v_min, v_max):
    generator = th.Generator().manual_seed(0)
    head = CategoricalHead(n_atoms, v_min, v_max)
    batch = 64
    logits = th.randn(batch, n_atoms, generator=generator, dtype=th.float64)
    rewards = th.randn(batch, 1, generator=generator, dtype=th.float64) * 4
    rewards[:4] = th.tensor([[0.0], [100.0], [-100.0], [v_min]], dtype=th.float64)  # on an atom, beyond each end
    dones = (th.rand(batch, 1, generator=generator) < 0.2).double()
    discounts = th.rand(batch, 1, generator=generator, dtype=th.float64)
    discounts[:8] = 1.0
    target = head.target(logits, rewards, dones, discounts)
    expected = projection_by_loop(
        logits.softmax(dim=1).numpy(),
        rewards.squeeze(1).numpy(),
        dones.squeeze(1).numpy(),
        discounts.squeeze(1).numpy(),
        head.atoms(logits).numpy(),
    )
    np.testing.assert_allclose(target.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(target.sum(dim=1).numpy(), 1.0, atol=1e-12)


def test_categorical_target_of_a_terminal_transition_is_the_reward():
    head = CategoricalHead(11, -5.0, 5.0)
    target = head.target(th.randn(1, 11), th.tensor([[2.0]]), th.tensor([[1.0]]), 0.99)
    assert target[0, 7] == pytest.approx(1.0) and target.sum() == pytest.approx(1.0)


def test_categorical_q_values_are_the_expected_atoms():
    head = CategoricalHead(3, -1.0, 1.0)
    logits = th.log(th.tensor([[[0.5, 0.0], [0.25, 0.0], [0.25, 1.0]]]) + 1e-30)  # (batch 1, 3 atoms, 2 actions)
    np.testing.assert_allclose(head.q_values(logits).numpy(), [[-0.25, 1.0]], atol=1e-6)


def test_categorical_greedy_action_is_not_the_advantage_argmax():
    # The advantage-only shortcut (argmax of A's mean over the atoms) is exact for the scalar and quantile heads only
    head = CategoricalHead(3, -1.0, 1.0)
    value = th.zeros(1, 3, 1)
    advantage = th.tensor([[[10.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])  # action 0: mass on -1; action 1: on +1
    outputs = aggregate(value, advantage)
    shortcut = advantage.mean(dim=1).argmax(dim=1)
    assert shortcut.item() == 0
    assert head.greedy_actions(outputs).item() == 1
    assert not CategoricalHead.advantage_argmax_is_greedy
    assert ScalarHead.advantage_argmax_is_greedy and QuantileHead.advantage_argmax_is_greedy


@pytest.mark.parametrize("head_class", [ScalarHead, lambda: QuantileHead(7)])
def test_advantage_argmax_is_greedy_where_the_head_says_so(head_class):
    head = head_class()
    generator = th.Generator().manual_seed(1)
    shape = (32, *head.support_shape)
    value, advantage = th.randn(*shape, 1, generator=generator), th.randn(*shape, 5, generator=generator)
    for aggregation in ("mean", "max"):
        outputs = aggregate(value, advantage, aggregation)
        shortcut = advantage.mean(dim=1) if head.support_shape else advantage
        assert th.equal(head.greedy_actions(outputs), shortcut.argmax(dim=1))


def test_categorical_loss_is_the_cross_entropy_per_sample():
    head = CategoricalHead(5, -1.0, 1.0)
    current = th.randn(8, 5, requires_grad=True)
    target = th.randn(8, 5).softmax(dim=1)
    weights = th.rand(8, 1)
    loss, per_sample = head.loss(current, target, weights)
    expected = th.stack([F.cross_entropy(current[i : i + 1], target[i : i + 1]) for i in range(8)])
    th.testing.assert_close(per_sample, expected.detach())
    th.testing.assert_close(loss, (weights.squeeze(1) * expected).mean())
    loss.backward()
    assert current.grad is not None and th.isfinite(current.grad).all()


def test_scalar_and_quantile_heads_are_the_learners_own():
    generator = th.Generator().manual_seed(2)
    q_values, actions = th.randn(16, 4, generator=generator), th.randint(4, (16, 1), generator=generator)
    scalar = ScalarHead()
    assert th.equal(scalar.select(q_values, actions), q_values.gather(1, actions))
    current, target = th.randn(16, 1, generator=generator), th.randn(16, 1, generator=generator)
    loss, errors = scalar.loss(current, target)
    assert th.equal(loss, F.smooth_l1_loss(current, target)) and th.equal(errors, current - target)
    quantiles = th.randn(16, 7, 4, generator=generator)
    head = QuantileHead(7)
    assert th.equal(head.q_values(quantiles), quantiles.mean(dim=1))
    assert th.equal(head.select(quantiles, actions), quantiles[th.arange(16), :, actions.squeeze(1)])
    current, target = th.randn(16, 7, generator=generator), th.randn(16, 7, generator=generator)
    assert th.equal(head.loss(current, target)[0], quantile_huber_loss(current, target)[0])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(n_atoms=1), ValueError),
        (dict(n_atoms=2.5), TypeError),
        (dict(n_atoms=True), TypeError),
        (dict(v_min=1.0, v_max=1.0), ValueError),
        (dict(v_min=2.0, v_max=1.0), ValueError),
        (dict(v_max=float("inf")), TypeError),
        (dict(v_min="low"), TypeError),
    ],
)
def test_bad_support_is_refused_naming_the_parameter(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        CategoricalHead(**kwargs)
