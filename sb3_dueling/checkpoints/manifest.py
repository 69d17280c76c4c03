"""
The manifest of a checkpoint folder: ``manifest.json`` names its complete checkpoints, oldest first,
with the size and SHA-256 of each of their files, so that a damaged one is found before it is used.

Each checkpoint also holds the same list of its own files (``files.json``), so that it can be verified
without the manifest: a manifest lost in a partial copy or sync loses no checkpoint. Checkpoints of
sb3_dueling before ``files.json`` are verified by the manifest only.
"""

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

from sb3_dueling.checkpoints.atomic_files import write_json_atomically
from sb3_dueling.checkpoints.errors import CheckpointError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = "files.json"
PREFIX = "step_"
#: The name of a checkpoint folder, whole (a name the manifest gives is one of these, never a path)
CHECKPOINT_NAME = rf"{PREFIX}\d+"


class UnreadableManifestError(CheckpointError):
    """A manifest that cannot be parsed (truncated, corrupted, not a manifest): what it names is unknown."""


class UnverifiableCheckpointError(CheckpointError):
    """A checkpoint that no manifest names and that holds no list of its files: not damaged, not verifiable."""


def file_digest(path: Path) -> dict[str, Any]:
    """The size and SHA-256 of a file, as the manifest records them."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _read_listing(path: Path, key: str, what: str) -> Any:
    """The ``key`` list of a manifest or a ``files.json`` (``what`` it is, for the message) of this format."""
    try:
        content = json.loads(path.read_text())
        listed, version = content[key], content["format"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UnreadableManifestError(path, f"not a valid {what} ({type(error).__name__}: {error})") from error
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"written in checkpoint format {version}; this sb3_dueling reads format {FORMAT_VERSION}")
    return listed


def read_manifest(folder: Path | str) -> list[dict[str, Any]]:
    """
    The checkpoints the manifest names, oldest first (none if there is no manifest yet).

    Raises ``UnreadableManifestError`` (a ``CheckpointError``) for a manifest that cannot be read, and
    ``CheckpointError`` for one of another format.
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    try:
        entries = _read_listing(path, "checkpoints", "checkpoint manifest")
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict)
            and re.fullmatch(CHECKPOINT_NAME, str(entry.get("name")))
            and isinstance(entry.get("timesteps"), int)
            and isinstance(entry.get("files"), dict)
            for entry in entries
        ):
            raise UnreadableManifestError(path, "not a valid checkpoint manifest (an entry is not a step_* checkpoint)")
    except UnreadableManifestError as error:
        # Saving would not know which checkpoints it may prune: it refuses until a person decides
        raise UnreadableManifestError(
            path, f"{error.problem}; no checkpoint is saved into {path.parent} until it is moved aside"
        ) from error.__cause__
    return entries


def write_manifest(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Make ``entries`` the checkpoints the manifest of ``folder`` names (atomically)."""
    write_json_atomically({"format": FORMAT_VERSION, "checkpoints": entries}, folder / MANIFEST)


def write_file_list(checkpoint: Path, files: dict[str, dict[str, Any]]) -> None:
    """Write the list of a checkpoint's files (``files.json``) into it, to verify it without the manifest."""
    write_json_atomically({"format": FORMAT_VERSION, "files": files}, checkpoint / FILES)


def verify_checkpoint(checkpoint: Path, entry: dict[str, Any] | None = None) -> Path:
    """
    Check that every file of a checkpoint is there, whole and unchanged; return its folder.

    :param checkpoint: a ``step_*`` folder
    :param entry: the manifest's entry for it; without one, the checkpoint's own ``files.json``
    """
    if entry is not None:
        expected = entry["files"]
    elif (checkpoint / FILES).exists():
        expected = _read_listing(checkpoint / FILES, "files", "checkpoint file list")
    else:
        raise UnverifiableCheckpointError(
            checkpoint, f"cannot be verified: no {MANIFEST} names it and it holds no {FILES} (an older sb3_dueling's)"
        )
    for name, digest in expected.items():
        path = checkpoint / name
        if not path.exists():
            raise CheckpointError(path, "missing")
        found = file_digest(path)
        if found["size"] != digest["size"]:
            raise CheckpointError(path, f"truncated or extended: {found['size']} bytes, {digest['size']} expected")
        if found["sha256"] != digest["sha256"]:
            raise CheckpointError(path, f"corrupted: its SHA-256 differs from the one in {'the manifest' if entry else FILES}")
    return checkpoint


def _readable_entries(folder: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The manifest's entries, and why there are none if it is missing or unreadable (else ``None``)."""
    if not (folder / MANIFEST).exists():
        return [], f"{folder} holds no {MANIFEST}"
    try:
        return read_manifest(folder), None
    except UnreadableManifestError as error:
        return [], str(error)


def manifest_entry(checkpoint: Path) -> dict[str, Any] | None:
    """The entry of the manifest beside ``checkpoint`` that names it, if that manifest can be read."""
    entries, _ = _readable_entries(checkpoint.parent)
    return next((entry for entry in entries if entry["name"] == checkpoint.name), None)


def find_latest_checkpoint(folder: Path | str) -> Path | None:
    """
    The newest intact checkpoint in ``folder``, of all its ``step_*`` folders: those the manifest names
    are verified against it, the others (the manifest is missing or unreadable, or a crash came before
    it named them) against their own ``files.json``.

    Each checkpoint skipped, and a missing or unreadable manifest, gets a warning that names what is
    wrong. ``None`` if there is no checkpoint yet; ``CheckpointError`` if there are some but none is intact.
    """
    folder = Path(folder)
    entries, manifest_problem = _readable_entries(folder)
    named = {entry["name"]: entry for entry in entries}
    found = {path.name for path in folder.iterdir() if re.fullmatch(CHECKPOINT_NAME, path.name)} if folder.is_dir() else set()
    if manifest_problem is not None and found:
        warnings.warn(f"{manifest_problem}: each checkpoint is verified by its own {FILES}", stacklevel=2)
    problems = []
    for name in sorted(named.keys() | found, key=lambda name: int(name.removeprefix(PREFIX)), reverse=True):
        try:
            return verify_checkpoint(folder / name, named.get(name))
        except CheckpointError as error:
            problems.append(str(error))
            kind = "an unverifiable" if isinstance(error, UnverifiableCheckpointError) else "a damaged"
            warnings.warn(f"skipping {kind} checkpoint: {error}", stacklevel=2)
    if problems:
        raise CheckpointError(folder, "no intact checkpoint: " + "; ".join(problems))
    return None
