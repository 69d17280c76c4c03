from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_dueling.arguments import checked_arguments
from sb3_dueling.policies import (
    DuelingCnnPolicy,
    DuelingDQNPolicy,
    DuelingMlpPolicy,
    DuelingMultiInputPolicy,
    DuelingNatureCnnPolicy,
    DuelingQNetwork,
)
from sb3_dueling.training import DuelingTrainingMixin

SelfDuelingDQN = TypeVar("SelfDuelingDQN", bound="DuelingDQN")


class DuelingDQN(DuelingTrainingMixin, DQN):
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
        (SB3's ``VecCheckNan``). The weights are checked after each optimizer step too. Costs two synchronisations
        per gradient step.
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
    policy_base = DuelingDQNPolicy
    q_net: DuelingQNetwork
    q_net_target: DuelingQNetwork
    policy: DuelingDQNPolicy

    @checked_arguments
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
        self._set_dueling_options(double_q, check_finite)
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
            _init_setup_model=_init_setup_model,
        )

    def _networks(self) -> tuple[DuelingQNetwork, DuelingQNetwork]:
        return self.q_net, self.q_net_target

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
