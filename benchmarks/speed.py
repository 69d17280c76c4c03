"""
Training throughput of SB3 ``DQN`` and ``DuelingDQN``, side by side in one run.

All three learners use the RL Zoo's hyperparameters for DQN on the env, read from the Zoo's
own ``dqn.yml`` (same ``net_arch``, same everything); runs are interleaved (DQN, Dueling, Dueling + Double, DQN, ...) so that a
noisy machine slows them alike. Prints env steps per second (median over the repeats) and
the ratio to DQN (median over the repeats of the ratio within each repeat).

DuelingDQN runs its optimizer fused by default (see ``sb3_dueling.policies.with_fused_optimizer``); ``--fused-dqn``
adds SB3 DQN with ``optimizer_kwargs=dict(fused=True)`` as a reference, to show what the rest of
the step costs. ``--per`` adds DuelingDQN with ``PrioritizedReplayBuffer`` (its ratio to DuelingDQN is
the cost of prioritized replay).

    python -m benchmarks.speed [--env CartPole-v1] [--steps 10000] [--repeats 5] [--threads 1] [--fused-dqn] [--per]
"""

import argparse
import statistics
import time
from typing import Any

import torch as th

from benchmarks.variants import VARIANTS, Variant

LEARNERS = ["DQN", "DuelingDQN(double_q=False)", "DuelingDQN"]
#: SB3 DQN with a fused Adam, as DuelingDQN has by default: what the rest of the step costs
FUSED_DQN = "DQN(fused Adam)"
PER = "DuelingDQN+PER"


def with_fused_adam(hyperparams: dict[str, Any]) -> dict[str, Any]:
    policy_kwargs = dict(hyperparams.get("policy_kwargs", {}), optimizer_kwargs=dict(fused=True))
    return dict(hyperparams, policy_kwargs=policy_kwargs)


def steps_per_second(variant: Variant, env_id: str, steps: int, seed: int, fused_adam: bool = False) -> float:
    """Env steps per second of one training run, with the Zoo's DQN hyperparameters for the env."""
    policy, _, hyperparams = variant.hyperparameters(env_id, config=VARIANTS["DQN"].config)
    model = variant.cls(policy, env_id, seed=seed, **(with_fused_adam(hyperparams) if fused_adam else hyperparams))
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per learner (interleaved)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see docs/speed.md)")
    parser.add_argument("--fused-dqn", action="store_true", help="also run SB3 DQN with a fused Adam")
    parser.add_argument("--per", action="store_true", help="also run DuelingDQN with prioritized replay")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    learners = {name: (VARIANTS[name], False) for name in LEARNERS}
    if args.fused_dqn:
        learners[FUSED_DQN] = (VARIANTS["DQN"], True)
    if args.per:
        learners[PER] = (VARIANTS[PER], False)

    results: dict[str, list[float]] = {name: [] for name in learners}
    for repeat in range(args.repeats):
        for name, (variant, fused_adam) in learners.items():
            results[name].append(steps_per_second(variant, args.env, args.steps, repeat, fused_adam))
            print(f"repeat {repeat + 1}/{args.repeats}  {name:<28} {results[name][-1]:8.0f} steps/s", flush=True)

    print(f"\n{args.env}, {args.steps} steps, {args.repeats} repeats, torch threads {args.threads}")
    print(f"{'learner':<28} {'median steps/s':>15} {'ratio to DQN':>13} {'ratio to DuelingDQN':>20}")
    for name, values in results.items():
        ratios = {
            baseline: statistics.median(value / other for value, other in zip(values, results[baseline], strict=True))
            for baseline in ("DQN", "DuelingDQN")
        }
        print(f"{name:<28} {statistics.median(values):15.0f} {ratios['DQN']:13.3f} {ratios['DuelingDQN']:20.3f}")


if __name__ == "__main__":
    main()
