"""
The manifest of a checkpoint folder: ``manifest.json`` names its complete checkpoints, oldest first,
with the size and SHA-256 of each of their files, so that a damaged one is found before it is used.
"""

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from sb3_dueling.checkpoints.atomic_files import write_json_atomically
from sb3_dueling.checkpoints.errors import CheckpointError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREFIX = "step_"


def file_digest(path: Path) -> dict[str, Any]:
    """The size and SHA-256 of a file, as the manifest records them."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def read_manifest(folder: Path | str) -> list[dict[str, Any]]:
    """The checkpoints the manifest names, oldest first (none if there is no manifest yet)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["checkpoints"]
        version = manifest["format"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(path, f"not a valid checkpoint manifest ({error})") from error
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"written in checkpoint format {version}; this sb3_dueling reads format {FORMAT_VERSION}")
    return entries


def write_manifest(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Make ``entries`` the checkpoints the manifest of ``folder`` names (atomically)."""
    write_json_atomically({"format": FORMAT_VERSION, "checkpoints": entries}, folder / MANIFEST)


def verify_checkpoint(folder: Path, entry: dict[str, Any]) -> Path:
    """Check that every file of a manifest entry is there, whole and unchanged; return its folder."""
    checkpoint = Path(folder) / entry["name"]
    for name, expected in entry["files"].items():
        path = checkpoint / name
        if not path.exists():
            raise CheckpointError(path, "missing")
        found = file_digest(path)
        if found["size"] != expected["size"]:
            raise CheckpointError(path, f"truncated or extended: {found['size']} bytes, {expected['size']} expected")
        if found["sha256"] != expected["sha256"]:
            raise CheckpointError(path, "corrupted: its SHA-256 differs from the manifest's")
    return checkpoint


def find_latest_checkpoint(folder: Path | str) -> Path | None:
    """
    The newest complete checkpoint in ``folder`` (every file verified against the manifest).

    A damaged newer checkpoint is skipped with a warning that names the file; ``None`` if there is none
    yet. Raises ``CheckpointError`` when there are checkpoints but none is intact.
    """
    entries = read_manifest(Path(folder))
    problems = []
    for entry in reversed(entries):
        try:
            return verify_checkpoint(Path(folder), entry)
        except CheckpointError as error:
            problems.append(str(error))
            warnings.warn(f"skipping a damaged checkpoint: {error}", stacklevel=2)
    if problems:
        raise CheckpointError(Path(folder) / MANIFEST, "no intact checkpoint: " + "; ".join(problems))
    return None
