"""
Where the time of one env step goes while a learner trains, phase by phase: what to make faster.

    python -m benchmarks.step_profile [--env CartPole-v1] [--steps 5000] [--learners DQN Rainbow ...]
                                      [--seed 0] [--warmup 500] [--updates 50]

A classic-control env (``CartPole-v1``, ``Acrobot-v1`` ...) runs SB3 ``DQN``, ``DuelingDQN``, sb3-contrib ``QRDQN``,
``DuelingQRDQN`` and ``Rainbow``, each with its own YAML entry, built as ``benchmarks.speed`` builds them. A MinAtar game
(``Breakout``, ``Asterix``, ``SpaceInvaders``) runs the learners of ``benchmarks.minatar`` (``DQN``, ``DuelingDQN``,
``Rainbow``) with its protocol. Each learner runs in a fresh process on one torch thread: after a warm-up (its
``learning_starts`` plus ``--warmup`` env steps), ``--steps`` env steps of ``model.learn`` are timed, phase by phase,
with wall-clock timers on a stack, so that each phase's time excludes the phases nested in it:

- ``env step``: the VecEnv's ``step_wait`` (the env, its Monitor, the automatic reset);
- ``acting``: ``model._sample_action``, the greedy action (the network's forward included) or a random one;
- ``storing``: ``replay_buffer.add``;
- ``sampling``: ``replay_buffer.sample``;
- ``forward``: within ``train()`` only, the ``forward`` of the immediate children of the online and the target
  network (features extractor, ``q_net``, ``shared_net``, ``value_net``, ``advantage_net`` ...); what the network's
  own ``forward`` does around them (the dueling aggregation, a softmax over atoms) is ``update, rest``;
- ``backward``: ``torch.Tensor.backward``; ``clip``: ``torch.nn.utils.clip_grad_norm_`` (SB3's, sb3-contrib's and
  this package's ``train()`` look both up when called); ``optimizer``: the optimizer's ``step`` and ``zero_grad``;
  ``priorities``: ``replay_buffer.update_priorities`` (prioritized replay);
- ``update, rest``: ``train()``'s own time: the loss, the targets, indexing, the logging of the update;
- ``SB3 bookkeeping``: the rest of ``learn``: the loop, callbacks, the logger, schedules, target network updates.

The children's ``forward`` are wrapped on the instances rather than given forward hooks: a module with hooks takes
PyTorch's slow call path, about 2.6 us more per call (also while acting) against about 0.3 us for a wrapper. Every
timer is a ``time.perf_counter`` pair around a call, which adds about a microsecond to each timed call.

The table gives microseconds per env step of each phase, the total and env steps per second; a second table gives
the phases of ``train()`` per gradient step, next to the **compute limit** of an update: the self CPU time of the
ATen operators that do the arithmetic (the innermost ones that do more than make a view or allocate: matmuls,
convolutions, elementwise operations, reductions, the optimizer's kernels), summed over ``--updates`` gradient steps
of ``model.train(gradient_steps=1)`` under ``torch.profiler`` and divided by their number. It is the kernels' time
with Python and PyTorch's dispatch removed: a lower bound of an eager update, what a compiled graph of the whole
update could approach (each kernel's time still has its own setup, a few microseconds, which fusing small operators
would save too). ``wall / limit`` is how far the measured update is from it.
"""

import sys
from pathlib import Path

if not __package__:  # run by path: import the benchmarks as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple
from unittest import mock

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from torch.autograd.profiler_util import FunctionEvent

from benchmarks import minatar
from benchmarks.arguments import non_negative_int, positive_int
from benchmarks.speed import build, env_name, run_in_fresh_process

#: The phases of an env step, in the order of the table
PHASES = (
    "env step",
    "acting",
    "storing",
    "sampling",
    "forward",
    "backward",
    "clip",
    "optimizer",
    "priorities",
    "update, rest",
    "SB3 bookkeeping",
)
#: The phases within ``train()``, also given per gradient step
TRAIN_PHASES = PHASES[PHASES.index("sampling") : PHASES.index("update, rest") + 1]
#: The learners on a classic-control env, each with its own YAML entry
CLASSIC_LEARNERS = ("DQN", "DuelingDQN", "QRDQN", "DuelingQRDQN", "Rainbow")
#: ATen operators that do no arithmetic of their own (views, allocation, metadata, and the conversions and copies that
#: only allocate and call ``copy_``): their own time is overhead, like the dispatch's
NO_ARITHMETIC = frozenset(
    f"aten::{name}"
    for name in (
        *("empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "resize_", "set_"),
        *("view", "_unsafe_view", "as_strided", "as_strided_", "_reshape_alias", "reshape", "flatten", "unflatten"),
        *("t", "transpose", "permute", "expand", "expand_as", "broadcast_tensors", "select", "slice", "narrow"),
        *("unsqueeze", "unsqueeze_", "squeeze", "squeeze_"),
        *("split", "split_with_sizes", "chunk", "unbind", "alias", "detach", "detach_", "lift_fresh"),
        *("resolve_conj", "resolve_neg", "result_type", "item", "_local_scalar_dense"),
        *("to", "_to_copy", "clone", "contiguous", "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "full"),
    )
)
#: Operators that fill or copy into the output of the operator that calls them (``addmm`` copies its bias, ``sum``
#: zeroes its output): counted themselves, they leave their caller's own kernel counted too
INITIALISATION = frozenset({"aten::copy_", "aten::fill_", "aten::zero_"})


class PhaseTimer:
    """
    Exclusive wall-clock time of nested phases: a phase that starts pauses the one it is nested in.

    :ivar seconds: Each phase's exclusive time so far
    :ivar training: True within ``train()``, where a network's forward is a phase of its own
    """

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.training = False
        self._stack: list[str] = []
        self._since = 0.0

    def push(self, phase: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._stack.append(phase)
        self._since = now

    def pop(self) -> None:
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._since
        self._since = now

    def timed(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, its calls timed as ``phase``."""

        def timed_function(*args: Any, **kwargs: Any) -> Any:
            self.push(phase)
            try:
                return function(*args, **kwargs)
            finally:
                self.pop()

        return timed_function

    def timed_in_training(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, its calls timed as ``phase`` within ``train()`` and left to the caller's phase elsewhere."""
        timed_function = self.timed(phase, function)

        def in_training(*args: Any, **kwargs: Any) -> Any:
            return timed_function(*args, **kwargs) if self.training else function(*args, **kwargs)

        return in_training

    def timed_training(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``train``, its own time timed as ``update, rest``, with :attr:`training` set for the phases within it."""
        timed_function = self.timed("update, rest", function)

        def train(*args: Any, **kwargs: Any) -> Any:
            self.training = True
            try:
                return timed_function(*args, **kwargs)
            finally:
                self.training = False

        return train


def networks(model: BaseAlgorithm) -> list[th.nn.Module]:
    """The online and the target network of a DQN-family learner's policy."""
    found = [
        getattr(model.policy, name)
        for name in ("q_net", "q_net_target", "quantile_net", "quantile_net_target")
        if hasattr(model.policy, name)
    ]
    if len(found) != 2:
        raise TypeError(f"expected an online and a target network in {type(model.policy).__name__}, found {len(found)}")
    return found


@contextlib.contextmanager
def timing_phases(model: OffPolicyAlgorithm, timer: PhaseTimer) -> Iterator[None]:
    """Within the block, the phases of ``model``'s training are timed by ``timer`` (the patches are undone after)."""
    env, buffer, optimizer = model.env, model.replay_buffer, model.policy.optimizer
    assert env is not None and buffer is not None, "a learner set up for training has an env and a replay buffer"
    patches: list[tuple[Any, str, Callable[..., Any]]] = [
        (env, "step_wait", timer.timed("env step", env.step_wait)),
        (model, "_sample_action", timer.timed("acting", model._sample_action)),
        (buffer, "add", timer.timed("storing", buffer.add)),
        (buffer, "sample", timer.timed("sampling", buffer.sample)),
        (model, "train", timer.timed_training(model.train)),
        (th.Tensor, "backward", timer.timed("backward", th.Tensor.backward)),
        (th.nn.utils, "clip_grad_norm_", timer.timed("clip", th.nn.utils.clip_grad_norm_)),
        (optimizer, "step", timer.timed("optimizer", optimizer.step)),
        (optimizer, "zero_grad", timer.timed("optimizer", optimizer.zero_grad)),
    ]
    if hasattr(buffer, "update_priorities"):
        patches.append((buffer, "update_priorities", timer.timed("priorities", buffer.update_priorities)))
    for network in networks(model):
        for child in network.children():
            patches.append((child, "forward", timer.timed_in_training("forward", child.forward)))
    with contextlib.ExitStack() as stack:
        for target, name, timed_function in patches:
            stack.enter_context(mock.patch.object(target, name, timed_function))
        yield


def kernels(events: Iterable[FunctionEvent]) -> list[FunctionEvent]:
    """
    The profiled ATen operators that do arithmetic: those that do more than make views, allocate or convert
    (:data:`NO_ARITHMETIC`) and call no other such operator, but to initialise their output (:data:`INITIALISATION`).
    One that does is a composite (``linear``, ``mean``): its own time is overhead, its arithmetic in those it calls.
    """

    def does_arithmetic(event: FunctionEvent) -> bool:
        return event.name.startswith("aten::") and event.name not in NO_ARITHMETIC

    return [
        event
        for event in events
        if does_arithmetic(event)
        and not any(does_arithmetic(child) and child.name not in INITIALISATION for child in event.cpu_children)
    ]


def compute_limit(model: OffPolicyAlgorithm, updates: int) -> float:
    """Seconds of arithmetic (the self CPU time of :func:`kernels`) per gradient step of ``model``, over ``updates``."""
    model.train(gradient_steps=1, batch_size=model.batch_size)  # anything done once, outside the profile
    with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(updates):
            model.train(gradient_steps=1, batch_size=model.batch_size)
    return sum(event.self_cpu_time_total for event in kernels(profile.events())) / 1e6 / updates  # microseconds


class StepProfile(NamedTuple):
    """
    A learner's timed run.

    :param seconds: Each phase's exclusive time (every name of :data:`PHASES`)
    :param wall_seconds: The wall-clock time of the timed ``learn`` call
    :param env_steps: Its env steps
    :param gradient_steps: Its gradient steps
    :param compute_limit: Seconds of arithmetic per gradient step (:func:`compute_limit`)
    """

    seconds: dict[str, float]
    wall_seconds: float
    env_steps: int
    gradient_steps: int
    compute_limit: float

    def per_env_step(self, phase: str) -> float:
        """Microseconds of ``phase`` per env step."""
        return self.seconds[phase] / self.env_steps * 1e6

    def per_gradient_step(self, phase: str) -> float:
        """Microseconds of ``phase`` per gradient step."""
        return self.seconds[phase] / max(self.gradient_steps, 1) * 1e6

    @property
    def update_wall(self) -> float:
        """Microseconds of ``train()`` per gradient step: its phases, the sampling included."""
        return sum(self.per_gradient_step(phase) for phase in TRAIN_PHASES)


def profile_learner(learner: str, env: str, steps: int, seed: int = 0, warmup: int = 500, updates: int = 50) -> StepProfile:
    """
    Time ``steps`` env steps of ``learner``'s training on ``env`` phase by phase, then its compute limit. In this
    process, on one torch thread.

    :param learner: A name of :data:`CLASSIC_LEARNERS`, or of ``benchmarks.minatar.LEARNERS`` for a MinAtar game
    :param env: A classic-control env id, or a MinAtar game of ``benchmarks.minatar.GAMES``
    :param steps: Env steps to time
    :param seed: Seed of the model and the env
    :param warmup: Env steps after ``learning_starts`` before the timed ones
    :param updates: Gradient steps the compute limit is measured over
    """
    th.set_num_threads(1)
    model = build(learner, env, seed)
    model.learn(model.learning_starts + warmup)
    timer = PhaseTimer()
    env_steps, gradient_steps = model.num_timesteps, model._n_updates
    with timing_phases(model, timer):
        start = time.perf_counter()
        timer.push("SB3 bookkeeping")
        model.learn(steps, reset_num_timesteps=False)
        timer.pop()
        wall_seconds = time.perf_counter() - start
    seconds = {phase: timer.seconds[phase] for phase in PHASES}
    env_steps, gradient_steps = model.num_timesteps - env_steps, model._n_updates - gradient_steps
    return StepProfile(seconds, wall_seconds, env_steps, gradient_steps, compute_limit(model, updates))


def print_tables(results: dict[str, StepProfile]) -> None:
    width = max(13, *(len(name) + 2 for name in results))
    header = "".join(f"{name:>{width}}" for name in results)
    rows: list[tuple[str, Callable[[StepProfile], float], str]] = [
        *((phase, lambda result, phase=phase: result.per_env_step(phase), ".1f") for phase in PHASES),
        ("total", lambda result: result.wall_seconds / result.env_steps * 1e6, ".1f"),
        ("env steps/s", lambda result: result.env_steps / result.wall_seconds, ".0f"),
        ("gradient steps / env step", lambda result: result.gradient_steps / result.env_steps, ".3f"),
    ]
    print(f"\n{'us per env step':<26}{header}")
    for label, value, fmt in rows:
        print(f"{label:<26}" + "".join(f"{value(result):>{width}{fmt}}" for result in results.values()))
    rows = [
        *((phase, lambda result, phase=phase: result.per_gradient_step(phase), ".1f") for phase in TRAIN_PHASES),
        ("wall us / update", lambda result: result.update_wall, ".1f"),
        ("compute limit us / update", lambda result: result.compute_limit * 1e6, ".1f"),
        ("wall / limit", lambda result: result.update_wall / (result.compute_limit * 1e6), ".1f"),
    ]
    print(f"\n{'us per gradient step':<26}{header}")
    for label, value, fmt in rows:
        print(f"{label:<26}" + "".join(f"{value(result):>{width}{fmt}}" for result in results.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", type=env_name, default="CartPole-v1", help="a classic-control env id or a MinAtar game")
    parser.add_argument("--steps", type=positive_int, default=5000, help="env steps timed per learner")
    parser.add_argument("--learners", nargs="+", help="default: all that apply to the env")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--warmup", type=non_negative_int, default=500, help="env steps after learning_starts, untimed")
    parser.add_argument("--updates", type=positive_int, default=50, help="gradient steps the compute limit is measured over")
    args = parser.parse_args()
    applicable = tuple(minatar.LEARNERS) if args.env in minatar.GAMES else CLASSIC_LEARNERS
    learners = args.learners or list(applicable)
    for learner in learners:
        if learner not in applicable:
            parser.error(f"--learners: {learner!r} does not run on {args.env}; choose from {list(applicable)}")

    results: dict[str, StepProfile] = {}
    for learner in learners:
        result = run_in_fresh_process(profile_learner, learner, args.env, args.steps, args.seed, args.warmup, args.updates)
        results[learner] = result
        print(
            f"{learner:<14} {result.env_steps} env steps, {result.gradient_steps} gradient steps in "
            f"{result.wall_seconds:.2f} s",
            flush=True,
        )
    print(
        f"\n{args.env}, {args.steps} env steps timed (whole rollouts of train_freq: see above) after learning_starts + "
        f"{args.warmup}, one torch thread, seed {args.seed}"
        + (" (MinAtar protocol)" if args.env in minatar.GAMES else " (each learner's own entry)")
    )
    print_tables(results)


if __name__ == "__main__":
    main()
