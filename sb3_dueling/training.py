"""
The training step shared by the dueling learners (``DuelingDQN``, ``DuelingQRDQN``)

What a learner's network outputs (one Q-value, quantiles, ...) is its head's business
(:mod:`sb3_dueling.heads`): the head selects the outputs of the actions taken, builds the TD target of
its own distribution and gives the loss. A learner only says which are its online and target networks;
everything else is here, once: sampling, the Double DQN or the max target, the optimizer step with
gradient clipping, prioritized replay (importance weights, priorities, ``beta``'s annealing, its n-step
returns), the ``check_finite`` guard and clear errors for a model file that cannot be loaded.
"""

import io
import pathlib
import warnings
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, PyTorchObs, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecCheckNan, is_vecenv_wrapped

from sb3_dueling.buffers import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from sb3_dueling.guards import StepCheckNan
from sb3_dueling.heads import Head
from sb3_dueling.model_files import check_model_file, check_policy_class, model_file_errors
from sb3_dueling.policies import DuelingStreams

SelfDuelingTraining = TypeVar("SelfDuelingTraining", bound="DuelingTrainingMixin")

#: Logged as TensorBoard histograms only
TENSORBOARD_ONLY = ("stdout", "log", "json", "csv")


class OnlineOutput(NamedTuple):
    """The online network's output on a batch."""

    #: The outputs of the actions taken (Q(s, a), its quantiles...), with gradients: what the loss trains
    current_values: th.Tensor
    #: V(s), shape (batch, 1), and A(s, a), shape (batch, n_actions), as the network gives them, for the logs
    #: (a quantile network's have the quantiles in between: (batch, n_quantiles, 1), (batch, n_quantiles, n_actions));
    #: ``None`` for a network with one stream
    value: th.Tensor | None
    advantage: th.Tensor | None
    #: The outputs of every action, the streams aggregated, for the logs
    outputs: th.Tensor


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise a ``TypeError`` naming the parameter ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


class DuelingTrainingMixin(OffPolicyAlgorithm):
    """
    The training step of a dueling learner, put before its SB3 algorithm:
    ``class DuelingDQN(DuelingTrainingMixin, DQN)``.

    The learner calls :meth:`_set_dueling_options` first in its ``__init__``, and supplies :meth:`_networks`.
    """

    #: The policies the learner trains (a subclass of it, or one of its ``policy_aliases``)
    policy_base: ClassVar[type[BasePolicy]]
    double_q: bool
    check_finite: bool
    #: DQN's is a float; QR-DQN's may be None, which clips nothing
    max_grad_norm: Any

    def _set_dueling_options(self, double_q: bool, check_finite: bool) -> None:
        """
        Check and store the options every dueling learner adds to its SB3 algorithm.

        :param double_q: Use the Double DQN target (else the max target)
        :param check_finite: Stop at the first non-finite loss, gradient, observation or reward
        """
        self.double_q = check_flag("double_q", double_q)
        self.check_finite = check_flag("check_finite", check_finite)

    def _networks(self) -> tuple[DuelingStreams, DuelingStreams]:
        """The online and the target network (their names differ between SB3's DQN and sb3-contrib's QR-DQN)."""
        raise NotImplementedError

    def _online_output(self, observations: PyTorchObs, actions: th.Tensor) -> OnlineOutput:
        """
        The online network's outputs for the actions taken, and its dueling streams.

        :param observations: the batch's observations
        :param actions: the actions taken, shape (batch, 1)
        """
        online, _ = self._networks()
        outputs, value, advantage = online.outputs_and_streams(observations)
        return OnlineOutput(online.head.select(outputs, actions), value, advantage, outputs)

    def _next_values(self, next_observations: PyTorchObs) -> th.Tensor:
        """
        The target network's outputs on the next states at the next actions, which the TD target bootstraps
        from (called under ``th.no_grad()``). ``double_q``: the Double DQN target (van Hasselt et al. 2016),
        which Wang et al. (2016) train the dueling network with: the online network picks the next action, the
        target network values it. Else DQN's (and QR-DQN's): the target network's own greedy action.

        :param next_observations: the batch's next observations
        """
        online, target = self._networks()
        next_outputs = target(next_observations)
        if self.double_q:
            next_actions = online.greedy_actions(next_observations)
        else:
            next_actions = target.head.greedy_actions(next_outputs)
        return target.head.select(next_outputs, next_actions)

    def _before_gradient_step(self) -> None:
        """Called before each gradient step, before its batch is sampled (a learner with noisy layers draws new noise)."""

    def _setup_model(self) -> None:
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, self.policy_base)):
            raise TypeError(
                f"{type(self).__name__} needs a dueling policy (a subclass of {self.policy_base.__name__}, or one of "
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

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)
        if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
            self.replay_buffer.anneal_beta(self._current_progress_remaining)
            self.logger.record("train/per_beta", self.replay_buffer.beta)

        # Summed in place on the device: one synchronisation per train() call, not one per gradient step,
        # and no small tensor per step kept alive between the large temporaries of the quantile loss (which
        # fragments glibc's heap: 1.6 GB peak RSS instead of 0.45 GB at 170 quantiles, docs/speed.md)
        loss_sum = th.zeros((), device=self.device)
        online_parameters = [param for group in self.policy.optimizer.param_groups for param in group["params"]]
        last_streams: tuple[th.Tensor, th.Tensor, th.Tensor] | None = None
        head = self._networks()[0].head
        for step in range(gradient_steps):
            self._before_gradient_step()
            # Sample replay buffer
            replay_data: ReplayBufferSamples | PrioritizedReplayBufferSamples
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            # Prioritized replay weights the samples to correct the bias of its sampling (Schaul et al. 2016, eq. 3)
            weights = replay_data.weights if isinstance(replay_data, PrioritizedReplayBufferSamples) else None

            # The online pass first: a noisy network's Double target pass then reuses its noisy weights
            online = self._online_output(replay_data.observations, replay_data.actions)
            with th.no_grad():
                # The TD target of the head's distribution, from Double DQN's next action or the max (see _next_values)
                next_values = self._next_values(replay_data.next_observations)
                target_values = head.target(next_values, replay_data.rewards, replay_data.dones, discounts)

            loss, td_errors = head.loss(online.current_values, target_values, weights)
            loss_sum += loss.detach()

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            loss.backward()
            # Clip gradient norm; QR-DQN's default max_grad_norm of None clips nothing and computes no norm.
            # The optimizer's parameters are the online network's: the target network's need no visit
            grad_norm = None
            if self.max_grad_norm is not None:
                grad_norm = th.nn.utils.clip_grad_norm_(online_parameters, self.max_grad_norm)
            if self.check_finite:
                if grad_norm is None:
                    grad_norm = th.nn.utils.get_total_norm([p.grad for p in online_parameters if p.grad is not None])
                # One synchronisation for both; a non-finite loss makes a non-finite gradient, so it is named first
                if not th.isfinite(th.stack((loss.detach(), grad_norm))).all():
                    what = "gradient" if th.isfinite(loss) else "loss (Q-values or their targets)"
                    self._stop_non_finite(what, step, stepped=False)
            self.policy.optimizer.step()
            # A finite gradient can still step the weights out of range (a learning rate of 1e38): checked here,
            # so that the network a check stops keeps finite weights. The largest |weight| of each tensor: no overflow
            if self.check_finite and not th.isfinite(th.stack(th._foreach_norm(online_parameters, float("inf")))).all():
                self._stop_non_finite("weights", step, stepped=True)

            if isinstance(replay_data, PrioritizedReplayBufferSamples):
                # The sampled transitions' new priorities, from their TD errors (Schaul et al. 2016, algorithm 1)
                self.replay_buffer.update_priorities(replay_data.indices, td_errors.cpu().numpy())  # type: ignore[union-attr]
            # The dueling diagnostics are those of the last batch
            if online.value is not None and online.advantage is not None:
                last_streams = online.value.detach(), online.advantage.detach(), online.outputs.detach()

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if gradient_steps > 0:  # gradient_steps=0 sampled no batch: no loss, no diagnostics
            self.logger.record("train/loss", (loss_sum / gradient_steps).item())
        if last_streams is not None:  # nor has a network with one stream any streams
            self._record_dueling_diagnostics(head, *last_streams)

    def _record_dueling_diagnostics(self, head: Head, value: th.Tensor, advantage: th.Tensor, outputs: th.Tensor) -> None:
        """
        Log how good the states of a batch are, V(s), and how much the choice of action matters in
        them, the range of A(s, .): their means, and their distributions as TensorBoard histograms
        (kept as tensors, no copy or synchronisation, until the logs are written).

        :param head: the network's head, which gives V and A as numbers (see ``Head.expected_streams``)
        :param value: V(s), shape (batch, 1), or per quantile or atom, shape (batch, n, 1)
        :param advantage: A(s, a), shape (batch, n_actions), or per quantile or atom, shape (batch, n, n_actions)
        :param outputs: the streams aggregated, shape (batch, [n,] n_actions)
        """
        # Reduced here, once per train() call, rather than at every gradient step
        value, advantage = head.expected_streams(value, advantage, outputs)
        spread = advantage.amax(dim=1) - advantage.amin(dim=1)
        self.logger.record("train/value_mean", value.mean().item())
        self.logger.record("train/advantage_range", spread.mean().item())
        self.logger.record("train/value_hist", value, exclude=TENSORBOARD_ONLY)
        self.logger.record("train/advantage_range_hist", spread, exclude=TENSORBOARD_ONLY)

    def _stop_non_finite(self, what: str, step: int, stepped: bool) -> None:
        """
        Stop training with a ``FloatingPointError`` that says what was not finite, where, and in what state
        it leaves the network (looked at here, not assumed).

        :param what: what was not finite
        :param step: the gradient step of this ``train()`` call it happened in, from 0
        :param stepped: whether the optimizer has taken that step
        """
        non_finite = next((name for name, param in self.policy.named_parameters() if not th.isfinite(param).all()), None)
        weights = (
            "(the network keeps its last finite weights)"
            if non_finite is None
            else f"with a NaN or an infinity in the policy's {non_finite} (no checkpoint is saved so: resume from the last)"
        )
        raise FloatingPointError(
            f"non-finite {what} at env step {self.num_timesteps}, gradient update {self._n_updates + step + 1}: "
            f"training stopped {'after' if stepped else 'before'} the optimizer step {weights}"
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

    @classmethod
    def load(
        cls: type[SelfDuelingTraining],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfDuelingTraining:
        """
        SB3's ``load``, with a clear error naming the file when it is missing (a
        ``CheckpointError`` that is also a ``FileNotFoundError``), truncated, corrupted, saved by
        another algorithm (saying which ``load`` reads it) or unreadable (a ``CheckpointError``).
        The file is checked without deserializing anything: what ``custom_objects`` replaces is
        never unpickled. See SB3's ``BaseAlgorithm.load`` for the parameters.
        """
        file = check_model_file(path, cls.__name__)
        if "policy_class" not in (custom_objects or {}):  # a policy class given in its place is the caller's choice
            # The learners, then the SB3 algorithms they are put before (the last base: see the class docstring)
            learners = DuelingTrainingMixin.__subclasses__()
            check_policy_class(file, cls, [*learners, *(learner.__bases__[-1] for learner in learners)])
        with model_file_errors(path, cls.__name__, reading_only=True):
            return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
