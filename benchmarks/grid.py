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

A result file also records the settings it was made with (budget, evaluation frequency and episodes): a run
with other ``--steps``, ``--eval-freq`` or ``--eval-episodes`` is another experiment, and the grid stops
rather than overwrite its result (give those settings a ``--results`` folder of their own). Two grids on one
folder share the work: each run in flight has a lock file that its driver holds (``flock``; the kernel frees
it when the driver ends, however it ends), and a grid skips the runs another one is running.

Run it from the repository's root (``python -m benchmarks.grid``), or by path from anywhere
(``python path/to/benchmarks/grid.py``).
"""

import sys
from pathlib import Path

if not __package__:  # run by path: import the benchmarks as from the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.arguments import fraction, non_negative_int, positive_int
from benchmarks.cluster import check_address, ray_session, run_all
from benchmarks.locks import try_lock
from benchmarks.variants import VARIANTS, read_schedules
from sb3_dueling.checkpoints.atomic_files import write_json_atomically

RESULTS = Path(__file__).parent / "results"


# Env steps per run (the budgets, the RL Zoo's n_timesteps for these envs)
BUDGETS = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000, "LunarLander-v3": 100_000, "MountainCar-v0": 120_000}
#: Env steps between two evaluations, by default
EVAL_FREQ = 5000


def slug(algo: str) -> str:
    """The algorithm's name as a file or folder name: ``DuelingDQN(double_q=False)`` -> ``DuelingDQN_double_q-False``."""
    return algo.replace("(", "_").replace(")", "").replace("=", "-")


@dataclass(frozen=True)
class Run:
    """
    A run of the grid. Another suite of runs (``benchmarks.minatar``) is a subclass: its class attributes
    (algorithms, envs and their budgets, command line defaults) and its methods (hyperparameters, model, envs).
    """

    algo: str
    env: str
    seed: int

    #: The algorithms and the envs with their budgets (env steps per run) that this kind of run takes
    algos: ClassVar[tuple[str, ...]] = tuple(VARIANTS)
    budgets: ClassVar[Mapping[str, int]] = BUDGETS
    #: The command line's defaults for this kind of run: its flags for the envs, its results folder, its --eval-freq
    env_flags: ClassVar[tuple[str, ...]] = ("--envs",)
    results: ClassVar[Path] = RESULTS
    eval_freq: ClassVar[int] = EVAL_FREQ

    def path(self, results: Path) -> Path:
        return results / self.env / slug(self.algo) / f"seed_{self.seed}.json"

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments the run's algorithm is built with: its YAML entry plus the variant's own."""
        return VARIANTS[self.algo].hyperparameters(self.env).kwargs

    def env_maker(self) -> str | Callable[[], gym.Env]:
        """What the run's envs are made from, as SB3's ``make_vec_env`` takes it: here the env's id."""
        return self.env

    def make_model(self) -> BaseAlgorithm:
        """The run's algorithm, with its hyperparameters and seed, on a new env."""
        return VARIANTS[self.algo].cls("MlpPolicy", self.env, seed=self.seed, **read_schedules(self.hyperparameters()))


def expand_grid(algos: Iterable[str], envs: Iterable[str], seeds: Iterable[int], kind: type[Run] = Run) -> list[Run]:
    """Every (algorithm, env, seed) as a ``kind`` of run, envs outermost so that early results cover all algorithms."""
    for name in algos:
        if name not in kind.algos:
            raise ValueError(f"unknown algorithm {name!r}; choose from {list(kind.algos)}")
    for env in envs:
        if env not in kind.budgets:
            raise ValueError(f"unknown env {env!r}; choose from {list(kind.budgets)}")
    return [kind(algo, env, seed) for env in envs for seed in seeds for algo in algos]


@dataclass(frozen=True)
class Settings:
    """
    What a run's result depends on besides its algorithm, env, seed and hyperparameters.

    :param steps: The env steps of every run; ``None``: each env's budget (``Run.budgets``)
    :param eval_freq: Env steps between two evaluations
    :param eval_episodes: Episodes per evaluation
    """

    steps: int | None = None
    eval_freq: int = EVAL_FREQ
    eval_episodes: int = 10

    def budget(self, env: str, budgets: Mapping[str, int] = BUDGETS) -> int:
        return self.steps or budgets[env]

    def of(self, run: Run) -> dict[str, int]:
        """The settings as the run's result file records them."""
        return {"budget": self.budget(run.env, run.budgets), "eval_freq": self.eval_freq, "eval_episodes": self.eval_episodes}


def hyperparameters(run: Run) -> dict[str, Any]:
    """The keyword arguments the run's algorithm is built with."""
    return run.hyperparameters()


def recorded_hyperparameters(run: Run) -> dict[str, str]:
    """The run's hyperparameters as its result file records them (as written in the YAML file: ``lin_1e-3``)."""
    return {key: repr(value) for key, value in hyperparameters(run).items()}


def read_result(run: Run, results: Path) -> dict[str, Any] | None:
    path = run.path(results)
    return json.loads(path.read_text()) if path.exists() else None


def has_current_hyperparameters(record: dict[str, Any], run: Run) -> bool:
    """Whether a result was made with the hyperparameters the run's YAML file has now."""
    return record.get("hyperparams") == recorded_hyperparameters(run)


def made_with(record: dict[str, Any], settings: dict[str, int]) -> bool:
    """Whether a result was made with these settings (as :meth:`Settings.of` gives them)."""
    return {key: record.get(key) for key in settings} == settings


def describe(record: dict[str, Any], keys: Iterable[str] | None = None) -> str:
    """Settings as a user reads them: ``budget 50000, eval_freq 5000, eval_episodes 10``."""
    return ", ".join(f"{key} {record.get(key, 'not recorded')}" for key in keys or record)


def is_current(run: Run, results: Path, settings: Settings) -> bool:
    """Whether the run has a result file made with these settings and the hyperparameters its YAML file has now."""
    record = read_result(run, results)
    return record is not None and made_with(record, settings.of(run)) and has_current_hyperparameters(record, run)


def pending(runs: Iterable[Run], results: Path, settings: Settings) -> list[Run]:
    """The runs without a current result file: never run, killed, or run with another YAML entry or other settings."""
    return [run for run in runs if not is_current(run, results, settings)]


def made_with_other_settings(runs: Iterable[Run], results: Path, settings: Settings) -> list[Run]:
    """The runs whose result file was made with other settings: another experiment's, which the grid keeps."""
    return [
        run for run in runs if (record := read_result(run, results)) is not None and not made_with(record, settings.of(run))
    ]


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


def execute(run: Run, settings: Settings) -> dict[str, Any]:
    """Train and evaluate one run: the content of its result file. Meant for a fresh process."""
    th.set_num_threads(1)
    budget = settings.budget(run.env, run.budgets)
    model = run.make_model()
    eval_env = make_vec_env(run.env_maker(), n_envs=1, seed=run.seed + 10_000)
    callback = RecordingEvalCallback(eval_env, eval_freq=settings.eval_freq, n_eval_episodes=settings.eval_episodes, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    train_seconds = time.perf_counter() - start - callback.eval_seconds
    # A rollout can run past the budget (train_freq): evaluations after it are left out, alike for all
    timesteps, returns = zip(*[(step, value) for step, value in callback.curve if step <= budget], strict=True)
    return {
        **asdict(run),
        **settings.of(run),
        "timesteps": list(timesteps),
        "eval_returns": list(returns),
        "final_return": returns[-1],
        "steps_per_second": model.num_timesteps / train_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "hyperparams": recorded_hyperparameters(run),
    }


def wants_gpu(run: Run) -> bool:
    """Whether the run's hyperparameters ask for a GPU (``device: cuda``); by default a run trains on a CPU."""
    return str(hyperparameters(run).get("device", "cpu")).startswith("cuda")


def arguments(kind: type[Run] = Run, description: str | None = __doc__) -> argparse.ArgumentParser:
    defaults = Settings(eval_freq=kind.eval_freq)
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=list(kind.algos), choices=list(kind.algos))
    parser.add_argument(*kind.env_flags, dest="envs", nargs="+", default=list(kind.budgets), choices=list(kind.budgets))
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..N-1")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="runs in parallel on this machine")
    parser.add_argument("--address", help="a Ray cluster: 'auto' on one of its nodes, or the head's HOST:PORT")
    parser.add_argument("--retries", type=non_negative_int, default=2, help="attempts after the first for a run that fails")
    parser.add_argument("--gpu-share", type=fraction, default=0.25, help="of a GPU, for a run that asks for one")
    parser.add_argument("--eval-freq", type=positive_int, default=defaults.eval_freq)
    parser.add_argument("--eval-episodes", type=positive_int, default=defaults.eval_episodes)
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="override every budget (quick checks)")
    parser.add_argument("--results", type=Path, default=kind.results)
    return parser


def check(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings, kind: type[Run] = Run) -> None:
    """Exit (status 2, the flag named) on what no run can use: here, in seconds, not on every worker after Ray starts."""
    budgets = {env: settings.budget(env, kind.budgets) for env in args.envs}
    shortest = min(budgets, key=budgets.__getitem__)
    if args.eval_freq > budgets[shortest]:
        parser.error(
            f"--eval-freq {args.eval_freq} is more than the budget of {shortest} ({budgets[shortest]} steps):"
            " its runs would end before their first evaluation"
        )
    if args.results.exists() and not args.results.is_dir():
        parser.error(f"--results: {args.results} is a file, not a folder")
    if args.address is not None:
        try:
            check_address(args.address)
        except ConnectionError as error:
            parser.error(f"--address: {error}")


def main(argv: list[str] | None = None, kind: type[Run] = Run, description: str | None = __doc__) -> None:
    """
    Run the grid's command line.

    :param argv: The arguments (default: the process's)
    :param kind: The kind of run: this grid's, or another suite's subclass of :class:`Run`
    :param description: The command's help text
    """
    parser = arguments(kind, description)
    args = parser.parse_args(argv)
    settings = Settings(args.steps, args.eval_freq, args.eval_episodes)
    check(parser, args, settings, kind)
    runs = expand_grid(args.algos, args.envs, range(args.seeds), kind)
    with ExitStack() as held:
        candidates = pending(runs, args.results, settings)
        busy = [run for run in candidates if not try_lock(run.path(args.results), held)]
        mine = [run for run in candidates if run not in busy]
        other = made_with_other_settings(mine, args.results, settings)
        if other:
            recorded = read_result(other[0], args.results) or {}
            parser.error(
                f"--results: {args.results} has results of {len(other)} of these runs made with other settings "
                f"({other[0].path(args.results).relative_to(args.results)}: {describe(recorded, settings.of(other[0]))};"
                f" asked for: {describe(settings.of(other[0]))}). They are kept: give these settings a folder of their"
                " own with --results"
            )
        todo = pending(mine, args.results, settings)  # again, now locked: another grid may have finished some
        where = args.address or f"{args.workers} workers on this machine"
        print(f"{len(runs)} runs in the grid, {len(runs) - len(todo) - len(busy)} finished, {len(todo)} to run on {where}")
        if busy:
            print(f"{len(busy)} runs skipped: another process is running them now ({', '.join(map(str, busy))})")
        if not todo:
            return
        work = partial(execute, settings=settings)
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
