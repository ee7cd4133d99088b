"""One-file, versioned model artifacts.

Layout: a magic line, one line of JSON metadata (format version, library
versions, payload size and SHA-256, provenance), then a joblib payload.
Loading checks the magic, the format version, the library versions and the
checksum *before* unpickling, so a truncated, damaged or foreign file fails
with a message naming the file instead of an obscure unpickling error.

Unpickling runs code: never load an artifact from a source you do not trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import joblib
import sklearn

from recommender import __version__
from recommender.errors import ArtifactError

MAGIC = b"RECOMMENDER-MODEL\n"
FORMAT_VERSION = 1


def _library_versions() -> dict[str, str]:
    import numpy
    import pandas
    import scipy

    return {
        "recommender": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
    }


def save_artifact(payload: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``payload`` with its metadata to ``path`` atomically (temp file +
    rename: a crash never leaves a half-written artifact under that name)."""
    path = Path(path)
    buffer = io.BytesIO()
    joblib.dump(payload, buffer, compress=3)
    body = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "payload_bytes": len(body),
        "payload_sha256": hashlib.sha256(body).hexdigest(),
        "metadata": metadata or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC)
            handle.write(json.dumps(header, sort_keys=True).encode() + b"\n")
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """The artifact's metadata line, without loading the payload."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(MAGIC))
            line = handle.readline(1 << 20)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: model file not found") from None
    if magic != MAGIC:
        raise ArtifactError(f"{path}: not a recommender model file (wrong magic bytes)")
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        raise ArtifactError(f"{path}: damaged model file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}: damaged model file (unreadable header)")
    return header


def load_artifact(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Return (payload, header); raise :class:`ArtifactError` on any mismatch."""
    path = Path(path)
    header = read_header(path)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model file format {version} but this recommender "
            f"({__version__}) reads format {FORMAT_VERSION}; refit with `recommender run`"
        )
    written = header.get("versions", {})
    here = _library_versions()
    for library in ("recommender", "scikit-learn"):
        if written.get(library) != here[library]:
            raise ArtifactError(
                f"{path}: written with {library} {written.get(library)}, "
                f"this is {library} {here[library]}; refit with `recommender run`"
            )
    with path.open("rb") as handle:
        handle.read(len(MAGIC))
        handle.readline(1 << 20)
        body = handle.read()
    if len(body) != header.get("payload_bytes"):
        raise ArtifactError(
            f"{path}: truncated model file ({len(body)} of {header.get('payload_bytes')} "
            "payload bytes)"
        )
    if hashlib.sha256(body).hexdigest() != header.get("payload_sha256"):
        raise ArtifactError(f"{path}: damaged model file (checksum mismatch)")
    try:
        payload = joblib.load(io.BytesIO(body))
    except Exception as error:  # checksum matched, so the writer itself was broken
        raise ArtifactError(f"{path}: cannot load model payload: {error}") from None
    return payload, header
