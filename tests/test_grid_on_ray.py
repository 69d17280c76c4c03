"""The benchmark grid on Ray: an embedded instance on loopback, a two-node cluster, runs that fail or are killed."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from benchmarks.cluster import LOOPBACK_ONLY, import_ray, ray_session, run_all
from benchmarks.grid import Run, Settings, execute, expand_grid, pending, write_json_atomically

# Two algorithms x one env x two seeds, a few hundred steps each
TINY_GRID = ["--algos", "DuelingDQN", "DQN", "--envs", "CartPole-v1", "--seeds", "2"]
TINY_RUNS = ["--steps", "200", "--eval-freq", "100", "--eval-episodes", "1"]
QUICK = Settings(steps=200, eval_freq=100, eval_episodes=1)


def grid(*args: str, results: Path) -> str:
    """``python -m benchmarks.grid`` on the tiny grid, as a user runs it: its output."""
    command = [sys.executable, "-m", "benchmarks.grid", *TINY_GRID, *TINY_RUNS, "--results", str(results), *args]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def results_of(results: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(results.glob("*/*/seed_*.json"))]


@pytest.fixture(scope="module")
def ray_temp_dir() -> Iterator[None]:
    """Ray's files in a short temporary folder (Unix socket paths are short), removed after."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        temp_dir = tempfile.mkdtemp(prefix="ray")
        monkeypatch.setenv("RAY_TMPDIR", temp_dir)
        try:
            yield
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_on_loopback(ray_temp_dir: None) -> Iterator[None]:
    """Clusters on loopback only: for the grid's process, and for this one, where Ray is imported already."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(LOOPBACK_ONLY, "0")
        monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        yield


@pytest.fixture(scope="module")
def two_nodes(ray_on_loopback: None) -> Iterator[Cluster]:
    """A head and a second node on this machine, one CPU each, stopped on exit."""
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    try:
        cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        cluster.shutdown()


def test_without_ray_the_grid_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[cluster\]"'):
        import_ray()


def test_the_grid_runs_on_an_embedded_instance_and_skips_finished_runs(ray_temp_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(LOOPBACK_ONLY, raising=False)  # the grid binds its instance to loopback by itself
    output = grid("--workers", "2", results=tmp_path)
    assert "4 runs in the grid, 0 finished, 4 to run on 2 workers on this machine" in output
    results = results_of(tmp_path)
    assert len(results) == 4 and pending(expand_grid(["DuelingDQN", "DQN"], ["CartPole-v1"], range(2)), tmp_path, QUICK) == []
    assert {result["ran_on"]["node_ip"] for result in results} == {"127.0.0.1"}
    assert len({result["ran_on"]["pid"] for result in results}) == 2  # two workers in parallel
    assert all(result["timesteps"] == [100, 200] and result["peak_rss_mb"] > 50 for result in results)
    written = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.json")}
    assert "4 runs in the grid, 4 finished, 0 to run" in grid("--workers", "2", results=tmp_path)
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.json")} == written


def test_the_grid_runs_on_both_nodes_of_a_cluster(two_nodes, tmp_path):
    output = grid("--address", two_nodes.address, results=tmp_path)
    assert f"4 runs in the grid, 0 finished, 4 to run on {two_nodes.address}" in output
    nodes = {result["ran_on"]["node_id"] for result in results_of(tmp_path)}
    assert nodes == {two_nodes.head_node.node_id, *(node.node_id for node in two_nodes.worker_nodes)}


def fail_first_attempt(markers: Path, how: str, work: Callable[[Run], dict[str, Any]], run: Run) -> dict[str, Any]:
    """``work(run)``, after failing as ``how`` says on the first attempt (or on all, for ``raise always``)."""
    marker = markers / f"seed_{run.seed}"
    if how == "raise always" or not marker.exists():
        marker.touch()
        if how.startswith("raise"):
            raise ValueError(f"{how} for seed {run.seed}")
        # In the middle of the run: its own process, or the Ray worker that started it (Ray then ends the run's)
        victim = os.getpid() if how == "kill the run" else os.getppid()
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
    return work(run)


@pytest.fixture
def by_value() -> Iterator[None]:
    """The functions of this module pickled by value: the tasks' processes cannot import the tests."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_failed_and_killed_runs_are_reported_and_retried_and_the_others_finish(two_nodes, by_value, tmp_path, capsys):
    runs = expand_grid(["DuelingDQN"], ["CartPole-v1"], range(4))
    hows = ["raise once", "kill the run", "kill the worker", "raise always"]
    work = partial(execute, settings=QUICK)
    with ray_session(two_nodes.address, workers=1):
        failed = run_all(
            lambda run: fail_first_attempt(tmp_path, hows[run.seed], work, run),
            runs,
            on_result=lambda run, result: write_json_atomically(result, run.path(tmp_path / "results")),
            retries=1,
            wants_gpu=lambda run: False,
            gpu_share=0.0,
        )
    output = capsys.readouterr().out
    assert failed == [runs[3]] and pending(runs, tmp_path / "results", QUICK) == [runs[3]]
    reports = [
        "attempt 1 of 2, trying again: ChildProcessError: the task's process failed: ValueError: raise once for seed 0",
        "attempt 1 of 2, trying again: ChildProcessError: the task's process was killed by SIGKILL",
        "attempt 1 of 2, trying again: WorkerCrashedError: ",
        "attempt 2 of 2, given up: ChildProcessError: the task's process failed: ValueError: raise always for seed 3",
    ]
    for run, report in zip(runs, reports):
        assert f"failed: {run}, {report}" in output
    assert not list((tmp_path / "results").rglob("*.tmp"))  # nothing half-written


def nap(seconds: float, item: int) -> dict[str, Any]:
    time.sleep(seconds)
    return {"item": item}


@pytest.mark.slow
def test_a_run_on_a_node_lost_is_retried_on_another(ray_on_loopback, by_value, capsys):
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False))
    try:
        lost, survivor = cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)
        threading.Timer(5, cluster.remove_node, (lost,), {"allow_graceful": False}).start()
        results: dict[int, dict[str, Any]] = {}
        with ray_session(cluster.address, workers=1):
            failed = run_all(partial(nap, 10), [0, 1], results.__setitem__, 1, wants_gpu=lambda item: False, gpu_share=0.0)
    finally:
        cluster.shutdown()
    assert failed == [] and sorted(results) == [0, 1]
    assert {result["ran_on"]["node_id"] for result in results.values()} == {survivor.node_id}
    assert "attempt 1 of 2, trying again: NodeDiedError: Task failed because the node it was running on is dead" in (
        capsys.readouterr().out
    )
