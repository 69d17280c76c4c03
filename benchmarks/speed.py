"""
Training throughput and peak memory of a dueling learner against its baseline, side by side in one run.

``--family dqn`` (the default): SB3 ``DQN``, ``DuelingDQN(double_q=False)`` and ``DuelingDQN``, all with the
RL Zoo's hyperparameters for DQN on the env, read from the Zoo's own ``dqn.yml`` (same ``net_arch``, same
everything). ``--family rainbow``: DuelingQRDQN, SB3 ``DQN`` and ``Rainbow``, each with its own entry
(``dueling_qrdqn.yml``, the Zoo's ``dqn.yml``, ``rainbow.yml``), as the grid runs them. ``--family qrdqn``:
sb3-contrib's ``QRDQN``, ``DuelingQRDQN(double_q=False)`` and ``DuelingQRDQN``, all with the Zoo's ``qrdqn.yml``
entry of the env (same ``n_quantiles`` too). Runs are interleaved (baseline,
dueling, dueling + Double, baseline, ...) so that a noisy machine slows them alike, and each runs in a fresh
process, whose peak resident memory it reports next to its env steps per second: the peak of the whole
process (imports included, alike for all) and how far training raised it above the peak before ``learn``.
Prints medians over the repeats and the ratio to the baseline (median over the repeats of the ratio within
each repeat).

DuelingDQN runs its optimizer fused by default (see ``sb3_dueling.policies.with_fused_optimizer``); ``--fused-dqn``
adds SB3 DQN with ``optimizer_kwargs=dict(fused=True)`` as a reference, to show what the rest of the step costs.
``--per`` adds DuelingDQN with ``PrioritizedReplayBuffer`` (its ratio to DuelingDQN is the cost of prioritized
replay). ``--our-loss`` (qrdqn family) adds QRDQN with ``sb3_dueling.quantile_loss.quantile_huber_loss`` in
place of sb3-contrib's (same values): what the loss alone changes. ``--own-entry`` (qrdqn family) adds
DuelingQRDQN with the package's own ``dueling_qrdqn.yml`` entry of the env (which may use fewer quantiles):
what the benchmark grid's DuelingQRDQN runs cost. ``--learning-starts`` replaces the entry's
(the Zoo's QR-DQN LunarLander entry waits 10k steps before its first gradient step).

``--env`` takes a classic-control env id with YAML entries (``CartPole-v1``, ``Acrobot-v1`` ...) or a MinAtar game
(``Breakout``, ``Asterix``, ``SpaceInvaders``: a name of ``benchmarks.minatar.GAMES``). A game runs the learners with
the MinAtar protocol of ``benchmarks.minatar`` (its env, its settings of each learner: no baseline's YAML entry),
for the family's learners that the protocol has: ``--family dqn`` SB3 ``DQN`` and ``DuelingDQN``, ``--family
rainbow`` SB3 ``DQN`` and ``Rainbow`` (the others, which have no MinAtar settings, are left out, and ``--family
qrdqn``, none of whose learners has, exits 2). As on a classic env, each run times ``learn`` from its first step: the
protocol's ``learning_starts`` (1,000, or ``--learning-starts``) random steps, then a gradient step every 4 env
steps; ``--steps`` must exceed it.

    python -m benchmarks.speed [--family dqn|qrdqn|rainbow] [--env CartPole-v1|Breakout] [--steps 10000] [--repeats 5]
                               [--threads 1] [--learning-starts N] [--fused-dqn] [--per] [--our-loss] [--own-entry]
"""

import argparse
import contextlib
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, NamedTuple, TypeVar
from unittest import mock

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from benchmarks import minatar
from benchmarks.arguments import non_negative_int, positive_int
from benchmarks.variants import VARIANTS, Variant, read_schedules


class Family(NamedTuple):
    """
    Learners compared side by side: the first is the baseline whose YAML entries all of them use, or with
    ``own_entries`` each uses its own (learners of different kinds, each as the grid runs it).
    """

    learners: list[str]
    candidate: str
    own_entries: bool = False


FAMILIES = {
    "dqn": Family(["DQN", "DuelingDQN(double_q=False)", "DuelingDQN"], "DuelingDQN"),
    "qrdqn": Family(["QRDQN", "DuelingQRDQN(double_q=False)", "DuelingQRDQN"], "DuelingQRDQN"),
    "rainbow": Family(["DuelingQRDQN", "DQN", "Rainbow"], "Rainbow", own_entries=True),
}
LEARNERS = FAMILIES["dqn"].learners
#: SB3 DQN with a fused Adam, as DuelingDQN has by default: what the rest of the step costs
FUSED_DQN = "DQN(fused Adam)"
PER = "DuelingDQN+PER"
#: QRDQN with this package's quantile Huber loss: what the loss alone changes
OUR_LOSS = "QRDQN(our loss)"
#: DuelingQRDQN with its own entry of dueling_qrdqn.yml: what the grid's runs cost
OWN_ENTRY = "DuelingQRDQN(own entry)"

T = TypeVar("T")


@dataclass(frozen=True)
class Learner:
    """
    A learner as measured.

    :param variant: A name of ``benchmarks.variants.VARIANTS``
    :param fused_adam: Give its optimizer ``fused=True``
    :param our_loss: Train QRDQN with this package's quantile Huber loss instead of sb3-contrib's
    :param own_entry: Use the variant's own YAML entry instead of the family baseline's
    """

    variant: str
    fused_adam: bool = False
    our_loss: bool = False
    own_entry: bool = False


class Measurement(NamedTuple):
    steps_per_second: float
    peak_rss_mb: float
    training_rss_mb: float


def with_fused_adam(hyperparams: dict[str, Any]) -> dict[str, Any]:
    policy_kwargs = dict(hyperparams.get("policy_kwargs", {}), optimizer_kwargs=dict(fused=True))
    return dict(hyperparams, policy_kwargs=policy_kwargs)


@contextlib.contextmanager
def qrdqn_with_our_loss() -> Iterator[None]:
    """Within the block, sb3-contrib's QRDQN trains with this package's quantile Huber loss."""
    from sb3_contrib.qrdqn import qrdqn

    from sb3_dueling.quantile_loss import quantile_huber_loss

    def our_loss(current: th.Tensor, target: th.Tensor, sum_over_quantiles: bool = True) -> th.Tensor:
        if not sum_over_quantiles:  # QRDQN sums, and so does ours
            raise ValueError("this package's quantile Huber loss sums over the quantiles")
        return quantile_huber_loss(current, target)[0]

    with mock.patch.object(qrdqn, "quantile_huber_loss", our_loss):
        yield


def make_model(
    variant: Variant,
    env_id: str,
    seed: int,
    fused_adam: bool = False,
    config_of: str = "DQN",
    learning_starts: int | None = None,
) -> BaseAlgorithm:
    """
    The learner as this benchmark builds it, on a new env.

    :param variant: The learner
    :param env_id: The env, whose entry of ``config_of``'s YAML file the learner uses
    :param seed: Seed of the model and the env
    :param fused_adam: Give the optimizer ``fused=True``
    :param config_of: The variant whose YAML file gives the hyperparameters (the family's baseline)
    :param learning_starts: Replaces the entry's ``learning_starts`` (None: keep it)
    """
    policy, _, hyperparams = variant.hyperparameters(env_id, config=VARIANTS[config_of].config)
    if learning_starts is not None:
        hyperparams["learning_starts"] = learning_starts
    hyperparams = read_schedules(with_fused_adam(hyperparams) if fused_adam else hyperparams)  # lin_ as the Zoo reads it
    return variant.cls(policy, env_id, seed=seed, **hyperparams)


def build(
    learner: str,
    env: str,
    seed: int,
    fused_adam: bool = False,
    config_of: str | None = None,
    learning_starts: int | None = None,
) -> OffPolicyAlgorithm:
    """
    ``learner`` on ``env``: a MinAtar game with the protocol of ``benchmarks.minatar``, else as :func:`make_model`
    builds it.

    :param learner: A name of ``benchmarks.variants.VARIANTS``, or of ``benchmarks.minatar.LEARNERS`` on a game
    :param env: A classic-control env id, or a MinAtar game of ``benchmarks.minatar.GAMES``
    :param config_of: The variant whose YAML file gives the hyperparameters (None: the learner's own; on a
        MinAtar game, where each learner has the protocol's settings, only the learner's own)
    :param learning_starts: Replaces the entry's or the protocol's ``learning_starts`` (None: keep it)
    :param fused_adam: Give the optimizer ``fused=True`` (not on a MinAtar game); ``seed``: as :func:`make_model`
    """
    if env in minatar.GAMES:
        if fused_adam or config_of not in (None, learner):
            raise ValueError(f"on a MinAtar game {learner} has the protocol's settings: no fused Adam, no other entry")
        changes = {} if learning_starts is None else {"learning_starts": learning_starts}
        with mock.patch.dict(minatar.COMMON, changes):
            model = minatar.MinAtarRun(learner, env, seed).make_model()
    else:
        model = make_model(VARIANTS[learner], env, seed, fused_adam, config_of or learner, learning_starts)
    assert isinstance(model, OffPolicyAlgorithm)
    return model


def steps_per_second(
    learner: str,
    env_id: str,
    steps: int,
    seed: int,
    fused_adam: bool = False,
    config_of: str | None = "DQN",
    learning_starts: int | None = None,
) -> float:
    """
    Env steps per second of one training run, from its first step, of :func:`build`'s learner, in this process.

    :param steps: Env steps to train for; the other parameters are :func:`build`'s
    """
    model = build(learner, env_id, seed, fused_adam, config_of, learning_starts)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def measure(
    learner: Learner, env_id: str, steps: int, seed: int, threads: int, config_of: str, learning_starts: int | None
) -> Measurement:
    """One run of :func:`steps_per_second` and the process's peak memory. Meant for a fresh process."""
    th.set_num_threads(threads)
    loss = qrdqn_with_our_loss() if learner.our_loss else contextlib.nullcontext()
    config = learner.variant if learner.own_entry else config_of
    if env_id in minatar.GAMES:  # what making a game imports (MinAtar imports matplotlib: 120 MB) is no training's
        minatar.make_minatar_env(env_id).close()
    before = peak_rss_mb()
    with loss:
        speed = steps_per_second(learner.variant, env_id, steps, seed, learner.fused_adam, config, learning_starts)
    return Measurement(speed, peak_rss_mb(), peak_rss_mb() - before)


def run_in_fresh_process(function: Callable[..., T], *arguments: Any) -> T:
    """``function(*arguments)`` in a process of its own (spawned: nothing of this one carries over)."""
    with get_context("spawn").Pool(1) as pool:
        return pool.apply(function, arguments)


def in_fresh_process(*arguments: Any) -> Measurement:
    """:func:`measure` in a process of its own: its peak memory is the run's alone."""
    return run_in_fresh_process(measure, *arguments)


def env_name(text: str) -> str:
    """A MinAtar game of ``benchmarks.minatar.GAMES`` or a registered gymnasium env id."""
    if text not in minatar.GAMES:
        try:
            gym.spec(text)
        except gym.error.Error as error:
            raise argparse.ArgumentTypeError(
                f"neither a MinAtar game {sorted(minatar.GAMES)} nor a gymnasium env: {error}"
            ) from None
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=list(FAMILIES), default="dqn")
    parser.add_argument("--env", type=env_name, default="CartPole-v1", help="a classic-control env id or a MinAtar game")
    parser.add_argument("--steps", type=positive_int, default=10_000, help="env steps per run")
    parser.add_argument("--repeats", type=positive_int, default=5, help="runs per learner (interleaved)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1: see docs/speed.md)")
    parser.add_argument("--learning-starts", type=non_negative_int, default=None, help="replaces the entry's learning_starts")
    parser.add_argument("--fused-dqn", action="store_true", help="also run SB3 DQN with a fused Adam (dqn family)")
    parser.add_argument("--per", action="store_true", help="also run DuelingDQN with prioritized replay (dqn family)")
    parser.add_argument("--our-loss", action="store_true", help="also run QRDQN with this package's loss (qrdqn family)")
    parser.add_argument(
        "--own-entry", action="store_true", help="also run DuelingQRDQN with dueling_qrdqn.yml's entry (qrdqn family)"
    )
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    for flag, allowed in (("fused_dqn", "dqn"), ("per", "dqn"), ("our_loss", "qrdqn"), ("own_entry", "qrdqn")):
        if getattr(args, flag) and args.family != allowed:
            parser.error(f"--{flag.replace('_', '-')} needs --family {allowed}")
    names = family.learners
    on_minatar = args.env in minatar.GAMES
    if on_minatar:
        *others, last = minatar.LEARNERS
        protocols = f"{', '.join(others)} and {last}"
        if sum(name in minatar.LEARNERS for name in names) < 2:
            parser.error(
                f"--family {args.family}: benchmarks.minatar has a MinAtar protocol only for {protocols}, which leaves "
                f"fewer than two of its learners ({', '.join(names)}) on {args.env}; use --family dqn or rainbow"
            )
        learning_starts = minatar.COMMON["learning_starts"] if args.learning_starts is None else args.learning_starts
        if args.steps <= learning_starts:
            parser.error(f"--steps {args.steps} has no gradient step: the MinAtar protocol learns from step {learning_starts}")
        for name in names:
            if name not in minatar.LEARNERS:
                print(f"{name} is left out: benchmarks.minatar has a MinAtar protocol only for {protocols}")
        names = [name for name in names if name in minatar.LEARNERS]
    baseline = names[0]
    # On a MinAtar game each learner has the protocol's own settings (no baseline's YAML entry)
    learners = {name: Learner(name, own_entry=family.own_entries or on_minatar) for name in names}
    if args.fused_dqn:
        learners[FUSED_DQN] = Learner("DQN", fused_adam=True)
    if args.per:
        learners[PER] = Learner(PER)
    if args.our_loss:
        learners[OUR_LOSS] = Learner("QRDQN", our_loss=True)
    if args.own_entry:
        learners[OWN_ENTRY] = Learner("DuelingQRDQN", own_entry=True)

    results: dict[str, list[Measurement]] = {name: [] for name in learners}
    for repeat in range(args.repeats):
        for name, learner in learners.items():
            result = in_fresh_process(learner, args.env, args.steps, repeat, args.threads, baseline, args.learning_starts)
            results[name].append(result)
            print(
                f"repeat {repeat + 1}/{args.repeats}  {name:<28} {result.steps_per_second:8.0f} steps/s  "
                f"peak RSS {result.peak_rss_mb:6.0f} MB (training +{result.training_rss_mb:.0f} MB)",
                flush=True,
            )

    if on_minatar:
        settings = " the MinAtar protocol of benchmarks.minatar (its env, each learner's settings)"
    elif family.own_entries:
        settings = " each learner's own entry"
    else:
        settings = f" the Zoo's {VARIANTS[baseline].config.name} entry"
    print(
        f"\n{args.env}, {args.steps} steps, {args.repeats} repeats, torch threads {args.threads},"
        + settings
        + ("" if args.learning_starts is None else f" with learning_starts {args.learning_starts}")
    )
    columns = ("median steps/s", f"ratio to {baseline}", f"ratio to {family.candidate}", "peak RSS MB", "training +MB")
    print(f"{'learner':<28} " + " ".join(f"{column:>{len(column) + 2}}" for column in columns))
    for name, values in results.items():
        speeds = [value.steps_per_second for value in values]
        ratios = [
            statistics.median(speed / other.steps_per_second for speed, other in zip(speeds, results[reference], strict=True))
            for reference in (baseline, family.candidate)
        ]
        cells = (
            statistics.median(speeds),
            *ratios,
            statistics.median(value.peak_rss_mb for value in values),
            statistics.median(value.training_rss_mb for value in values),
        )
        formats = (".0f", ".3f", ".3f", ".0f", ".0f")
        print(
            f"{name:<28} " + " ".join(f"{cell:>{len(column) + 2}{fmt}}" for cell, column, fmt in zip(cells, columns, formats))
        )


if __name__ == "__main__":
    main()
