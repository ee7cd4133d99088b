"""One-file, versioned model artifacts whose loading runs no code.

Layout: a magic line, one line of JSON metadata (format version, library
versions, payload size and SHA-256, provenance), then the payload: an
uncompressed ``.npz`` (zip) archive holding ``state.json`` (the fitted
state's scalars, names and parameters, as JSON) and one ``.npy`` member per
array. Loading checks the magic, the format version, the library versions,
the size and the checksum before it reads the payload, so that a truncated,
damaged or foreign file fails with a message naming the file.

Nothing in the file names a type to build. The only decoders are
:func:`json.loads` and NumPy's ``.npy`` reader with ``allow_pickle=False``
(which refuses object arrays, i.e. pickles); the caller reads known fields
into known classes (see :meth:`recommender.model.Recommender.load`). A file
of the first format (a joblib pickle) is refused by its format version
before anything of its payload is read.

:class:`ArtifactWriter` and :class:`ArtifactReader` encode what a fitted
model holds besides plain arrays: CSR matrices (``data``, ``indices``,
``indptr``), string arrays (UTF-8 bytes and offsets, as Arrow lays them
out) and data frames (column by column, each dtype from a short list).

Writing is atomic: the file is written next to its target under a temporary
name (``.NAME.pending-PID-XXXX.tmp``), fsynced, then renamed over the target
(:class:`PendingArtifact` lets the batch publish between the two).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
import sklearn

from recommender import __version__
from recommender.errors import ArtifactError

MAGIC = b"RECOMMENDER-MODEL\n"
#: 1: a joblib pickle (refused: unpickling runs code). 2: npz + JSON.
FORMAT_VERSION = 2
STATE_MEMBER = "state.json"
_HEADER_LIMIT = 1 << 20
_CHUNK = 1 << 22
#: Array dtypes a payload may hold: booleans, integers, floats, datetimes.
_ARRAY_KINDS = "biufM"
_PENDING = re.compile(r"\.pending-(\d+)-")


def _library_versions() -> dict[str, str]:
    import numpy
    import scipy

    return {
        "recommender": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
    }


# -- writing -----------------------------------------------------------------------


class ArtifactWriter:
    """Collects the arrays of a payload under unique names; each method
    returns what ``state.json`` records to find them again."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, value: Any) -> str:
        array = np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.names is not None:
            raise TypeError(f"{name}: cannot save an array of dtype {array.dtype}")
        if name in self.arrays or name == STATE_MEMBER:
            raise ValueError(f"{name}: saved twice")
        self.arrays[name] = array
        return name

    def csr(self, name: str, matrix: sp.csr_matrix) -> dict[str, Any]:
        if not isinstance(matrix, sp.csr_matrix):
            raise TypeError(f"{name}: expected a CSR matrix, got {type(matrix).__name__}")
        for part in ("data", "indices", "indptr"):
            self.array(f"{name}.{part}", getattr(matrix, part))
        return {"csr": name, "shape": [int(size) for size in matrix.shape]}

    def strings(self, name: str, values: Any) -> dict[str, Any]:
        """Strings (None or NA: missing) as UTF-8 bytes, int64 offsets and,
        when some are missing, a validity mask."""
        array = _string_array(values)
        kind = str(array.type)
        large = array.cast(pa.large_string()) if kind != "large_string" else array
        buffers = large.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[
            large.offset : large.offset + len(large) + 1
        ]
        data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else None
        start, stop = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
        self.array(f"{name}.offsets", offsets - start)
        self.array(f"{name}.data", data[start:stop] if data is not None else np.zeros(0, np.uint8))
        nulls = large.null_count > 0
        if nulls:
            self.array(f"{name}.valid", large.is_valid().to_numpy(zero_copy_only=False))
        return {"strings": name, "type": kind, "nulls": nulls}

    def column(self, name: str, values: pd.Series | pd.Index) -> dict[str, Any]:
        """One frame column or index, by dtype: strings, UTC or naive
        datetimes, NumPy numbers and booleans."""
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype):
            na = "NA" if getattr(dtype, "na_value", pd.NA) is pd.NA else "nan"
            strings = self.strings(name, values)
            return {"kind": "string", "storage": dtype.storage, "na": na, **strings}
        if isinstance(dtype, pd.DatetimeTZDtype):
            if str(dtype.tz) != "UTC":
                raise TypeError(f"{name}: cannot save datetimes in time zone {dtype.tz}")
            naive = pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None)
            self.array(name, naive.to_numpy())
            return {"kind": "datetime", "tz": "UTC"}
        if isinstance(dtype, np.dtype) and dtype.kind in _ARRAY_KINDS:
            self.array(name, values.to_numpy())
            return {"kind": "numpy"}
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            strings = self.strings(name, values.to_numpy())  # refuses all but str and None
            return {"kind": "object-string", **strings}
        raise TypeError(f"{name}: cannot save a column of dtype {dtype}")

    def frame(self, name: str, frame: pd.DataFrame) -> dict[str, Any]:
        if frame.attrs:
            raise TypeError(f"{name}: cannot save frame attrs {sorted(map(str, frame.attrs))}")
        columns = []
        for i, (label, values) in enumerate(frame.items()):
            if not isinstance(label, str):
                raise TypeError(f"{name}: column names must be strings, got {label!r}")
            columns.append({"name": label, **self.column(f"{name}.{i}", values)})
        index = frame.index
        if isinstance(index, pd.RangeIndex):
            described: dict[str, Any] = {
                "kind": "range",
                "start": index.start,
                "stop": index.stop,
                "step": index.step,
            }
        else:
            described = self.column(f"{name}.index", index)
        if index.name is not None and not isinstance(index.name, str):
            raise TypeError(f"{name}: the index name must be a string, got {index.name!r}")
        described["name"] = index.name
        return {"columns": columns, "index": described, "rows": len(frame)}


def _string_array(values: Any) -> pa.Array:
    """``values`` (a pandas string column or index, an array or list of str
    and None) as one Arrow string array."""
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, pd.StringDtype):
        from recommender.columns import as_arrow

        chunked = as_arrow(pd.Series(values.array, copy=False))
        return chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    items = values.tolist() if isinstance(values, np.ndarray | pd.Index | pd.Series) else values
    items = list(items)
    for item in items:
        if item is not None and not isinstance(item, str):
            raise TypeError(f"expected strings (or None), got {type(item).__name__}")
    return pa.array(items, type=pa.string())


@dataclass
class PendingArtifact:
    """An artifact written and fsynced under a temporary name next to its
    target: :meth:`commit` renames it into place (atomic), :meth:`discard`
    removes it."""

    temp: Path
    target: Path

    def commit(self) -> Path:
        os.replace(self.temp, self.target)
        _fsync_directory(self.target.parent)
        return self.target

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


def write_pending(
    state: Mapping[str, Any],
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> PendingArtifact:
    """Write ``state`` (JSON) and ``arrays`` with ``metadata`` to a
    temporary file beside ``path``, fsynced; nothing is at ``path`` yet.
    On any failure (a full disk) the temporary file is removed."""
    path = Path(path)
    arrays = dict(arrays or {})
    state_bytes = json.dumps(state, sort_keys=True, allow_nan=True).encode()
    base: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "metadata": dict(metadata or {}),
    }
    # The header is written last, into room reserved for its longest form.
    room = len(_header_line({**base, "payload_bytes": 10**18, "payload_sha256": "0" * 64}))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.pending-{os.getpid()}-", suffix=".tmp"
    )
    temp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            handle.write(MAGIC)
            handle.write(b" " * (room - 1) + b"\n")
            start = handle.tell()
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(STATE_MEMBER, state_bytes)
                for member, array in arrays.items():
                    with archive.open(f"{member}.npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, array, allow_pickle=False)
            end = handle.tell()
            handle.flush()
            digest = _sha256(handle, start, end - start)
            line = _header_line({**base, "payload_bytes": end - start, "payload_sha256": digest})
            handle.seek(len(MAGIC))
            handle.write(line[:-1].ljust(room - 1) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return PendingArtifact(temp, path)


def save_artifact(
    state: Mapping[str, Any],
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write the artifact to ``path`` atomically (a crash never leaves a
    half-written file under that name)."""
    pending = write_pending(state, path, metadata, arrays)
    try:
        return pending.commit()
    except BaseException:
        pending.discard()
        raise


def pending_files(path: str | Path) -> list[tuple[Path, int | None]]:
    """Temporary files of unfinished saves to ``path`` (a crash or a kill
    between writing and renaming), with the id of the process that wrote
    each (None when the name does not tell)."""
    path = Path(path)
    found = []
    for temp in sorted(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp")):
        match = _PENDING.search(temp.name[len(path.name) + 1 :])
        found.append((temp, int(match.group(1)) if match else None))
    return found


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _header_line(header: Mapping[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True).encode() + b"\n"


def _sha256(handle: IO[bytes], start: int, size: int) -> str:
    handle.seek(start)
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading -----------------------------------------------------------------------


def read_header(path: str | Path) -> dict[str, Any]:
    """The artifact's metadata line, without reading the payload."""
    return _read_header(Path(path))[0]


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The header, and where the payload starts."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(MAGIC))
            line = handle.readline(_HEADER_LIMIT)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: model file not found") from None
    except OSError as error:
        raise ArtifactError(f"{path}: cannot read model file: {error.strerror}") from None
    if magic != MAGIC:
        raise ArtifactError(f"{path}: not a recommender model file (wrong magic bytes)")
    if not line.endswith(b"\n"):
        raise ArtifactError(f"{path}: damaged or truncated model file (unreadable header)")
    try:
        header = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactError(f"{path}: damaged model file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}: damaged model file (unreadable header)")
    return header, len(MAGIC) + len(line)


def check_header(path: str | Path, header: Mapping[str, Any]) -> None:
    """Refuse a file of another format or written by other library versions."""
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model file format {version} but this recommender "
            f"({__version__}) reads format {FORMAT_VERSION}; refit with `recommender run`"
        )
    written = header.get("versions")
    written = written if isinstance(written, dict) else {}
    here = _library_versions()
    for library in ("recommender", "scikit-learn"):
        if written.get(library) != here[library]:
            raise ArtifactError(
                f"{path}: written with {library} {written.get(library)}, "
                f"this is {library} {here[library]}; refit with `recommender run`"
            )


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a whole artifact of this format (header read,
    payload of the size it declares; the checksum is checked on load)."""
    try:
        header, start = _read_header(Path(path))
        check_header(path, header)
        return Path(path).stat().st_size - start == header.get("payload_bytes")
    except (ArtifactError, OSError):
        return False


@contextlib.contextmanager
def open_artifact(path: str | Path) -> Iterator[ArtifactReader]:
    """The payload of the artifact at ``path``, checked (format, versions,
    size, checksum) before anything of it is decoded; raise
    :class:`ArtifactError` on any mismatch. Arrays are read as they are
    asked for, while the context is open."""
    path = Path(path)
    header, start = _read_header(path)
    check_header(path, header)
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size - start
        expected = header.get("payload_bytes")
        if not isinstance(expected, int) or size < expected:
            raise ArtifactError(
                f"{path}: truncated model file ({size} of {expected} payload bytes)"
            )
        if size > expected:
            raise ArtifactError(
                f"{path}: damaged model file ({size - expected} bytes past its payload)"
            )
        if _sha256(handle, start, size) != header.get("payload_sha256"):
            raise ArtifactError(f"{path}: damaged model file (checksum mismatch)")
        handle.seek(start)
        try:
            archive = np.load(handle, allow_pickle=False)
        except Exception as error:  # e.g. a pickle: refused, never loaded
            raise ArtifactError(f"{path}: cannot read model payload: {error}") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ArtifactError(f"{path}: cannot read model payload: not an npz archive")
        with archive:
            reader = ArtifactReader(path, header, archive)
            yield reader


def load_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (state, header): the JSON state only (see :func:`open_artifact`)."""
    with open_artifact(path) as reader:
        return reader.state, reader.header


class ArtifactReader:
    """The checked payload of one artifact: ``state`` (the JSON), ``header``,
    and the arrays, read by name into the dtypes and shapes the caller
    expects (:class:`ArtifactError` naming the file otherwise)."""

    def __init__(self, path: Path, header: dict[str, Any], archive: Any) -> None:
        self.path = path
        self.header = header
        self._archive = archive
        try:
            raw = archive[STATE_MEMBER]
        except Exception as error:
            raise self.error(f"no {STATE_MEMBER} ({error})") from None
        if not isinstance(raw, bytes):
            raise self.error(f"{STATE_MEMBER} is not JSON")
        try:
            state = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise self.error(f"{STATE_MEMBER} is not JSON ({error})") from None
        if not isinstance(state, dict):
            raise self.error(f"{STATE_MEMBER} is not a JSON object")
        self.state: dict[str, Any] = state

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.header.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    def error(self, message: str) -> ArtifactError:
        return ArtifactError(f"{self.path}: damaged model file ({message})")

    def array(
        self,
        name: Any,
        *,
        kinds: str = _ARRAY_KINDS,
        ndim: int | None = None,
        length: int | None = None,
    ) -> np.ndarray:
        if not isinstance(name, str):
            raise self.error(f"an array name must be a string, got {name!r}")
        try:
            value = self._archive[name]
        except KeyError:
            raise self.error(f"array {name!r} missing") from None
        except Exception as error:  # an object array (a pickle) is refused here
            raise self.error(f"array {name!r} unreadable: {error}") from None
        if not isinstance(value, np.ndarray) or value.dtype.names is not None:
            raise self.error(f"{name!r} is not a plain array")
        if value.dtype.kind not in kinds:
            raise self.error(f"array {name!r} has dtype {value.dtype}")
        if ndim is not None and value.ndim != ndim:
            raise self.error(f"array {name!r} has {value.ndim} dimensions, not {ndim}")
        if length is not None and len(value) != length:
            raise self.error(f"array {name!r} has {len(value)} rows, not {length}")
        return value

    def csr(self, ref: Any, *, rows: int | None = None) -> sp.csr_matrix:
        if not isinstance(ref, dict) or not isinstance(ref.get("csr"), str):
            raise self.error(f"expected a sparse matrix, got {ref!r}")
        name, shape = ref["csr"], ref.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(n, int) and n >= 0 for n in shape)
        ):
            raise self.error(f"matrix {name!r} has no valid shape")
        data = self.array(f"{name}.data", kinds="f", ndim=1)
        indices = self.array(f"{name}.indices", kinds="i", ndim=1, length=len(data))
        indptr = self.array(f"{name}.indptr", kinds="i", ndim=1, length=shape[0] + 1)
        if indptr[0] != 0 or indptr[-1] != len(data) or (np.diff(indptr) < 0).any():
            raise self.error(f"matrix {name!r} has invalid row pointers")
        if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
            raise self.error(f"matrix {name!r} has column indices out of range")
        if rows is not None and shape[0] != rows:
            raise self.error(f"matrix {name!r} has {shape[0]} rows, not {rows}")
        matrix = sp.csr_matrix((data, indices, indptr), shape=tuple(shape), copy=False)
        matrix.indices, matrix.indptr = indices, indptr  # the index dtypes as saved
        return matrix

    def strings(self, ref: Any) -> pa.Array:
        """An Arrow string array (of the type saved), fully validated."""
        if not isinstance(ref, dict) or not isinstance(ref.get("strings"), str):
            raise self.error(f"expected strings, got {ref!r}")
        name, kind = ref["strings"], ref.get("type")
        if kind not in ("string", "large_string", "string_view"):
            raise self.error(f"strings {name!r} of unknown type {kind!r}")
        offsets = self.array(f"{name}.offsets", kinds="i", ndim=1).astype(np.int64, copy=False)
        data = self.array(f"{name}.data", kinds="u", ndim=1)
        n = len(offsets) - 1
        if n < 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
            raise self.error(f"strings {name!r} have invalid offsets")
        bitmap = None
        if ref.get("nulls"):
            valid = self.array(f"{name}.valid", kinds="b", ndim=1, length=n)
            bitmap = pa.array(valid, type=pa.bool_()).buffers()[1]
        try:
            array = pa.LargeStringArray.from_buffers(
                n, pa.py_buffer(offsets), pa.py_buffer(data.view(np.uint8)), bitmap
            )
            array.validate(full=True)  # offsets within the data, UTF-8
            return array if kind == "large_string" else array.cast(pa.type_for_alias(kind))
        except (pa.ArrowException, ValueError) as error:
            raise self.error(f"strings {name!r} invalid: {error}") from None

    def string_list(self, ref: Any) -> np.ndarray:
        """Strings as a NumPy object array of str (None where missing)."""
        return np.asarray(self.strings(ref).to_numpy(zero_copy_only=False), dtype=object)

    def column(self, name: str, entry: Any, length: int) -> Any:
        """One column or index as saved by :meth:`ArtifactWriter.column`: an
        array-like of the saved dtype."""
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind == "string":
            dtype = _string_dtype(entry.get("storage"), entry.get("na"))
            if dtype is None:
                raise self.error(f"{name}: unknown string dtype {entry!r}")
            values = self.strings(entry)
            if len(values) != length:
                raise self.error(f"{name} has {len(values)} rows, not {length}")
            return cast(Any, dtype).__from_arrow__(pa.chunked_array([values], type=values.type))
        if kind == "datetime":
            if entry.get("tz") not in ("UTC", None):
                raise self.error(f"{name}: unknown time zone {entry.get('tz')!r}")
            naive = self.array(name, kinds="M", ndim=1, length=length)
            stamps = pd.DatetimeIndex(naive)
            return (stamps.tz_localize("UTC") if entry.get("tz") else stamps).array
        if kind == "numpy":
            return self.array(name, kinds="biuf", ndim=1, length=length)
        if kind == "object-string":
            values = self.string_list(entry)
            if len(values) != length:
                raise self.error(f"{name} has {len(values)} rows, not {length}")
            return values
        raise self.error(f"{name}: unknown column kind {kind!r}")

    def frame(self, name: str, ref: Any) -> pd.DataFrame:
        if not isinstance(ref, dict) or not isinstance(ref.get("rows"), int):
            raise self.error(f"{name}: expected a frame, got {ref!r}")
        rows, columns, index = ref["rows"], ref.get("columns"), ref.get("index")
        if not isinstance(columns, list) or not isinstance(index, dict):
            raise self.error(f"{name}: expected a frame, got {ref!r}")
        values: dict[str, Any] = {}
        for i, entry in enumerate(columns):
            label = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(label, str) or label in values:
                raise self.error(f"{name}: column {i} has no valid name")
            values[label] = self.column(f"{name}.{i}", entry, rows)
        index_name = index.get("name")
        if index_name is not None and not isinstance(index_name, str):
            raise self.error(f"{name}: invalid index name")
        if index.get("kind") == "range":
            start, stop, step = (index.get(key) for key in ("start", "stop", "step"))
            if not all(isinstance(b, int) for b in (start, stop, step)) or step == 0:
                raise self.error(f"{name}: invalid range index")
            labels: pd.Index = pd.RangeIndex(start=start, stop=stop, step=step, name=index_name)
            if len(labels) != rows:
                raise self.error(f"{name}: index of {len(labels)} rows, not {rows}")
        else:
            labels = pd.Index(
                self.column(f"{name}.index", index, rows),
                name=index_name,
                dtype=object if index.get("kind") == "object-string" else None,
            )
        kinds = {entry["name"]: entry.get("kind") for entry in columns}
        return pd.DataFrame(
            {
                label: pd.Series(
                    array,
                    index=labels,
                    dtype=object if kinds[label] == "object-string" else None,
                    copy=False,
                )
                for label, array in values.items()
            },
            index=labels,
            columns=list(values),
            copy=False,
        )


def _string_dtype(storage: Any, na: Any) -> pd.StringDtype | None:
    """A pandas string dtype from the short list of those there are."""
    if storage not in ("python", "pyarrow", "pyarrow_numpy") or na not in ("NA", "nan"):
        return None
    if na == "NA":
        return pd.StringDtype(storage)
    if storage == "pyarrow_numpy":  # pandas 2.1-2.2: the NaN-missing Arrow strings
        return pd.StringDtype(storage)
    return pd.StringDtype(storage, na_value=np.nan)


__all__ = [
    "ArtifactReader",
    "ArtifactWriter",
    "PendingArtifact",
    "check_header",
    "is_complete",
    "load_artifact",
    "open_artifact",
    "pending_files",
    "read_header",
    "save_artifact",
    "write_pending",
]
