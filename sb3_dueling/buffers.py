"""
Prioritized experience replay (Schaul et al. 2016), on SB3's replay buffers

Paper: https://arxiv.org/abs/1511.05952. Wang et al. (2016) reach their best Atari results with the
dueling network trained on it ("Prior. Duel."). Proportional prioritization: transition ``i`` is
sampled with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` with ``p_i = |TD error_i| + epsilon``,
and its loss is weighted by ``w_i = (N P(i))^-beta / max_j w_j`` (importance sampling), ``beta``
annealed to 1 over training.
"""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import TensorDict
from stable_baselines3.common.vec_env import VecNormalize

from sb3_dueling.sum_tree import SumTree


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's replay samples plus the importance-sampling weights and the indices to update priorities at."""

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    next_observations: th.Tensor | TensorDict
    dones: th.Tensor
    rewards: th.Tensor
    # For n-step returns (gamma ** steps taken); None for one-step returns, as in SB3
    discounts: th.Tensor | None
    weights: th.Tensor
    indices: np.ndarray


def _check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class PrioritizedReplayBuffer(ReplayBuffer):
    """
    Replay buffer with proportional prioritization on a sum tree (Schaul et al. 2016), for ``DuelingDQN``
    and ``DuelingQRDQN``.

    Use it as ``DuelingDQN(..., replay_buffer_class=PrioritizedReplayBuffer, replay_buffer_kwargs=dict(alpha=0.6))``.
    New transitions get the largest priority seen so far; ``sample()`` returns the importance-sampling
    weights and indices with the transitions; ``update_priorities()`` takes the new TD errors. Each
    (step, env) pair of several envs is one transition with its own priority. With ``n_steps > 1``,
    samples carry n-step returns like SB3's ``NStepReplayBuffer`` (both learners pass their own
    ``n_steps`` and ``gamma``).

    Every ``sample()`` must be followed by ``update_priorities()`` before new transitions are added:
    SB3's other algorithms (``DQN``, ``QRDQN``...) would ignore the weights and never update the
    priorities, and are stopped at their first env step after their first gradient step. Sampling
    by hand (to look at the buffer, to test or time it) needs nothing else.

    :param buffer_size: Max number of element in the buffer
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer (one-step returns only)
    :param handle_timeout_termination: Handle timeout termination (due to timelimit)
        separately and treat the task as infinite horizon task.
    :param alpha: How much prioritization is used (0: uniform sampling, 1: fully proportional); 0.6 in the paper
    :param beta: Initial importance-sampling exponent (0: no correction, 1: full correction); 0.4 in the paper
    :param final_beta: The importance-sampling exponent at the end of training, reached linearly
    :param epsilon: Added to the absolute TD error, so that no transition's priority is zero
    :param n_steps: Number of steps to accumulate rewards for n-step returns
    :param gamma: Discount factor for the n-step returns
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = 0.6,
        beta: float = 0.4,
        final_beta: float = 1.0,
        epsilon: float = 1e-6,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        self.alpha = _check_fraction("alpha", alpha)
        self.initial_beta = _check_fraction("beta", beta)
        self.final_beta = _check_fraction("final_beta", final_beta)
        self.gamma = _check_fraction("gamma", gamma)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        if n_steps > 1 and optimize_memory_usage:
            # SB3's NStepReplayBuffer raises the same
            raise NotImplementedError(f"{type(self).__name__} doesn't support optimize_memory_usage=True with n_steps > 1")
        self.epsilon = float(epsilon)
        self.n_steps = n_steps
        self.beta = self.initial_beta
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0
        # From sample() to update_priorities(): a learner that adds transitions meanwhile ignores the priorities
        self.priorities_due = False

    def anneal_beta(self, progress_remaining: float) -> None:
        """Move ``beta`` linearly from its initial value (progress remaining 1) to ``final_beta`` (0)."""
        # SB3's progress goes below 0 when the last rollout runs past total_timesteps
        progress_remaining = min(max(progress_remaining, 0.0), 1.0)
        self.beta = self.final_beta + (self.initial_beta - self.final_beta) * progress_remaining

    def add(self, *args: Any, **kwargs: Any) -> None:
        if self.priorities_due:
            raise TypeError(
                f"{type(self).__name__}: new transitions before the priorities of the last sample were updated. "
                "It needs an algorithm that weights the loss by the samples' weights and calls update_priorities() "
                "after each sample(): use sb3_dueling.DuelingDQN or sb3_dueling.DuelingQRDQN (SB3's DQN, sb3-contrib's QRDQN "
                "and other algorithms ignore both)"
            )
        leaves = self.pos * self.n_envs + np.arange(self.n_envs)
        super().add(*args, **kwargs)
        self.tree.update(leaves, self.max_priority)
        if self.optimize_memory_usage:
            # The observation at the new write position now holds the newest next observation:
            # the oldest transition stored there is no longer valid
            self.tree.update(self.pos * self.n_envs + np.arange(self.n_envs), 0.0)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        """
        Sample transitions in proportion to their priorities.

        :param batch_size: Number of transitions to sample
        :param env: associated VecNormalize to normalize the observations/rewards when sampling
        :return: the transitions, their importance-sampling weights (``[batch, 1]``) and their indices
        """
        total = self.tree.total
        if total <= 0:
            raise ValueError("cannot sample from an empty PrioritizedReplayBuffer")
        # Stratified: one draw from each of batch_size equal segments of the priority mass (Schaul et al., B.2.1)
        targets = (np.arange(batch_size) + np.random.random(batch_size)) * (total / batch_size)
        indices = self.tree.find(targets)
        probabilities = self.tree[indices] / total
        stored = (self.buffer_size if self.full else self.pos) * self.n_envs
        weights = (stored * probabilities) ** -self.beta
        weights /= weights.max()
        positions, env_indices = np.divmod(indices, self.n_envs)
        self.priorities_due = True
        return PrioritizedReplayBufferSamples(
            *self._get_transitions(positions, env_indices, env),
            weights=self.to_torch(weights.astype(np.float32).reshape(-1, 1)),
            indices=indices,
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """
        Set the priorities of sampled transitions from their new TD errors.

        :param indices: the ``indices`` of the samples
        :param td_errors: their TD errors (any shape with one value per index)
        """
        td_errors = np.asarray(td_errors, dtype=np.float64).ravel()
        non_finite = ~np.isfinite(td_errors)
        if non_finite.any():
            # A NaN priority would poison the sum tree's totals, and sampling would then fail far from the cause
            raise ValueError(
                f"{type(self).__name__}.update_priorities: non-finite TD errors for {non_finite.sum()} of the "
                f"{td_errors.size} sampled transitions (at {np.asarray(indices).ravel()[non_finite][:5].tolist()}: "
                f"{td_errors[non_finite][:5].tolist()}): the Q-values or their targets are not finite, the network "
                "diverged; pass check_finite=True to the learner to stop training where the first NaN or infinity appears"
            )
        priorities = (np.abs(td_errors) + self.epsilon) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.priorities_due = False

    def _get_transitions(
        self, positions: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> tuple[th.Tensor | TensorDict, th.Tensor, th.Tensor | TensorDict, th.Tensor, th.Tensor, th.Tensor | None]:
        """The transitions at (position, env) pairs, with n-step returns when ``n_steps > 1``."""
        if self.n_steps == 1:
            final, discounts = positions, None
            returns = self._normalize_reward(self.rewards[positions, env_indices].reshape(-1, 1), env)
        else:
            final, returns, discounts = self._n_step_returns(positions, env_indices, env)
        # Only terminations stop bootstrapping, not timeouts (timeouts are all zero unless handled)
        dones = self.dones[final, env_indices] * (1 - self.timeouts[final, env_indices])
        if self.optimize_memory_usage:
            next_observations = self._select(self.observations, (final + 1) % self.buffer_size, env_indices)
        else:
            next_observations = self._select(self.next_observations, final, env_indices)
        return (
            self._to_torch(self._normalize_obs(self._select(self.observations, positions, env_indices), env)),
            self.to_torch(self.actions[positions, env_indices]),
            self._to_torch(self._normalize_obs(next_observations, env)),
            self.to_torch(dones.reshape(-1, 1).astype(np.float32)),
            self.to_torch(returns.astype(np.float32)),
            None if discounts is None else self.to_torch(discounts.reshape(-1, 1).astype(np.float32)),
        )

    def _n_step_returns(
        self, positions: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The position of the last step taken, the discounted return and gamma ** steps taken."""
        steps = np.arange(self.n_steps)
        indices = (positions[:, None] + steps) % self.buffer_size  # [batch, n_steps]
        envs = env_indices[:, None]
        # An n-step return stops at the end of an episode (termination or truncation) and at the newest
        # transition, which is followed by nothing yet (or, once the buffer is full, by the oldest one)
        stops = (self.dones[indices, envs] > 0) | (self.timeouts[indices, envs] > 0)
        stops |= indices == (self.pos - 1) % self.buffer_size
        last = np.where(stops.any(axis=1), stops.argmax(axis=1), self.n_steps - 1)
        taken = steps <= last[:, None]
        rewards = self._normalize_reward(self.rewards[indices, envs], env)
        returns = (rewards * self.gamma**steps * taken).sum(axis=1, keepdims=True)
        return indices[np.arange(len(positions)), last], returns, self.gamma ** (last + 1.0)

    @staticmethod
    def _select(
        storage: np.ndarray | dict[str, np.ndarray], positions: np.ndarray, env_indices: np.ndarray
    ) -> np.ndarray | dict[str, np.ndarray]:
        if isinstance(storage, dict):
            return {key: array[positions, env_indices] for key, array in storage.items()}
        return storage[positions, env_indices]

    def _to_torch(self, observations: np.ndarray | dict[str, np.ndarray]) -> th.Tensor | TensorDict:
        if isinstance(observations, dict):
            return {key: self.to_torch(array) for key, array in observations.items()}
        return self.to_torch(observations)


class PrioritizedDictReplayBuffer(PrioritizedReplayBuffer, DictReplayBuffer):  # type: ignore[misc]
    """
    ``PrioritizedReplayBuffer`` for Dict observation spaces (``MultiInputPolicy``), on SB3's ``DictReplayBuffer``.

    It takes the same parameters as ``PrioritizedReplayBuffer`` (``optimize_memory_usage`` is not supported).
    """
