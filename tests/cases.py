"""
Cases shared by the tests of both dueling learners (``DuelingDQN``, ``DuelingQRDQN``): a fixed batch to
compute an update by hand on, and a small task to learn.
"""

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBufferSamples
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

#: Off-policy settings with which IdentityEnv(dim=4, ep_length=10) is learnt in a few thousand steps
IDENTITY_SETTINGS: dict[str, Any] = dict(
    learning_rate=1e-3,
    learning_starts=200,
    buffer_size=5000,
    batch_size=32,
    train_freq=1,
    target_update_interval=100,
    exploration_fraction=0.3,
    exploration_final_eps=0.02,
    seed=0,
)


def identity_env() -> IdentityEnv:
    """Reward 1 when the action repeats the observed state: a greedy policy must find it for all 4 states."""
    return IdentityEnv(dim=4, ep_length=10)


def identity_return(model: BaseAlgorithm) -> float:
    """The mean return of the greedy policy over 20 episodes of :func:`identity_env` (10 at most)."""
    mean_reward, _ = evaluate_policy(model, Monitor(identity_env()), n_eval_episodes=20)
    return float(mean_reward)


def fixed_batch(generator: th.Generator, discounts: th.Tensor | None = None) -> ReplayBufferSamples:
    """
    Six CartPole transitions (two of them terminal), the observations drawn from ``generator``.

    :param discounts: for n-step returns, gamma ** steps taken, shape (6, 1); ``None`` for one-step returns
    """
    return ReplayBufferSamples(
        observations=th.randn(6, 4, generator=generator),
        actions=th.tensor([[0], [1], [1], [0], [1], [0]]),
        next_observations=th.randn(6, 4, generator=generator),
        dones=th.tensor([[0.0], [0.0], [1.0], [0.0], [0.0], [1.0]]),
        rewards=th.tensor([[1.0], [-0.5], [2.0], [0.0], [0.3], [1.0]]),
        discounts=discounts,
    )
