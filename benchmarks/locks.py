"""
A lock per result file, so that two grids on one results folder do not make the same run twice: the driver
that runs it holds ``<result file>.lock`` (``fcntl.flock``) while the run is in flight. The kernel frees a
lock when its process ends, however it ends: what a killed driver leaves is a lock file that no one holds.
"""

import fcntl
import os
from contextlib import ExitStack
from pathlib import Path


def lock_path(path: Path) -> Path:
    """The lock file of the result file ``path``."""
    return path.with_name(f"{path.name}.lock")


def try_lock(path: Path, held: ExitStack) -> bool:
    """
    Lock the result file ``path`` for as long as ``held`` is open, unless another process holds its lock.

    :param path: The result file (it need not exist)
    :param held: Where the lock is kept; its close removes the lock file and frees the lock
    :return: Whether this process has the lock now
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        file = open(lock, "a")  # noqa: SIM115 (held until `held` closes)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        # The holder before may have removed the file as this process opened it: a lock on a removed file locks
        # nothing that the next process sees, so take the lock of the file that is there now
        try:
            if os.path.samestat(os.fstat(file.fileno()), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        file.close()

    def release() -> None:
        lock.unlink()  # before the lock is freed: a process waiting on this file then tries again on a new one
        file.close()

    held.callback(release)
    return True
