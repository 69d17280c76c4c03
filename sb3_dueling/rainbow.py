from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, RolloutReturn, Schedule, TrainFreq
from stable_baselines3.common.vec_env import VecEnv

from sb3_dueling.arguments import checked_arguments
from sb3_dueling.buffers import PrioritizedDictReplayBuffer, PrioritizedReplayBuffer
from sb3_dueling.noisy import reset_noise
from sb3_dueling.rainbow_policies import (
    Distribution,
    RainbowCnnPolicy,
    RainbowMultiInputPolicy,
    RainbowNatureCnnPolicy,
    RainbowNetwork,
    RainbowPolicy,
    building_for_rainbow,
    check_distribution,
)
from sb3_dueling.training import DuelingTrainingMixin, check_flag

SelfRainbow = TypeVar("SelfRainbow", bound="Rainbow")

#: The switches that are also the policy's options: given to Rainbow, passed on in policy_kwargs
POLICY_SWITCHES = ("distribution", "dueling", "noisy")
#: Rainbow's prioritized replay (Hessel et al. 2018, Table 1): alpha 0.5, beta 0.4 rising to 1
PRIORITIZED_DEFAULTS = {"alpha": 0.5, "beta": 0.4}
#: Rainbow's Adam (Hessel et al. 2018, Table 1)
ADAM_EPSILON = 1.5e-4


def check_noise_sample_freq(noise_sample_freq: Any, noisy: bool) -> int:
    """Return ``noise_sample_freq`` if it is a positive int or -1 (and 1 without noisy layers), else raise."""
    if isinstance(noise_sample_freq, bool) or not isinstance(noise_sample_freq, int):
        raise TypeError(f"noise_sample_freq must be an int (acting steps, or -1), got {noise_sample_freq!r}")
    if noise_sample_freq == 0 or noise_sample_freq < -1:
        raise ValueError(
            f"noise_sample_freq must be a positive number of acting steps or -1 (once per rollout), got {noise_sample_freq!r}"
        )
    if noise_sample_freq != 1 and not noisy:
        raise ValueError(f"noise_sample_freq={noise_sample_freq} needs noisy=True: there is no noise to draw")
    return noise_sample_freq


class Rainbow(DuelingTrainingMixin, DQN):
    """
    Rainbow: Combining Improvements in Deep Reinforcement Learning, with every part switchable

    Paper: https://arxiv.org/abs/1710.02298 (Hessel et al. 2018)
    Its six parts, each one argument: the dueling network (``dueling``, Wang et al. 2016), the Double DQN target
    (``double_q``, van Hasselt et al. 2016), prioritized replay (``prioritized``, Schaul et al. 2016), n-step
    returns (``n_steps``), a distribution of returns (``distribution``: C51's categorical distribution,
    Bellemare et al. 2017, or QR-DQN's quantiles, Dabney et al. 2018) and noisy networks for exploration
    (``noisy``, Fortunato et al. 2018). The defaults are the paper's: all six on, 3-step returns, 51 atoms on
    [-10, 10], prioritized replay with alpha 0.5 and beta 0.4 -> 1 and the distributional loss as priority,
    noise scale 0.5 and no epsilon-greedy, Adam with eps 1.5e-4 and learning rate 6.25e-5. With everything off it
    is DQN (the same update as SB3's ``DQN``); ``distribution="categorical"`` alone is C51.
    Everything else is SB3's ``DQN``: target updates, exploration schedule, callbacks, logging, save/load.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, NatureCnnPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1) default 1 for hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``);
        ``-1`` means as many gradient steps as steps done in the environment during the rollout.
    :param replay_buffer_class: Replay buffer class to use; default: ``PrioritizedReplayBuffer`` (or
        ``PrioritizedDictReplayBuffer`` for Dict observations) with ``prioritized``, else SB3's choice
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation (with ``prioritized``,
        ``alpha`` 0.5 and ``beta`` 0.4 unless given)
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
    :param n_steps: n-step returns (3 in Rainbow; 1 for one-step returns)
    :param target_update_interval: update the target network every ``target_update_interval`` environment steps
    :param exploration_fraction: fraction of entire training period over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability; default 0 with ``noisy`` (the noise
        explores), else 1
    :param exploration_final_eps: final value of random action probability; default 0 with ``noisy``, else 0.01
    :param max_grad_norm: The maximum value for the gradient clipping (``None``: no clipping)
    :param dueling: The dueling network's value and advantage streams; ``False``: one stream
    :param double_q: The Double DQN target; ``False``: the target network's own greedy action
    :param prioritized: Prioritized replay, with the loss of each sample as its priority
    :param distribution: ``"categorical"`` (C51), ``"quantile"`` (QR-DQN) or ``None`` (one Q-value, Huber loss);
        the number of atoms, their range and the number of quantiles are ``policy_kwargs``
        (``n_atoms``, ``v_min``, ``v_max``, ``n_quantiles``)
    :param noisy: Noisy linear layers for exploration (their noise scale is ``policy_kwargs``' ``sigma0``)
    :param noise_sample_freq: Draw new noise for acting every ``noise_sample_freq`` acting steps and at the start
        of each rollout; default 1, a new draw at every step (Rainbow's); -1: only at the start of each rollout, so
        that the agent acts with one draw from one training to the next (as SB3's ``sde_sample_freq`` for gSDE).
        Noise held over many steps explores consistently, which a task like MountainCar needs
    :param check_finite: Stop at the first non-finite loss, gradient, weights, observation or reward
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (``net_arch``, ``n_atoms``,
        ``v_min``, ``v_max``, ``n_quantiles``, ``sigma0``, ``aggregation``, ...)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": RainbowPolicy,
        "CnnPolicy": RainbowCnnPolicy,
        "MultiInputPolicy": RainbowMultiInputPolicy,
        "NatureCnnPolicy": RainbowNatureCnnPolicy,
    }
    policy_base = RainbowPolicy
    q_net: RainbowNetwork
    q_net_target: RainbowNetwork
    policy: RainbowPolicy

    @checked_arguments
    def __init__(
        self,
        policy: str | type[RainbowPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 6.25e-5,
        buffer_size: int = 1_000_000,
        learning_starts: int = 20_000,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 3,
        target_update_interval: int = 8_000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float | None = None,
        exploration_final_eps: float | None = None,
        max_grad_norm: float | None = 10,
        dueling: bool = True,
        double_q: bool = True,
        prioritized: bool = True,
        distribution: Distribution = "categorical",
        noisy: bool = True,
        noise_sample_freq: int = 1,
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
        self.dueling, self.noisy = check_flag("dueling", dueling), check_flag("noisy", noisy)
        self.prioritized = check_flag("prioritized", prioritized)
        self.noise_sample_freq = check_noise_sample_freq(noise_sample_freq, noisy)
        self._acting_steps = 0  # in the rollout being collected
        check_distribution(distribution)
        self.distribution = distribution
        policy_kwargs = dict(policy_kwargs or {})
        given_twice = [name for name in POLICY_SWITCHES if name in policy_kwargs]
        if given_twice:
            raise TypeError(f"give {', '.join(given_twice)} as Rainbow's own argument(s), not in policy_kwargs")
        policy_kwargs.update(distribution=distribution, dueling=dueling, noisy=noisy)
        policy_kwargs.setdefault("optimizer_kwargs", {"eps": ADAM_EPSILON})
        # The noise explores: no epsilon-greedy unless asked for (Hessel et al. 2018, Section 3)
        if exploration_initial_eps is None:
            exploration_initial_eps = 0.0 if noisy else 1.0
        if exploration_final_eps is None:
            exploration_final_eps = 0.0 if noisy else 0.01
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
            max_grad_norm=max_grad_norm,  # type: ignore[arg-type]  # None clips nothing (see the training step)
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _setup_model(self) -> None:
        is_prioritized = isinstance(self.replay_buffer_class, type) and issubclass(
            self.replay_buffer_class, PrioritizedReplayBuffer
        )
        if self.prioritized and self.replay_buffer_class is None:
            dict_observations = isinstance(self.observation_space, spaces.Dict)
            self.replay_buffer_class = PrioritizedDictReplayBuffer if dict_observations else PrioritizedReplayBuffer
            self.replay_buffer_kwargs = {**PRIORITIZED_DEFAULTS, **self.replay_buffer_kwargs}
        elif self.prioritized and not is_prioritized:
            raise ValueError(
                f"prioritized=True needs a PrioritizedReplayBuffer, got replay_buffer_class={self.replay_buffer_class!r}: "
                "leave replay_buffer_class out, or pass prioritized=False"
            )
        elif not self.prioritized and is_prioritized:
            raise ValueError(
                f"replay_buffer_class={self.replay_buffer_class.__name__} is prioritized replay: pass prioritized=True"  # type: ignore[union-attr]
            )
        with building_for_rainbow():
            super()._setup_model()

    def _networks(self) -> tuple[RainbowNetwork, RainbowNetwork]:
        return self.q_net, self.q_net_target

    def _before_gradient_step(self) -> None:
        # Independent noise for the online and the target network at every gradient step (Fortunato et al. 2018)
        reset_noise(self.q_net)
        reset_noise(self.q_net_target)

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        if self.noise_sample_freq == 1:  # the network draws new noise itself at every acting step
            return super().collect_rollouts(
                env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
            )
        # The noise is drawn on this learner's schedule (_sample_action), and the network holds it in between
        self._acting_steps = 0
        self.q_net.draws_noise_to_act = False
        try:
            return super().collect_rollouts(
                env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
            )
        finally:
            self.q_net.draws_noise_to_act = True

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.q_net.draws_noise_to_act:
            period = self.noise_sample_freq
            if self._acting_steps == 0 or (period > 0 and self._acting_steps % period == 0):
                reset_noise(self.q_net)
            self._acting_steps += 1
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def learn(
        self: SelfRainbow,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "Rainbow",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRainbow:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
