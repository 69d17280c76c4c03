"""
Model files (SB3's ``.zip``): checked before SB3's ``load`` reads them, with errors that name the file.

The check reads the zip's structure only and unpickles nothing: what SB3's ``load`` would not
deserialize (an entry replaced through ``custom_objects``) is never deserialized here either. This
module is low-level: the learners' ``load`` uses it, and it imports nothing of ``sb3_dueling``.
"""

import base64
import importlib
import io
import json
import os
import pickletools
import traceback
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file

#: The members of a model zip that SB3's ``load`` needs, and the entries of its ``data`` member
NEEDED_MEMBERS = ("data", "policy.pth")
NEEDED_ENTRIES = ("policy_class", "observation_space", "action_space")


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


class ModelFile(NamedTuple):
    """A model file that passed :func:`check_model_file`."""

    #: the file (the name of an open file)
    path: Path
    #: the saved policy class as ``module:qualname``, read without unpickling it; ``None`` when the
    #: file stores the class by value (not importable by name)
    policy_class: str | None


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


def _unloadable(file: Path, algorithm_name: str, problem: str) -> CheckpointError:
    return CheckpointError(file, f"not a loadable {algorithm_name} model: {problem}")


def pickled_global(entry: Any) -> str | None:
    """
    The ``module:qualname`` of a class (or function) that SB3 saved by reference in a ``data`` entry,
    read from the pickle's opcodes without running them; ``None`` for anything else.

    :param entry: an entry of a model file's ``data`` member, as JSON gives it
    """
    if not isinstance(entry, dict) or not isinstance(entry.get(":serialized:"), str):
        return None
    try:
        opcodes = [
            (opcode.name, argument)
            for opcode, argument, _ in pickletools.genops(base64.b64decode(entry[":serialized:"]))
            if opcode.name not in ("PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP")
        ]
    except ValueError:  # not base64, or not a pickle
        return None
    # A reference is the module and the name, then the opcode that imports it, and nothing else
    names = [name for name, _ in opcodes]
    if names == ["GLOBAL"]:
        return ":".join(str(opcodes[0][1]).split(" ", 1))
    if len(names) == 3 and names[2] == "STACK_GLOBAL" and all(name.endswith("UNICODE") for name in names[:2]):
        return f"{opcodes[0][1]}:{opcodes[1][1]}"
    return None


def check_model_file(path: str | os.PathLike[str] | io.BufferedIOBase, algorithm_name: str) -> ModelFile:
    """
    Check that a model file has what SB3's ``load`` reads, without deserializing anything: a zip whose
    members are intact (CRC-32), with the weights (``policy.pth``) and a ``data`` member of JSON
    holding the policy class and the spaces. Raises ``MissingCheckpointFileError`` for a missing file
    and ``CheckpointError`` for a truncated, corrupted or foreign one, both naming the file. What SB3's
    ``load`` then says of its other arguments (an env with other spaces, a ``policy_kwargs``) stays
    SB3's own error, as for the class a drop-in replaces.

    :param path: the model file as given to ``load`` (a path, with or without ``.zip``, or an open file)
    :param algorithm_name: the class that loads it, for the message
    :return: the file, and the policy class it names
    """
    file = _existing_file(path)
    stream = path if isinstance(path, io.BufferedIOBase) else None
    position = stream.tell() if stream is not None else 0
    try:
        with zipfile.ZipFile(stream or file) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                problem = f"its member {damaged} is damaged (a CRC-32 or header check of the zip failed)"
                raise _unloadable(file, algorithm_name, problem)
            missing = [name for name in NEEDED_MEMBERS if name not in archive.namelist()]
            data = json.loads(archive.read("data")) if "data" in archive.namelist() else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise _unloadable(file, algorithm_name, f"not an intact zip file, truncated or of another kind ({error})") from error
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise _unloadable(file, algorithm_name, f"its data member is not SB3's JSON ({error})") from error
    finally:
        if stream is not None:
            stream.seek(position)  # load() reads the open file again
    if missing:
        problem = f"no {' or '.join(missing)} in the zip (truncated, or a zip that SB3 did not save)"
        raise _unloadable(file, algorithm_name, problem)
    absent = [name for name in NEEDED_ENTRIES if not isinstance(data, dict) or name not in data]
    if absent:
        raise _unloadable(file, algorithm_name, f"its data member lacks {', '.join(absent)} (a zip that SB3 did not save)")
    assert isinstance(data, dict)
    return ModelFile(file, pickled_global(data["policy_class"]))


def import_named(name: str) -> Any:
    """The object named ``module:qualname``, imported as unpickling it would; ``None`` if it cannot be."""
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # any error of an import: SB3's load then reports it, naming the file
        return None
    return found


def check_policy_class(file: ModelFile, loader: type[BaseAlgorithm], algorithms: Sequence[type[BaseAlgorithm]]) -> None:
    """
    Raise ``CheckpointError`` naming the file when it holds a model of another algorithm than
    ``loader``, saying which one and which ``load`` reads it. Algorithms are told apart by the policy
    classes they train (their ``policy_aliases``); a policy class that cannot be read or imported is
    left to SB3's ``load``.

    :param file: the checked model file
    :param loader: the class whose ``load`` was called
    :param algorithms: the algorithms to suggest instead, the most specific first
    """
    if file.policy_class is None:
        return
    policy = import_named(file.policy_class)
    if not isinstance(policy, type):
        return

    # A policy that only one learner can train (Rainbow's) names it; SB3's algorithm it subclasses cannot
    only_by = getattr(policy, "trained_only_by", None)

    def reads(algorithm: type[BaseAlgorithm]) -> bool:
        trains = only_by is None or algorithm.__name__ == only_by
        return trains and issubclass(policy, tuple(algorithm.policy_aliases.values()))

    if reads(loader):
        return
    readers = list(dict.fromkeys(algorithm.__name__ for algorithm in algorithms if reads(algorithm)))
    saved_policy = file.policy_class.replace(":", ".")
    if not readers:
        raise CheckpointError(
            file.path,
            f"its policy is {saved_policy}, which {loader.__name__} does not train: a model of another algorithm",
        )
    raise CheckpointError(
        file.path,
        f"a {readers[0]} model (its policy is {saved_policy}), not a {loader.__name__} one: "
        f"load it with {' or '.join(f'{reader}.load' for reader in readers)}",
    )


def _raised_reading_the_file(error: BaseException) -> bool:
    """Whether ``error`` came from SB3 reading a model file (rather than from the other arguments of ``load``)."""
    return any(frame.f_code is load_from_zip_file.__code__ for frame, _ in traceback.walk_tb(error.__traceback__))


@contextmanager
def model_file_errors(
    path: str | os.PathLike[str] | io.BufferedIOBase, algorithm_name: str, reading_only: bool = False
) -> Iterator[None]:
    """
    Run the loading of a model file, turning a missing file into ``MissingCheckpointFileError`` and
    anything that fails while loading it (truncated, corrupted, foreign, saved by another algorithm)
    into ``CheckpointError``, both naming the file:

        with model_file_errors(path, "DuelingDQN"):
            model = DuelingDQN.load(path, ...)

    A ``CheckpointError`` raised inside goes through as it is.

    :param path: the model file as given to ``load`` (a path, with or without ``.zip``, or an open file)
    :param algorithm_name: the class that loads it, for the message
    :param reading_only: turn only what fails while SB3 reads the file (unpickling its entries, reading
        its weights) into ``CheckpointError``; what SB3 says of ``load``'s other arguments stays SB3's error
    """
    file = _existing_file(path)
    try:
        yield
    except CheckpointError:
        raise
    except Exception as error:
        if reading_only and not _raised_reading_the_file(error):
            raise
        raise _unloadable(file, algorithm_name, f"{type(error).__name__}: {error}") from error
