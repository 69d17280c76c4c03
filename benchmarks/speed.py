"""
Training throughput of SB3 ``DQN`` and ``DuelingDQN``, side by side in one run.

All three learners use the RL Zoo's CartPole-v1 hyperparameters for DQN (same ``net_arch``,
same everything); runs are interleaved (DQN, Dueling, Dueling + Double, DQN, ...) so that a
noisy machine slows them alike. Prints env steps per second (median over the repeats) and
the ratio to DQN (median over the repeats of the ratio within each repeat).

DuelingDQN runs its optimizer fused by default (see ``sb3_dueling.policies.with_fused_optimizer``); ``--fused-dqn``
adds SB3 DQN with ``optimizer_kwargs=dict(fused=True)`` as a reference, to show what the rest of
the step costs.

    python benchmarks/speed.py [--steps 10000] [--repeats 5] [--threads N] [--fused-dqn]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_dueling import DuelingDQN

# rl_zoo3/hyperparams/dqn.yml, CartPole-v1 (n_timesteps left out)
ZOO_CARTPOLE: dict[str, Any] = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)

FUSED_DQN = dict(ZOO_CARTPOLE, policy_kwargs=dict(net_arch=[256, 256], optimizer_kwargs=dict(fused=True)))

LEARNERS: dict[str, Callable[[str, int], BaseAlgorithm]] = {
    "DQN": lambda env, seed: DQN("MlpPolicy", env, seed=seed, **ZOO_CARTPOLE),
    "DuelingDQN(double_q=False)": lambda env, seed: DuelingDQN("MlpPolicy", env, double_q=False, seed=seed, **ZOO_CARTPOLE),
    "DuelingDQN": lambda env, seed: DuelingDQN("MlpPolicy", env, seed=seed, **ZOO_CARTPOLE),
}


def steps_per_second(make: Callable[[str, int], BaseAlgorithm], env_id: str, steps: int, seed: int) -> float:
    model = make(env_id, seed)
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
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    learners = dict(LEARNERS)
    if args.fused_dqn:
        learners["DQN(fused Adam)"] = lambda env, seed: DQN("MlpPolicy", env, seed=seed, **FUSED_DQN)

    results: dict[str, list[float]] = {name: [] for name in learners}
    for repeat in range(args.repeats):
        for name, make in learners.items():
            results[name].append(steps_per_second(make, args.env, args.steps, seed=repeat))
            print(f"repeat {repeat + 1}/{args.repeats}  {name:<28} {results[name][-1]:8.0f} steps/s", flush=True)

    print(f"\n{args.env}, {args.steps} steps, {args.repeats} repeats, torch threads {args.threads}")
    print(f"{'learner':<28} {'median steps/s':>15} {'ratio to DQN':>13}")
    for name, values in results.items():
        ratios = [value / dqn for value, dqn in zip(values, results["DQN"])]
        print(f"{name:<28} {statistics.median(values):15.0f} {statistics.median(ratios):13.3f}")


if __name__ == "__main__":
    main()
