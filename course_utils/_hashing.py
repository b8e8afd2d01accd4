"""sha256 of files: the integrity check shared by the model builder, the loader and the grader."""

from __future__ import annotations

import hashlib
from pathlib import Path

from course_utils.errors import ModelIntegrityError

__all__ = ["sha256_file", "verify_sha256"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so a 90 MB model never sits in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ModelIntegrityError unless `path` exists and hashes to `expected`."""
    if not path.is_file():
        raise ModelIntegrityError(
            f"Model file {str(path)!r} is missing. Rebuild the model folder with `make model`."
        )
    actual = sha256_file(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"sha256 of {str(path)!r} is {actual}, expected {expected}: the file is corrupted or was "
            "replaced, so it is not loaded. Reinstall it (`make model` rebuilds the exported folder)."
        )
