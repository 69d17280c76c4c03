"""
Ray for the benchmark grid: an embedded instance on this machine, bound to loopback, or an existing
cluster; each task in a fresh Python process started by a Ray worker, a failed one reported and tried
again a bounded number of times, the progress on a tqdm bar.

Ray is an optional extra (``pip install -e ".[cluster]"``), imported only when the grid runs.
"""

import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import cloudpickle
from tqdm import tqdm

T = TypeVar("T")
Result = dict[str, Any]

#: The tasks return small dicts: the object store needs little of the memory (Ray's default is 30%)
OBJECT_STORE_BYTES = 200 * 1024**2
#: Ray binds a one-machine instance to loopback where it expects no cluster (macOS, Windows); this asks for it
#: on Linux too. Ray reads it when it is imported.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: The benchmark code, shipped to every node so that a node runs the driver's version of it
BENCHMARKS = Path(__file__).parent
#: Seconds to wait for a cluster's head to answer before saying that there is none (Ray would retry for minutes)
CONNECT_SECONDS = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError('the benchmark grid runs on Ray: pip install -e ".[cluster]"') from error
    return ray


def check_address(address: str) -> None:
    """
    Raise a ConnectionError unless something answers at a cluster address ``HOST:PORT`` (or ``ray://HOST:PORT``)
    within :data:`CONNECT_SECONDS`; other addresses (``auto``) are left to Ray, which finds the cluster itself.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise ConnectionError(
            f"no Ray cluster at {address} ({error.strerror or error}): start one there with `ray start --head "
            f"--port {port}`, or leave out --address to run on this machine"
        ) from error


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """
    Connect this process to Ray for the ``with`` block.

    :param address: An existing cluster, as ``ray.init`` takes it (``auto`` on one of its nodes, or the
        head's ``HOST:PORT``); ``None`` starts an embedded instance on this machine, bound to loopback,
        which ends with the block
    :param workers: The embedded instance's CPUs: the runs in parallel (a cluster has its own)
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loopback_only = {LOOPBACK_ONLY: "0"} if address is None and LOOPBACK_ONLY not in os.environ else {}
    with mock.patch.dict(os.environ, loopback_only):  # this process's environment is as it was after the block
        ray = import_ray()
        own_instance = dict(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES) if address is None else {}
        ray.init(
            address=address,
            include_dashboard=False,
            runtime_env={"py_modules": [str(BENCHMARKS)], "excludes": ["results/"]},
            **own_instance,
        )
        try:
            yield
        finally:
            ray.shutdown()


def _on_worker(work_and_item: bytes) -> Result:
    """``work(item)`` in a fresh Python process, and where it ran: Ray's node and IP address, the host, the worker."""
    # A bare interpreter: its peak memory (ru_maxrss) is the task's own. A Ray worker adds about 60 MB,
    # and so would a multiprocessing child, which imports the worker's __main__ (Ray) again.
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster"],
        input=work_and_item,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    messages = child.stderr.decode(errors="replace")
    sys.stderr.write(messages)  # to the worker's log, which Ray shows in the driver
    if child.returncode < 0:
        raise ChildProcessError(f"the task's process was killed by {signal.Signals(-child.returncode).name}")
    if child.returncode != 0:
        last_line = (messages.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        raise ChildProcessError(f"the task's process failed: {last_line}")
    result = pickle.loads(child.stdout)
    ray = import_ray()
    where = dict(
        node_id=ray.get_runtime_context().get_node_id(),
        node_ip=ray.util.get_node_ip_address(),
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    return {**result, "ran_on": where}


def describe(error: Exception) -> str:
    """The error a task failed with: the exception it raised, or what Ray says happened to its worker or node."""
    cause = getattr(error, "cause", None) or error  # a RayTaskError wraps the task's own exception
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first_line}"


def run_all(
    work: Callable[[T], Result],
    items: Iterable[T],
    on_result: Callable[[T, Result], None],
    retries: int,
    wants_gpu: Callable[[T], bool],
    gpu_share: float,
) -> list[T]:
    """
    Run ``work(item)`` for every item as a Ray task with one CPU, each in a fresh Python process (its
    peak memory is its own), and pass each result to ``on_result`` here, in the driver. A task that
    fails (an exception, its worker killed, its node lost) is reported and submitted again, up to
    ``retries`` times; the others go on meanwhile.

    :param work: What a task does; it returns a result that records where it ran (``ran_on``)
    :param items: One task each
    :param on_result: Called in this process with each item and its result
    :param retries: Attempts after the first for a failed task
    :param wants_gpu: Whether an item asks for a GPU
    :param gpu_share: The fraction of a GPU given to an item that asks for one, where the cluster has GPUs
    :return: The items that failed on every attempt
    """
    if retries < 0:
        raise ValueError(f"retries must be at least 0, got {retries}")
    ray = import_ray()
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    # Ray's own retries would be silent: the driver retries, so that each failure is reported
    task = ray.remote(num_cpus=1, max_retries=0)(_on_worker)

    def submit(item: T) -> Any:
        # Pickled here, as Ray would (a function of a ``python -m`` script by value), for the task's own process
        work_and_item = cloudpickle.dumps((work, item))
        return task.options(num_gpus=gpu_share if has_gpus and wants_gpu(item) else 0).remote(work_and_item)

    running = {submit(item): (item, 1) for item in items}
    failed = []
    with tqdm(total=len(running), unit="run") as bar:
        while running:
            (done,), _ = ray.wait(list(running), num_returns=1)
            item, attempt = running.pop(done)
            try:
                result = ray.get(done)
            except ray.exceptions.RayError as error:
                again = attempt <= retries
                outcome = "trying again" if again else "given up"
                bar.write(f"failed: {item}, attempt {attempt} of {retries + 1}, {outcome}: {describe(error)}")
                if again:
                    running[submit(item)] = (item, attempt + 1)
                else:
                    failed.append(item)
                continue
            on_result(item, result)
            bar.update()
            bar.write(f"done: {item} on {result['ran_on']['host']}")
    return failed


def _run_from_stdin() -> None:
    """A task's fresh process: the work and its item from stdin, the result to stdout, what the work prints to stderr."""
    result_pipe, sys.stdout = sys.stdout.buffer, sys.stderr
    work, item = cloudpickle.loads(sys.stdin.buffer.read())
    result_pipe.write(pickle.dumps(work(item)))


if __name__ == "__main__":
    _run_from_stdin()
