"""The errors of checkpoint and model files: each names the file and what is wrong with it."""

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


@contextmanager
def model_file_errors(path: str | os.PathLike[str] | io.BufferedIOBase, algorithm_name: str) -> Iterator[None]:
    """
    Run the loading of a model file, turning a missing file into ``MissingCheckpointFileError`` and
    anything that fails while loading it (truncated, corrupted, foreign) into ``CheckpointError``,
    both naming the file:

        with model_file_errors(path, cls.__name__):
            return super().load(path, ...)

    :param path: the model file as given to ``load`` (a path, with or without ``.zip``, or an open file)
    :param algorithm_name: the class that loads it, for the message
    """
    if isinstance(path, io.BufferedIOBase):
        file = Path(getattr(path, "name", repr(path)))
    else:
        file = resolve_model_path(path)
        if not file.exists():
            also = "" if file.suffix == ".zip" else f" (nor {file}.zip)"
            raise MissingCheckpointFileError(file, f"no such file{also}")
    try:
        yield
    except Exception as error:
        raise CheckpointError(file, f"not a loadable {algorithm_name} model ({type(error).__name__}: {error})") from error
