"""
The benchmark grid: (algorithm, environment, seed) runs, each a Ray task in a fresh worker process, resumable.

    python -m benchmarks.grid [--algos ...] [--envs ...] [--seeds 10] [--workers 2] [--results benchmarks/results]
    python -m benchmarks.grid --address HEAD_HOST:6379 ...     # on a Ray cluster (ray start --head, ray start --address)

Without ``--address`` the runs go to an embedded Ray instance on this machine, bound to loopback,
with ``--workers`` CPUs; with it, to an existing cluster: one code path for both.

Each run trains with the hyperparameters of its algorithm's YAML file for the env (the package's
``dueling_dqn.yml`` and ``dueling_qrdqn.yml`` for DuelingDQN and DuelingQRDQN, the RL Zoo's ``dqn.yml`` and
``qrdqn.yml`` for DQN and QR-DQN),
evaluates the greedy policy on a separate env every ``--eval-freq`` steps (SB3's EvalCallback), and
returns its result to this process, which writes one small JSON file: the evaluation curve, env steps
per second (training only, evaluations left out), peak resident memory and where it ran. A finished
run has its file and is skipped on the next call; a killed run has none (files are written to a
temporary name and renamed) and is run again, and so is a run whose YAML entry has changed since
(each file records the hyperparameters it was run with). A run that fails on a worker (an exception,
its worker killed, its node lost) is reported and tried again ``--retries`` times, while the others go on.
"""

import argparse
import json
import os
import resource
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.cluster import ray_session, run_all
from benchmarks.variants import VARIANTS, read_schedules
from sb3_dueling.checkpoints.atomic_files import write_json_atomically

RESULTS = Path(__file__).parent / "results"


# Env steps per run (the budgets, the RL Zoo's n_timesteps for these envs)
BUDGETS = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000, "LunarLander-v3": 100_000, "MountainCar-v0": 120_000}


def slug(algo: str) -> str:
    """The algorithm's name as a file or folder name: ``DuelingDQN(double_q=False)`` -> ``DuelingDQN_double_q-False``."""
    return algo.replace("(", "_").replace(")", "").replace("=", "-")


@dataclass(frozen=True)
class Run:
    algo: str
    env: str
    seed: int

    def path(self, results: Path) -> Path:
        return results / self.env / slug(self.algo) / f"seed_{self.seed}.json"


def expand_grid(algos: Iterable[str], envs: Iterable[str], seeds: Iterable[int]) -> list[Run]:
    """Every (algorithm, env, seed), envs outermost so that early results cover all algorithms."""
    for name in algos:
        if name not in VARIANTS:
            raise ValueError(f"unknown algorithm {name!r}; choose from {list(VARIANTS)}")
    for env in envs:
        if env not in BUDGETS:
            raise ValueError(f"unknown env {env!r}; choose from {list(BUDGETS)}")
    return [Run(algo, env, seed) for env in envs for seed in seeds for algo in algos]


def hyperparameters(run: Run) -> dict[str, Any]:
    """The keyword arguments the run's algorithm is built with: its YAML entry plus the variant's own."""
    return VARIANTS[run.algo].hyperparameters(run.env).kwargs


def is_current(run: Run, results: Path) -> bool:
    """Whether the run has a result file, written with the hyperparameters its YAML file has now."""
    path = run.path(results)
    if not path.exists():
        return False
    recorded = json.loads(path.read_text()).get("hyperparams")
    return recorded == {key: repr(value) for key, value in hyperparameters(run).items()}


def pending(runs: Iterable[Run], results: Path) -> list[Run]:
    """The runs without a current result file: never run, killed, or run before their YAML entry changed."""
    return [run for run in runs if not is_current(run, results)]


class RecordingEvalCallback(EvalCallback):
    """SB3's EvalCallback that keeps each evaluation's mean return and the seconds spent evaluating."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.curve: list[tuple[int, float]] = []
        self.eval_seconds = 0.0

    def _on_step(self) -> bool:
        start = time.perf_counter()
        result = super()._on_step()
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.curve.append((self.num_timesteps, float(self.last_mean_reward)))
            self.eval_seconds += time.perf_counter() - start
        return result


def execute(run: Run, eval_freq: int, eval_episodes: int, steps: int | None = None) -> dict[str, Any]:
    """Train and evaluate one run: the content of its result file. Meant for a fresh process."""
    th.set_num_threads(1)
    hyperparams = hyperparameters(run)
    recorded = {key: repr(value) for key, value in hyperparams.items()}  # before QRDQN adds to policy_kwargs
    budget = steps or BUDGETS[run.env]
    model = VARIANTS[run.algo].cls("MlpPolicy", run.env, seed=run.seed, **read_schedules(hyperparams))
    eval_env = make_vec_env(run.env, n_envs=1, seed=run.seed + 10_000)
    callback = RecordingEvalCallback(eval_env, eval_freq=eval_freq, n_eval_episodes=eval_episodes, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    train_seconds = time.perf_counter() - start - callback.eval_seconds
    # A rollout can run past the budget (train_freq): evaluations after it are left out, alike for all
    timesteps, returns = zip(*[(step, value) for step, value in callback.curve if step <= budget], strict=True)
    return {
        **asdict(run),
        "budget": budget,
        "timesteps": list(timesteps),
        "eval_returns": list(returns),
        "final_return": returns[-1],
        "steps_per_second": model.num_timesteps / train_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "eval_freq": eval_freq,
        "eval_episodes": eval_episodes,
        "hyperparams": recorded,
    }


def wants_gpu(run: Run) -> bool:
    """Whether the run's hyperparameters ask for a GPU (``device: cuda``); by default a run trains on a CPU."""
    return str(hyperparameters(run).get("device", "cpu")).startswith("cuda")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--envs", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs in parallel on this machine")
    parser.add_argument("--address", help="a Ray cluster: 'auto' on one of its nodes, or the head's HOST:PORT")
    parser.add_argument("--retries", type=int, default=2, help="attempts after the first for a run that fails")
    parser.add_argument("--gpu-share", type=float, default=0.25, help="of a GPU, for a run that asks for one")
    parser.add_argument("--eval-freq", type=int, default=5000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="override every budget (for quick checks)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    runs = expand_grid(args.algos, args.envs, range(args.seeds))
    todo = pending(runs, args.results)
    where = args.address or f"{args.workers} workers on this machine"
    print(f"{len(runs)} runs in the grid, {len(runs) - len(todo)} finished, {len(todo)} to run on {where}")
    if not todo:
        return
    work = partial(execute, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes, steps=args.steps)
    with ray_session(args.address, args.workers):
        failed = run_all(
            work,
            todo,
            on_result=lambda run, result: write_json_atomically(result, run.path(args.results)),
            retries=args.retries,
            wants_gpu=wants_gpu,
            gpu_share=args.gpu_share,
        )
    if failed:
        raise SystemExit(f"{len(failed)} runs failed on every attempt (the same command runs them again): {failed}")


if __name__ == "__main__":
    main()
