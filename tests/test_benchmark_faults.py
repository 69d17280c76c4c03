"""
Faults the benchmark grid and report meet: two grids on one results folder, a cluster address where there is
none, flags no run can use, results of other settings, a script run from elsewhere, and side effects of
importing or using the benchmark modules. Each is refused at once with a message that names what to change,
and nothing a run wrote is lost. No Ray session is started here.
"""

import fcntl
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import benchmarks.cluster as cluster
import benchmarks.grid as grid
from benchmarks.grid import Run, hyperparameters

BENCHMARKS = Path(grid.__file__).parent
TINY = ["--algos", "DuelingDQN", "DQN", "--envs", "CartPole-v1", "--seeds", "2"]
TINY_SETTINGS = ["--steps", "200", "--eval-freq", "100", "--eval-episodes", "1"]


def result_of(run: Run) -> dict[str, Any]:
    """What a run of :data:`TINY_SETTINGS` writes, without training (the grid reads no more of it)."""
    recorded = {key: repr(value) for key, value in hyperparameters(run).items()}
    return {**asdict(run), "budget": 200, "eval_freq": 100, "eval_episodes": 1, "hyperparams": recorded}


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> list[Run]:
    """The grid's Ray calls replaced: each run "runs" at once, in this process, and is listed here."""
    executed: list[Run] = []

    def run_all(work: Any, items: list[Run], on_result: Any, **_: Any) -> list[Run]:
        for run in items:
            executed.append(run)
            on_result(run, result_of(run))
        return []

    monkeypatch.setattr(grid, "ray_session", lambda address, workers: nullcontext())
    monkeypatch.setattr(grid, "run_all", run_all)
    return executed


def test_a_run_that_another_grid_is_running_is_not_run_again(no_ray, tmp_path, monkeypatch, capsys):
    first_running, second_done = threading.Event(), threading.Event()
    fake_run_all = grid.run_all

    def slow_run_all(work: Any, items: list[Run], on_result: Any, **kwargs: Any) -> list[Run]:
        if not first_running.is_set():  # the first grid: stays in flight until the second has finished
            first_running.set()
            assert second_done.wait(60)
        return fake_run_all(work, items, on_result, **kwargs)

    monkeypatch.setattr(grid, "run_all", slow_run_all)
    first = threading.Thread(target=grid.main, args=([*TINY, *TINY_SETTINGS, "--results", str(tmp_path)],))
    first.start()
    try:
        assert first_running.wait(60)
        grid.main([*TINY, *TINY_SETTINGS, "--results", str(tmp_path)])
    finally:
        second_done.set()
        first.join(60)
    assert sorted(no_ray, key=str) == sorted(grid.expand_grid(["DuelingDQN", "DQN"], ["CartPole-v1"], range(2)), key=str)
    assert "4 runs skipped: another process is running them now" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.lock"))
    # the next grid finds them finished
    grid.main([*TINY, *TINY_SETTINGS, "--results", str(tmp_path)])
    assert len(no_ray) == 4 and "4 runs in the grid, 4 finished, 0 to run" in capsys.readouterr().out


def test_a_lock_that_a_killed_grid_held_is_free_again(no_ray, tmp_path):
    run = Run("DQN", "CartPole-v1", 0)
    lock = run.path(tmp_path).with_name("seed_0.json.lock")
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl, time; f = open({str(lock)!r}, 'a'); fcntl.flock(f, {fcntl.LOCK_EX}); "
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        grid.main(["--algos", "DQN", "--envs", "CartPole-v1", "--seeds", "1", *TINY_SETTINGS, "--results", str(tmp_path)])
        assert no_ray == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    grid.main(["--algos", "DQN", "--envs", "CartPole-v1", "--seeds", "1", *TINY_SETTINGS, "--results", str(tmp_path)])
    assert no_ray == [run] and run.path(tmp_path).exists() and not lock.exists()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_without_a_cluster_fails_at_once(tmp_path):
    address = f"127.0.0.1:{unused_port()}"
    command = [sys.executable, "-m", "benchmarks.grid", *TINY, "--address", address, "--results", str(tmp_path)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=30)  # Ray would try for minutes
    assert finished.returncode == 2
    assert f"--address: no Ray cluster at {address}" in finished.stderr and "ray start --head" in finished.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "-5"], "argument --steps: must be a whole number >= 1, got '-5'"),
        (["--steps", "1e4"], "argument --steps: must be a whole number >= 1, got '1e4'"),
        (["--seeds", "0"], "argument --seeds: must be a whole number >= 1, got '0'"),
        (["--workers", "0"], "argument --workers: must be a whole number >= 1, got '0'"),
        (["--retries", "-1"], "argument --retries: must be a whole number >= 0, got '-1'"),
        (["--eval-freq", "0"], "argument --eval-freq: must be a whole number >= 1, got '0'"),
        (["--eval-episodes", "0"], "argument --eval-episodes: must be a whole number >= 1, got '0'"),
        (["--gpu-share", "0"], "argument --gpu-share: must be a number in (0, 1], got '0'"),
        (["--gpu-share", "2.5"], "argument --gpu-share: must be a number in (0, 1], got '2.5'"),
        (["--steps", "1000"], "--eval-freq 5000 is more than the budget of CartPole-v1 (1000 steps)"),
        (["--envs", "Acrobot-v1", "CartPole-v1", "--eval-freq", "60000"], "more than the budget of CartPole-v1 (50000"),
        (["--algos", "DDQN"], "argument --algos: invalid choice: 'DDQN'"),
        (["--envs", "Pong"], "argument --envs: invalid choice: 'Pong'"),
        (["--results", "README.md"], "--results: README.md is a file, not a folder"),
    ],
)
def test_flags_that_no_run_can_use_are_refused_before_anything_runs(flags, message, monkeypatch, capsys):
    monkeypatch.setattr(grid, "ray_session", lambda *args: pytest.fail("the grid started"))
    with pytest.raises(SystemExit) as exit_status:
        grid.main(flags)
    assert exit_status.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, flags, message",
    [
        ("speed", ["--repeats", "0"], "argument --repeats: must be a whole number >= 1, got '0'"),
        ("threads", ["--busy", "0", "--repeats", "0"], "argument --repeats: must be a whole number >= 1, got '0'"),
        ("buffer_speed", ["--sizes", "0"], "argument --sizes: must be a whole number >= 1, got '0'"),
        ("atari", ["--steps", "100", "--learning-starts", "200"], "--learning-starts must be less than --steps (100)"),
        ("report", ["--reps", "0"], "argument --reps: must be a whole number >= 1, got '0'"),
    ],
)
def test_the_other_benchmarks_check_their_flags(module, flags, message, monkeypatch, capsys):
    main = importlib.import_module(f"benchmarks.{module}").main
    monkeypatch.setattr(sys, "argv", [module, *flags])
    with pytest.raises(SystemExit) as exit_status:
        main()
    assert exit_status.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("script", ["grid.py", "report.py"])
def test_the_scripts_run_by_path_from_another_folder(script, tmp_path):
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("usage: ")


def python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter; it must succeed."""
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_importing_the_report_keeps_the_matplotlib_backend():
    code = "import matplotlib; matplotlib.use('svg'); import benchmarks.report; print(matplotlib.get_backend())"
    assert python(code).strip() == "svg"


def test_the_report_imports_without_the_zoo():
    # only the DQN and QR-DQN variants read the Zoo's files, when their hyperparameters are asked for
    python("import sys; sys.modules['rl_zoo3'] = None; import benchmarks.report")


@pytest.mark.parametrize("address", [None, "127.0.0.1:6379"])
@pytest.mark.parametrize("fails", [False, True])
def test_a_ray_session_leaves_the_environment_as_it_found_it(address, fails, monkeypatch):
    monkeypatch.delenv(cluster.LOOPBACK_ONLY, raising=False)
    seen = {}

    def init(**kwargs: Any) -> None:
        seen["during"] = os.environ.get(cluster.LOOPBACK_ONLY)
        if fails:
            raise ConnectionError("no cluster")

    monkeypatch.setattr(cluster, "import_ray", lambda: SimpleNamespace(init=init, shutdown=lambda: None))
    before = dict(os.environ)
    try:
        with cluster.ray_session(address, workers=1):
            pass
    except ConnectionError:
        assert fails
    assert dict(os.environ) == before
    assert seen["during"] == (None if address else "0")  # an embedded instance binds to loopback
