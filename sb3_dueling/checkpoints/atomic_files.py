"""
Files that a crash cannot leave half-written: each is written under a temporary name in its folder,
flushed, fsynced and renamed over the old one, and the folder is fsynced so that the rename lasts.
A reader sees the old file or the new one, never part of one. What a killed writer leaves under its
temporary name is removed by the next writer (``remove_stale_temporaries``).
"""

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry is data of the directory)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temporary_path(path: Path) -> Path:
    """The hidden name, with this process's id, under which ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _writer_is_gone(pid: int) -> bool:
    """Whether the process that wrote a temporary has ended (this one's own are left only by a failed write)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows: keep what cannot be told
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_temporaries(folder: Path, names: str) -> list[Path]:
    """
    Remove the temporaries of files and folders of ``folder`` whose writer has ended (killed mid-write).

    :param folder: where to look
    :param names: a regular expression that the written names (not the temporary ones) match whole
    :return: what was removed
    """
    pattern = re.compile(rf"\.({names})\.(\d+)\.tmp")
    removed = []
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if match is not None and _writer_is_gone(int(match.group(2))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """
    Write ``path`` through a temporary file in the same folder; a failed write leaves no trace.

    :param path: the file to write
    :param write: writes the file whose path it gets (the temporary one)
    """
    temporary = temporary_path(path)
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_json_atomically(data: Any, path: Path) -> None:
    """
    Write ``data`` as indented JSON to ``path`` (its folder is created if needed), atomically.

    :param data: what ``json.dumps`` takes
    :param path: the file to write
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_text(json.dumps(data, indent=1)))
