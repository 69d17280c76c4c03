"""The update against an independent reference: a few gradient steps on a fixed batch, by hand in plain PyTorch."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBufferSamples
from stable_baselines3.common.logger import configure

from sb3_dueling import DuelingDQN, PrioritizedReplayBuffer
from sb3_dueling.buffers import PrioritizedReplayBufferSamples

GAMMA, LEARNING_RATE, MAX_GRAD_NORM, STEPS = 0.9, 0.05, 0.5, 4
BATCH = 8
DEVICE = th.device("cuda" if th.cuda.is_available() else "cpu")


def reference_q(params: dict[str, th.Tensor], obs: th.Tensor) -> th.Tensor:
    """Q = V + A - mean(A) of a dueling network with one shared ReLU layer, written out."""
    hidden = th.relu(obs @ params["shared_net.0.weight"].T + params["shared_net.0.bias"])
    value = hidden @ params["value_net.0.weight"].T + params["value_net.0.bias"]
    advantage = hidden @ params["advantage_net.0.weight"].T + params["advantage_net.0.bias"]
    return value + advantage - advantage.mean(dim=1, keepdim=True)


def reference_updates(
    online: dict[str, th.Tensor], target: dict[str, th.Tensor], batch, double_q: bool
) -> tuple[dict[str, th.Tensor], th.Tensor, bool]:
    """
    STEPS updates of the online parameters on one batch: the TD target (Double or max), the Huber
    loss (weighted), gradient clipping by global norm, Adam.

    :return: the parameters, the last TD errors and whether clipping changed a gradient
    """
    params = {name: tensor.clone().requires_grad_(True) for name, tensor in online.items()}
    optimizer = th.optim.Adam(params.values(), lr=LEARNING_RATE)
    rows = th.arange(BATCH, device=DEVICE)
    discounts = batch.discounts[:, 0] if batch.discounts is not None else th.full((BATCH,), GAMMA, device=DEVICE)
    weights = getattr(batch, "weights", th.ones(BATCH, 1, device=DEVICE))
    clipped = False
    for _ in range(STEPS):
        with th.no_grad():
            next_q_target = reference_q(target, batch.next_observations)
            if double_q:
                next_actions = reference_q(params, batch.next_observations).argmax(dim=1)
                next_values = next_q_target[rows, next_actions]
            else:
                next_values = next_q_target.max(dim=1).values
            td_target = batch.rewards[:, 0] + (1 - batch.dones[:, 0]) * discounts * next_values
        current = reference_q(params, batch.observations)[rows, batch.actions[:, 0]]
        error = current - td_target
        huber = th.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5)
        loss = (weights[:, 0] * huber).mean()
        optimizer.zero_grad()
        loss.backward()
        norm = th.sqrt(sum((p.grad**2).sum() for p in params.values()))
        if norm > MAX_GRAD_NORM:
            clipped = True
            for p in params.values():
                p.grad *= MAX_GRAD_NORM / (norm + 1e-6)
        optimizer.step()
    return {name: p.detach() for name, p in params.items()}, error.detach(), clipped


def fixed_batch(prioritized: bool, n_step: bool) -> ReplayBufferSamples | PrioritizedReplayBufferSamples:
    generator = th.Generator().manual_seed(7)
    transitions = dict(
        observations=th.randn(BATCH, 4, generator=generator),
        actions=th.tensor([[0], [1], [1], [0], [1], [0], [0], [1]]),
        next_observations=th.randn(BATCH, 4, generator=generator),
        dones=th.tensor([[0.0], [0.0], [1.0], [0.0], [0.0], [1.0], [0.0], [0.0]]),
        rewards=th.randn(BATCH, 1, generator=generator),
        # n-step returns end early at episode ends: gamma ** steps taken, per sample
        discounts=GAMMA ** th.tensor([[3.0], [1.0], [2.0], [3.0], [2.0], [1.0], [3.0], [3.0]]) if n_step else None,
    )
    weights = th.rand(BATCH, 1, generator=generator) * 0.9 + 0.1
    transitions = {name: None if value is None else value.to(DEVICE) for name, value in transitions.items()}
    if not prioritized:
        return ReplayBufferSamples(**transitions)
    return PrioritizedReplayBufferSamples(
        **transitions, weights=(weights / weights.max()).to(DEVICE), indices=np.arange(2, 2 + BATCH)
    )


def trained_model(monkeypatch, batch, double_q: bool, prioritized: bool) -> DuelingDQN:
    model = DuelingDQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=LEARNING_RATE,
        gamma=GAMMA,
        max_grad_norm=MAX_GRAD_NORM,
        double_q=double_q,
        replay_buffer_class=PrioritizedReplayBuffer if prioritized else None,
        buffer_size=100,
        policy_kwargs=dict(net_arch=[16]),
        seed=3,
        device=DEVICE,
    )
    model.set_logger(configure(None, []))
    with th.no_grad():  # a target network unlike the online one, so that the two targets differ
        for p in model.q_net_target.parameters():
            p.add_(0.5 * th.randn(p.shape, generator=th.Generator().manual_seed(11)).to(DEVICE))
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: batch)
    return model


@pytest.mark.parametrize("n_step", [False, True])
@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("double_q", [True, False])
def test_update_matches_reference(monkeypatch, double_q, prioritized, n_step):
    batch = fixed_batch(prioritized, n_step)
    model = trained_model(monkeypatch, batch, double_q, prioritized)
    online = {name: p.detach().clone() for name, p in model.q_net.state_dict().items()}
    target = {name: p.detach().clone() for name, p in model.q_net_target.state_dict().items()}
    expected, td_errors, clipped = reference_updates(online, target, batch, double_q)
    other, _, _ = reference_updates(online, target, batch, not double_q)
    # The batch tells the two targets apart, and the gradient clipping acts
    assert any(not th.allclose(expected[name], other[name]) for name in expected)
    assert clipped

    model.train(gradient_steps=STEPS, batch_size=BATCH)

    for name, p in model.q_net.state_dict().items():
        th.testing.assert_close(p, expected[name], msg=name)
    for name, p in model.q_net_target.state_dict().items():
        assert th.equal(p, target[name]), "the target network is not trained"
    assert model._n_updates == STEPS
    if prioritized:
        # The priorities are the last update's TD errors, |delta| + epsilon to the power alpha
        buffer = model.replay_buffer
        priorities = (td_errors.abs().cpu().numpy().astype(np.float64) + buffer.epsilon) ** buffer.alpha
        np.testing.assert_allclose(buffer.tree[batch.indices], priorities, rtol=1e-5)
        assert not buffer.priorities_due
