"""
Files that a crash cannot leave half-written: each is written under a temporary name in its folder,
flushed, fsynced and renamed over the old one, and the folder is fsynced so that the rename lasts.
A reader sees the old file or the new one, never part of one.
"""

import json
import os
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


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """
    Write ``path`` through a temporary file in the same folder; a failed write leaves no trace.

    :param path: the file to write
    :param write: writes the file whose path it gets (the temporary one)
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
