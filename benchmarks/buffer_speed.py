"""
Sampling speed and memory of ``PrioritizedReplayBuffer`` against SB3's ``ReplayBuffer``, side by side.

Both buffers are filled to capacity with the same random CartPole-sized transitions (the
prioritized one with random priorities), then ``sample(batch_size)`` is timed, interleaved
(uniform, prioritized, uniform, ...) so that a noisy machine slows both alike. Prints samples per
second (median over the repeats), the ratio prioritized / uniform, and the memory of the sum tree
next to that of the buffer's arrays (also for an Atari-sized buffer, computed, not allocated).

    python -m benchmarks.buffer_speed [--sizes 100000 1000000] [--batch-sizes 32 256] [--repeats 5]
"""

import argparse
import statistics
import time
from typing import TypeVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from benchmarks.arguments import positive_int
from sb3_dueling import PrioritizedReplayBuffer
from sb3_dueling.sum_tree import SumTree

OBS_SPACE = spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTION_SPACE = spaces.Discrete(2)
Buffer = TypeVar("Buffer", bound=ReplayBuffer)


def filled(buffer: Buffer, rng: np.random.Generator) -> Buffer:
    """Fill every slot at once (an add() loop over a million steps would take minutes)."""
    buffer.observations[:] = rng.normal(size=buffer.observations.shape)
    buffer.next_observations[:] = rng.normal(size=buffer.next_observations.shape)
    buffer.actions[:] = rng.integers(0, 2, size=buffer.actions.shape)
    buffer.rewards[:] = 1.0
    buffer.dones[:] = rng.random(buffer.dones.shape) < 0.01
    buffer.full = True
    if isinstance(buffer, PrioritizedReplayBuffer):
        buffer.tree.update(np.arange(buffer.buffer_size), rng.random(buffer.buffer_size) + 0.01)
    return buffer


def samples_per_second(buffer: ReplayBuffer, batch_size: int, seconds: float = 1.0) -> float:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        buffer.sample(batch_size)
        calls += 1
    return calls * batch_size / elapsed


def arrays_bytes(buffer: ReplayBuffer) -> int:
    names = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    return sum(getattr(buffer, name).nbytes for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[32, 256])
    parser.add_argument("--repeats", type=positive_int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    print(f"{'transitions':>11} {'batch':>5} {'uniform samples/s':>18} {'prioritized samples/s':>22} {'ratio':>6}")
    for size in args.sizes:
        uniform = filled(ReplayBuffer(size, OBS_SPACE, ACTION_SPACE, device="cpu"), rng)
        prioritized = filled(PrioritizedReplayBuffer(size, OBS_SPACE, ACTION_SPACE, device="cpu"), rng)
        for batch_size in args.batch_sizes:
            speeds: dict[str, list[float]] = {"uniform": [], "prioritized": []}
            for _ in range(args.repeats):
                speeds["uniform"].append(samples_per_second(uniform, batch_size))
                speeds["prioritized"].append(samples_per_second(prioritized, batch_size))
            ratio = statistics.median(p / u for p, u in zip(speeds["prioritized"], speeds["uniform"], strict=True))
            median = {name: statistics.median(values) for name, values in speeds.items()}
            print(f"{size:>11} {batch_size:>5} {median['uniform']:>18.0f} {median['prioritized']:>22.0f} {ratio:>6.3f}")
        tree = prioritized.tree.nbytes
        print(f"{'':>11} memory: arrays {arrays_bytes(uniform) / 2**20:.1f} MiB, sum tree {tree / 2**20:.1f} MiB")

    # Atari: 1M transitions of 84x84x4 uint8 frames, optimize_memory_usage (one observation array)
    atari_arrays = 1_000_000 * (84 * 84 * 4 + 8 + 4 + 4 + 4)
    atari_tree_bytes = SumTree(1_000_000).nbytes
    print(
        f"Atari, 1M transitions with optimize_memory_usage: arrays {atari_arrays / 2**30:.1f} GiB, "
        f"sum tree {atari_tree_bytes / 2**20:.0f} MiB ({100 * atari_tree_bytes / atari_arrays:.2f}%)"
    )


if __name__ == "__main__":
    main()
