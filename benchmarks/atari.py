"""
Atari throughput and memory on a GPU: the paper's network (DuelingDQN with ``DuelingNatureCnnPolicy``)
against SB3 ``DQN`` with ``CnnPolicy``, side by side.

    python -m benchmarks.atari [--envs PongNoFrameskip-v4 BreakoutNoFrameskip-v4] [--steps 100000]
                               [--learning-starts 10000] [--max-seconds 480] [--results benchmarks/results/atari]

Each algorithm runs with its YAML ``atari`` entry (the package's ``dueling_dqn.yml``, the RL Zoo's
``dqn.yml``): SB3's AtariWrapper, 4 stacked frames, replay of 100k transitions, one gradient step
every 4 env steps. One change to both: ``learning_starts`` (the entries' 100k would leave no
gradient step in a 100k-step run). All runs go at once, one process each, so that the two
algorithms of an env share the GPU and the cores alike. Each run writes one JSON file: env steps per
second over the whole run and over its training part (from ``learning_starts`` on), the peak GPU
memory PyTorch allocated and reserved, peak resident memory, and the hardware. A run still going at
``--max-seconds`` stops there and records the steps it made. ``python -m benchmarks.report`` adds
the files to docs/benchmark.md. Needs ale-py and, to mean anything, a GPU.
"""

import argparse
import os
import platform
import resource
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import stable_baselines3
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack

from benchmarks.arguments import non_negative_int, positive_int
from benchmarks.grid import RESULTS, slug, write_json_atomically
from benchmarks.variants import VARIANTS

ATARI_RESULTS = RESULTS / "atari"


class Stopwatch(BaseCallback):
    """
    Notes when training starts and stops the run at a wall-clock deadline.

    :param learning_starts: The env step from which the model trains
    :param max_seconds: Seconds from now after which the run stops
    """

    def __init__(self, learning_starts: int, max_seconds: float) -> None:
        super().__init__()
        self.learning_starts = learning_starts
        self.deadline = time.perf_counter() + max_seconds
        self.training_start: float | None = None

    def _on_step(self) -> bool:
        if self.training_start is None and self.num_timesteps >= self.learning_starts:
            self.training_start = time.perf_counter()
        return time.perf_counter() < self.deadline


def hardware() -> dict[str, Any]:
    """The GPU, CPU and library versions a run was measured with."""
    cpuinfo = Path("/proc/cpuinfo")  # Linux; elsewhere what platform knows
    models = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] if cpuinfo.exists() else []
    cpu = models[0].split(":", 1)[1].strip() if models else platform.processor()
    return {
        "gpu": th.cuda.get_device_name() if th.cuda.is_available() else None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": th.__version__,
        "cuda": th.version.cuda,
        "stable_baselines3": stable_baselines3.__version__,
    }


def execute(algo: str, env_id: str, steps: int, learning_starts: int, max_seconds: float, seed: int, results: Path) -> str:
    """
    Train one algorithm on one Atari game and write its result file. Meant for a fresh process.

    :param algo: A name of ``benchmarks.variants.VARIANTS``
    :param env_id: An Atari env id of ale-py (``PongNoFrameskip-v4``)
    :param steps: Env steps to train for (the budget)
    :param learning_starts: Replaces the YAML entry's ``learning_starts``
    :param max_seconds: Stop the run after this long, budget reached or not
    :param seed: Seed of the model and the env
    :param results: Folder of the result file, ``<env_id>_<algo>.json``
    :return: A line saying what was run
    """
    th.set_num_threads(1)
    gym.register_envs(ale_py)
    variant = VARIANTS[algo]
    policy, _, hyperparams = variant.hyperparameters(env_id)  # the YAML's atari entry
    wrappers, n_stack = hyperparams.pop("env_wrapper"), hyperparams.pop("frame_stack")
    if wrappers != ["stable_baselines3.common.atari_wrappers.AtariWrapper"]:
        raise ValueError(f"{variant.config}: expected the AtariWrapper alone as env_wrapper, got {wrappers!r}")
    hyperparams.update(learning_starts=learning_starts)
    env = VecFrameStack(make_atari_env(env_id, n_envs=1, seed=seed), n_stack=n_stack)  # AtariWrapper inside
    model = variant.cls(policy, env, seed=seed, **hyperparams)
    stopwatch = Stopwatch(learning_starts, max_seconds)
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=stopwatch)
    end = time.perf_counter()
    training_steps = model.num_timesteps - learning_starts
    on_gpu = model.device.type == "cuda"
    write_json_atomically(
        {
            "algo": algo,
            "env": env_id,
            "policy": policy,
            "seed": seed,
            "budget": steps,
            "timesteps": model.num_timesteps,
            "complete": model.num_timesteps >= steps,
            "steps_per_second": model.num_timesteps / (end - start),
            "training_steps_per_second": (
                training_steps / (end - stopwatch.training_start) if stopwatch.training_start and training_steps > 0 else None
            ),
            "gpu_peak_allocated_mb": th.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
            "gpu_peak_reserved_mb": th.cuda.max_memory_reserved() / 2**20 if on_gpu else None,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "device": str(model.device),
            "hardware": hardware(),
            "hyperparams": {key: repr(value) for key, value in hyperparams.items()},
            "recent_episode_returns": [float(info["r"]) for info in model.ep_info_buffer or []],
        },
        results / f"{env_id}_{slug(algo)}.json",
    )
    return f"{algo} on {env_id}: {model.num_timesteps} steps"


def _execute(arguments: tuple[str, str, int, int, float, int, Path]) -> str:
    return execute(*arguments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["PongNoFrameskip-v4", "BreakoutNoFrameskip-v4"])
    parser.add_argument("--algos", nargs="+", default=["DuelingDQN", "DQN"], choices=list(VARIANTS))
    parser.add_argument("--steps", type=positive_int, default=100_000)
    parser.add_argument("--learning-starts", type=non_negative_int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=480.0, help="stop a run still going after this long")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--results", type=Path, default=ATARI_RESULTS)
    args = parser.parse_args()
    if args.learning_starts >= args.steps:
        parser.error(f"--learning-starts must be less than --steps ({args.steps}), got {args.learning_starts}")
    work = [
        (algo, env_id, args.steps, args.learning_starts, args.max_seconds, args.seed, args.results)
        for env_id in args.envs
        for algo in args.algos
    ]
    with get_context("spawn").Pool(len(work), maxtasksperchild=1) as pool:
        for message in pool.imap_unordered(_execute, work):
            print(f"done: {message}", flush=True)


if __name__ == "__main__":
    main()
