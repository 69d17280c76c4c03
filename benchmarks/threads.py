"""
Training throughput of DuelingDQN with one and two torch threads, on the machine as it is and made busy.

DuelingDQN on CartPole-v1 with the README's hyperparameters (the package's ``dueling_dqn.yml`` entry:
``net_arch=[256, 256]``, batch 64, 128 gradient steps every 256 env steps). "Busy" is the machine with
``--busy`` extra processes spinning (``while True: pass``, by default one per core), started by this
script after the runs on the machine as it is and stopped at the end. They inherit its CPU affinity:
run it under ``taskset`` to pin everything to the same cores. Thread counts are interleaved within
each repeat; the ratio is the median over the repeats of the ratio within each repeat. Each line also
shows ``/proc/loadavg`` at the end of the run (1-minute load, runnable/all tasks).

    taskset -c 0,1 python -m benchmarks.threads [--steps 3000] [--repeats 2] [--busy 2]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch as th

from benchmarks.arguments import non_negative_int, positive_int
from benchmarks.variants import VARIANTS
from sb3_dueling import DuelingDQN

THREADS = (1, 2)


def load_average() -> str:
    """The 1-minute load average and the runnable/all task counts (Linux), or '-' elsewhere."""
    path = Path("/proc/loadavg")
    if not path.exists():
        return "-"
    fields = path.read_text().split()
    return f"{fields[0]} ({fields[3]})"


def steps_per_second(threads: int, steps: int, seed: int) -> float:
    """Env steps per second of one DuelingDQN run with ``threads`` torch threads."""
    policy, _, hyperparams = VARIANTS["DuelingDQN"].hyperparameters("CartPole-v1")
    th.set_num_threads(threads)
    model = DuelingDQN(policy, "CartPole-v1", seed=seed, **hyperparams)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def measure(condition: str, steps: int, repeats: int) -> dict[int, list[float]]:
    """Steps per second per thread count, interleaved over the repeats; prints each run."""
    results: dict[int, list[float]] = {threads: [] for threads in THREADS}
    for repeat in range(repeats):
        for threads in THREADS:
            results[threads].append(steps_per_second(threads, steps, seed=repeat))
            print(
                f"{condition:<6} repeat {repeat + 1}/{repeats}  {threads} thread(s) {results[threads][-1]:8.1f} steps/s"
                f"  loadavg {load_average()}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive_int, default=3000, help="env steps per run (training starts at 1000)")
    parser.add_argument("--repeats", type=positive_int, default=2, help="runs per thread count and condition")
    cpus = len(os.sched_getaffinity(0))
    parser.add_argument("--busy", type=non_negative_int, default=cpus, help="spinning processes for 'busy'")
    args = parser.parse_args()
    print(f"CPUs available: {sorted(os.sched_getaffinity(0))}, load average before: {load_average()}", flush=True)

    conditions = {"as is": measure("as is", args.steps, args.repeats)}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        conditions["busy"] = measure("busy", args.steps, args.repeats)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()

    print(f"\nDuelingDQN, CartPole-v1, {args.steps} steps, {args.repeats} repeats, busy = {args.busy} spinning processes")
    print(f"{'machine':<8} {'1 thread steps/s':>17} {'2 threads steps/s':>18} {'1 thread / 2 threads':>21}")
    for condition, results in conditions.items():
        ratio = statistics.median(one / two for one, two in zip(results[1], results[2], strict=True))
        medians = [statistics.median(results[threads]) for threads in THREADS]
        print(f"{condition:<8} {medians[0]:17.1f} {medians[1]:18.1f} {ratio:20.2f}x")


if __name__ == "__main__":
    main()
