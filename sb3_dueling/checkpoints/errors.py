"""The errors of checkpoint and model files: each names the file and what is wrong with it."""

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stable_baselines3.common.save_util import load_from_zip_file


class CheckpointError(Exception):
    """
    A checkpoint or model file that cannot be used.

    :param path: the file (or folder)
    :param problem: what is wrong with it
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class MissingCheckpointFileError(CheckpointError, FileNotFoundError):
    """A file that is not there; also a ``FileNotFoundError``, which SB3's ``load`` raises for it."""


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """The file SB3's ``load`` reads for ``path``: ``path`` itself if it exists, else ``path`` + ``.zip``."""
    path = Path(path)
    with_suffix = Path(f"{path}.zip")
    return with_suffix if not path.exists() and with_suffix.exists() else path


def _existing_file(path: str | os.PathLike[str] | io.BufferedIOBase) -> Path:
    """The file that SB3's ``load`` reads for ``path`` (the name of an open file); a missing one raises."""
    if isinstance(path, io.BufferedIOBase):
        return Path(getattr(path, "name", repr(path)))
    file = resolve_model_path(path)
    if not file.exists():
        also = "" if file.suffix == ".zip" else f" (nor {file}.zip)"
        raise MissingCheckpointFileError(file, f"no such file{also}")
    return file


def _unloadable(file: Path, algorithm_name: str, error: Exception) -> CheckpointError:
    return CheckpointError(file, f"not a loadable {algorithm_name} model ({type(error).__name__}: {error})")


def check_model_file(path: str | os.PathLike[str] | io.BufferedIOBase, algorithm_name: str) -> None:
    """
    Read a model file as SB3's ``load`` does, and raise ``MissingCheckpointFileError`` for a missing file
    and ``CheckpointError`` for a truncated, corrupted or foreign one, both naming the file. Only the
    file is checked: what SB3's ``load`` then says of its other arguments (an env with other spaces, a
    ``policy_kwargs``) stays SB3's own error, as for the class a drop-in replaces.

    :param path: the model file as given to ``load`` (a path, with or without ``.zip``, or an open file)
    :param algorithm_name: the class that loads it, for the message
    """
    file = _existing_file(path)
    stream = path if isinstance(path, io.BufferedIOBase) else None
    position = stream.tell() if stream is not None else 0
    try:
        data, params, _ = load_from_zip_file(stream or file, device="cpu")
    except Exception as error:
        raise _unloadable(file, algorithm_name, error) from error
    finally:
        if stream is not None:
            stream.seek(position)  # load() reads the open file again
    # SB3 reads a zip without its ``data`` member as no data, and then fails on "No data found"
    if data is None or not params:
        raise CheckpointError(
            file, f"not a loadable {algorithm_name} model: no SB3 model data in it (truncated, or another kind of zip)"
        )


@contextmanager
def model_file_errors(path: str | os.PathLike[str] | io.BufferedIOBase, algorithm_name: str) -> Iterator[None]:
    """
    Run the loading of a model file, turning a missing file into ``MissingCheckpointFileError`` and
    anything that fails while loading it (truncated, corrupted, foreign, saved by another algorithm)
    into ``CheckpointError``, both naming the file:

        with model_file_errors(path, "DuelingDQN"):
            model = DuelingDQN.load(path, ...)

    :param path: the model file as given to ``load`` (a path, with or without ``.zip``, or an open file)
    :param algorithm_name: the class that loads it, for the message
    """
    file = _existing_file(path)
    try:
        yield
    except Exception as error:
        raise _unloadable(file, algorithm_name, error) from error
