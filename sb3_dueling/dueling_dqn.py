import io
import pathlib
import warnings
from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.common.vec_env import VecCheckNan, is_vecenv_wrapped
from torch.nn import functional as F

from sb3_dueling.buffers import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from sb3_dueling.guards import StepCheckNan
from sb3_dueling.policies import (
    DuelingCnnPolicy,
    DuelingDQNPolicy,
    DuelingMlpPolicy,
    DuelingMultiInputPolicy,
    DuelingNatureCnnPolicy,
    DuelingQNetwork,
    aggregate,
)

SelfDuelingDQN = TypeVar("SelfDuelingDQN", bound="DuelingDQN")


class DuelingDQN(DQN):
    """
    Dueling Deep Q-Network (Dueling DQN), trained with the Double DQN target

    Paper: https://arxiv.org/abs/1511.06581 (Wang et al. 2016)
    Double DQN: https://arxiv.org/abs/1509.06461 (van Hasselt et al. 2016)
    Everything but the network and the target is SB3's ``DQN``; the default hyperparameters are
    the same as DQN's.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, DuelingNatureCnnPolicy...);
        every alias names a dueling policy
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function
        of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1) default 1 for hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``)
        Set to ``-1`` means to do as many gradient steps as steps done in the environment
        during the rollout.
    :param replay_buffer_class: Replay buffer class to use (for instance ``PrioritizedReplayBuffer``).
        If ``None``, it will be automatically selected.
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation.
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
        at a cost of more complexity.
    :param n_steps: When n_step > 1, uses n-step return (with the NStepReplayBuffer) when updating the Q-value network.
    :param target_update_interval: update the target network every ``target_update_interval``
        environment steps.
    :param exploration_fraction: fraction of entire training period over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability
    :param exploration_final_eps: final value of random action probability
    :param max_grad_norm: The maximum value for the gradient clipping (10 in the paper)
    :param double_q: Use the Double DQN target, as the paper does: the online network picks the
        next action, the target network values it. ``False`` gives DQN's max target.
    :param check_finite: Guard the training: stop with a ``FloatingPointError`` at the first non-finite loss
        (Q-values, targets) or gradient, before the optimizer step, so the network stays the last finite one;
        and with a ``ValueError`` naming the env step at the first non-finite observation or reward
        (SB3's ``VecCheckNan``). Costs one synchronisation per gradient step.
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
        (``net_arch``, ``aggregation``, ``shared_gradient_scale``, ...)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": DuelingMlpPolicy,
        "CnnPolicy": DuelingCnnPolicy,
        "MultiInputPolicy": DuelingMultiInputPolicy,
        "DuelingMlpPolicy": DuelingMlpPolicy,
        "DuelingCnnPolicy": DuelingCnnPolicy,
        "DuelingMultiInputPolicy": DuelingMultiInputPolicy,
        "DuelingNatureCnnPolicy": DuelingNatureCnnPolicy,
    }
    q_net: DuelingQNetwork
    q_net_target: DuelingQNetwork
    policy: DuelingDQNPolicy

    def __init__(
        self,
        policy: str | type[DuelingDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,  # 1e6
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        double_q: bool = True,
        check_finite: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not isinstance(double_q, bool):
            raise TypeError(f"double_q must be a bool, got {double_q!r}")
        if not isinstance(check_finite, bool):
            raise TypeError(f"check_finite must be a bool, got {check_finite!r}")
        if env is not None:
            env = maybe_make_env(env, verbose)
            if not isinstance(env.action_space, spaces.Discrete):
                raise ValueError(
                    f"DuelingDQN needs a Discrete action space (one Q-value per action), "
                    f"got env.action_space={env.action_space}"
                )
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.double_q = double_q
        self.check_finite = check_finite

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, DuelingDQNPolicy)):
            raise TypeError(
                f"DuelingDQN needs a dueling policy (a subclass of DuelingDQNPolicy, or one of "
                f"{sorted(self.policy_aliases)}), got policy={self.policy_class!r}"
            )
        if isinstance(self.replay_buffer_class, type) and issubclass(self.replay_buffer_class, PrioritizedReplayBuffer):
            # The prioritized buffer computes n-step returns itself
            self.replay_buffer_kwargs = {"n_steps": self.n_steps, "gamma": self.gamma, **self.replay_buffer_kwargs}
        with warnings.catch_warnings():
            # SB3 warns that n_steps is ignored with a custom buffer class; with a buffer that has its n_steps
            # (ours, or the NStepReplayBuffer a loaded model names) nothing is ignored
            if "n_steps" in self.replay_buffer_kwargs:
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored")
            super()._setup_model()
        self._claim_replay_buffer()

    def _claim_replay_buffer(self) -> None:
        if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
            self.replay_buffer.consumer = type(self).__name__

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        super().load_replay_buffer(path, truncate_last_traj)
        self._claim_replay_buffer()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)
        if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
            self.replay_buffer.anneal_beta(self._current_progress_remaining)
            self.logger.record("train/per_beta", self.replay_buffer.beta)

        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                next_q_values = self.q_net_target(replay_data.next_observations)
                if self.double_q:
                    # Double DQN (van Hasselt et al. 2016), the target of Wang et al. 2016: the online network
                    # picks the next action, the target network values it.
                    # Its greedy action is the argmax of its advantage stream (see DuelingQNetwork._predict).
                    next_actions = self.q_net.advantage(replay_data.next_observations).argmax(dim=1, keepdim=True)
                    next_q_values = next_q_values.gather(1, next_actions)
                else:
                    next_q_values = next_q_values.amax(dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            value, advantage = self.q_net.value_and_advantage(replay_data.observations)
            current_q_values = aggregate(value, advantage, self.q_net.aggregation)
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())

            loss = self._loss(replay_data, current_q_values, target_q_values)
            # Kept on the device: one synchronisation per train() call, not one per gradient step
            losses.append(loss.detach())

            if self.check_finite and not th.isfinite(loss):
                self._stop_non_finite("loss (Q-values or their targets)")
            self.policy.optimizer.zero_grad()
            loss.backward()
            # Only the online network has gradients: the target network's parameters need no visit
            grad_norm = th.nn.utils.clip_grad_norm_(self.q_net.parameters(), self.max_grad_norm)
            if self.check_finite and not th.isfinite(grad_norm):
                self._stop_non_finite("gradient")
            self.policy.optimizer.step()

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", th.stack(losses).mean().item())
        # Dueling diagnostics, on the last batch only (cheap): how good the states are, and how much
        # the choice of action matters in them.
        value, advantage = value.detach().flatten(), advantage.detach()
        spread = advantage.amax(dim=1) - advantage.amin(dim=1)
        self.logger.record("train/value_mean", value.mean().item())
        self.logger.record("train/advantage_range", spread.mean().item())
        # Their distributions over the batch as TensorBoard histograms: kept as tensors (no copy, no
        # synchronisation) until the logs are written, every log_interval episodes
        tensorboard_only = ("stdout", "log", "json", "csv")
        self.logger.record("train/value_hist", value, exclude=tensorboard_only)
        self.logger.record("train/advantage_range_hist", spread, exclude=tensorboard_only)

    def _stop_non_finite(self, what: str) -> None:
        raise FloatingPointError(
            f"non-finite {what} at env step {self.num_timesteps}, gradient update {self._n_updates + 1}: "
            "training stopped before the optimizer step (the network keeps its last finite weights)"
        )

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.check_finite and self.env is not None and not is_vecenv_wrapped(self.env, VecCheckNan):
            self.env = StepCheckNan(self.env, 0 if reset_num_timesteps else self.num_timesteps)
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def _loss(
        self,
        replay_data: ReplayBufferSamples | PrioritizedReplayBufferSamples,
        current_q_values: th.Tensor,
        target_q_values: th.Tensor,
    ) -> th.Tensor:
        """The Huber loss; with prioritized replay, weighted per sample, and the priorities updated."""
        if not isinstance(replay_data, PrioritizedReplayBufferSamples):
            return F.smooth_l1_loss(current_q_values, target_q_values)
        # Importance-sampling weights correct the bias of prioritized sampling (Schaul et al. 2016, eq. 3 and alg. 1)
        losses = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
        td_errors = (current_q_values - target_q_values).detach().cpu().numpy()
        self.replay_buffer.update_priorities(replay_data.indices, td_errors)  # type: ignore[union-attr]
        return (replay_data.weights * losses).mean()

    def learn(
        self: SelfDuelingDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "DuelingDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfDuelingDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
