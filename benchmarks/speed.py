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

    python -m benchmarks.speed [--env CartPole-v1] [--steps 10000] [--repeats 5] [--threads N] [--fused-dqn] [--per]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm

from benchmarks.hyperparams import ZOO_FOLDER, load_entry
from sb3_dueling import DuelingDQN, PrioritizedReplayBuffer


def with_fused_adam(hyperparams: dict[str, Any]) -> dict[str, Any]:
    policy_kwargs = dict(hyperparams.get("policy_kwargs", {}), optimizer_kwargs=dict(fused=True))
    return dict(hyperparams, policy_kwargs=policy_kwargs)


Learner = Callable[[str, int, dict[str, Any]], BaseAlgorithm]

LEARNERS: dict[str, Learner] = {
    "DQN": lambda env, seed, params: DQN("MlpPolicy", env, seed=seed, **params),
    "DuelingDQN(double_q=False)": lambda env, seed, params: DuelingDQN("MlpPolicy", env, double_q=False, seed=seed, **params),
    "DuelingDQN": lambda env, seed, params: DuelingDQN("MlpPolicy", env, seed=seed, **params),
}
FUSED_DQN: Learner = lambda env, seed, params: DQN("MlpPolicy", env, seed=seed, **with_fused_adam(params))  # noqa: E731
PER: Learner = lambda env, seed, params: DuelingDQN(  # noqa: E731
    "MlpPolicy", env, seed=seed, replay_buffer_class=PrioritizedReplayBuffer, **params
)


def steps_per_second(make: Learner, env_id: str, steps: int, seed: int) -> float:
    _, hyperparams = load_entry(ZOO_FOLDER / "dqn.yml", env_id)
    model = make(env_id, seed, hyperparams)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per learner (interleaved)")
    parser.add_argument("--threads", type=int, default=th.get_num_threads(), help="torch threads (default: all)")
    parser.add_argument("--fused-dqn", action="store_true", help="also run SB3 DQN with a fused Adam")
    parser.add_argument("--per", action="store_true", help="also run DuelingDQN with prioritized replay")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    learners = dict(LEARNERS)
    if args.fused_dqn:
        learners["DQN(fused Adam)"] = FUSED_DQN
    if args.per:
        learners["DuelingDQN+PER"] = PER

    results: dict[str, list[float]] = {name: [] for name in learners}
    for repeat in range(args.repeats):
        for name, make in learners.items():
            results[name].append(steps_per_second(make, args.env, args.steps, seed=repeat))
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
