"""Tabular inputs: CSV, JSON Lines and Parquet files of articles or events.

The format follows the file name: ``.csv``, ``.jsonl`` / ``.ndjson``,
``.parquet``, each optionally compressed (``.gz``, ``.bz2``, ``.zst``, ``.xz``
for the text formats). Every value is read as text (an id such as ``007``
stays ``007``) and validated by :mod:`recommender.schema`.

A file that cannot be used at all (missing, unreadable, no header, a
required column absent) raises :class:`~recommender.errors.SchemaError`
naming the file: a run must not publish lists that silently lack a whole
source. Single bad rows are rejected and reported, and the rest go on.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import IO

import pandas as pd

from recommender.errors import SchemaError
from recommender.schema import (
    ARTICLE_REQUIRED,
    LoadResult,
    empty_articles,
    empty_events,
    empty_problems,
    validate_articles,
    validate_events,
)

_COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _format_of(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in (*_COMPRESSIONS, ".zst"):
        compression = suffixes.pop()
    kind = suffixes[-1] if suffixes else ""
    if kind in (".csv", ".tsv"):
        return kind[1:], compression
    if kind in (".jsonl", ".ndjson", ".json"):
        return "jsonl", compression
    if kind == ".parquet":
        return "parquet", compression
    raise SchemaError(
        f"{path}: unknown file type {''.join(path.suffixes) or '(none)'}; "
        "expected .csv, .tsv, .jsonl, .ndjson or .parquet (optionally .gz/.bz2/.xz)"
    )


def _open_text(path: Path, compression: str | None) -> IO[str]:
    if compression == ".zst":
        raise SchemaError(f"{path}: zstd-compressed JSON Lines are not supported; use .gz")
    opener = _COMPRESSIONS.get(compression or "")
    if opener is not None:
        return io.TextIOWrapper(opener(path, "rb"), encoding="utf-8")  # type: ignore[operator]
    return path.open("r", encoding="utf-8")


def _read_jsonl(path: Path, compression: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records plus a frame of lines that are not JSON objects (line, reason)."""
    records: list[dict[str, object]] = []
    rows: list[int] = []
    bad: list[tuple[int, str]] = []
    with _open_text(path, compression) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                bad.append((number, f"invalid JSON: {error.msg} at column {error.colno}"))
                continue
            if not isinstance(record, dict):
                bad.append((number, "invalid JSON: expected an object per line"))
                continue
            records.append(record)
            rows.append(number)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame["_row"] = rows
    return frame, pd.DataFrame(bad, columns=["row", "reason"])


def read_raw(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one file into a raw frame (text values, ``_file`` and ``_row``).

    Returns the frame and the records that could not be parsed at all (JSON
    Lines only; columns ``row``, ``reason``). ``_row`` is the line number for
    JSON Lines and the 1-based record number (header excluded) otherwise.
    """
    path = Path(path)
    kind, compression = _format_of(path)
    unparsed = pd.DataFrame(columns=["row", "reason"])
    try:
        if kind in ("csv", "tsv"):
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                sep="\t" if kind == "tsv" else ",",
                compression="infer",
                encoding="utf-8",
            )
            frame["_row"] = range(1, len(frame) + 1)
        elif kind == "jsonl":
            frame, unparsed = _read_jsonl(path, compression)
        else:
            frame = pd.read_parquet(path)
            frame["_row"] = range(1, len(frame) + 1)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise SchemaError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: empty file (no header row)") from None
    except (pd.errors.ParserError, OSError, ValueError) as error:
        raise SchemaError(f"{path}: cannot read as {kind}: {error}") from None
    frame["_file"] = str(path)
    return frame, unparsed


def _unparsed_problems(path: Path, unparsed: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": str(path),
            "row": unparsed["row"].astype("int64"),
            "field": "(record)",
            "value": "",
            "reason": unparsed["reason"],
            "action": "rejected",
        }
    )


def _require_columns(path: Path, frame: pd.DataFrame, required: Sequence[str]) -> None:
    found = [c for c in frame.columns if not c.startswith("_")]
    if not found:
        return  # no records and no header (an empty JSON Lines file)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(found) or 'none'})"
        )


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Paths in order, each glob pattern (``*``, ``?``, ``[``) replaced by its
    matches in sorted order. A pattern may match nothing (an empty spool
    folder); a plain path must exist, which reading checks."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    expanded: list[Path] = []
    for path in map(Path, paths):
        if any(ch in str(path) for ch in "*?["):
            anchor = Path(path.anchor) if path.is_absolute() else Path()
            pattern = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
            expanded.extend(sorted(anchor.glob(pattern)))
        else:
            expanded.append(path)
    return expanded


def _load(
    paths: str | Path | Iterable[str | Path],
    validate: Callable[..., LoadResult],
    required: Sequence[str],
    empty: pd.DataFrame,
) -> LoadResult:
    frames, unparsed_problems = [], []
    for path in expand_paths(paths):
        raw, unparsed = read_raw(path)
        _require_columns(path, raw, required)
        frames.append(raw)
        if len(unparsed):
            unparsed_problems.append(_unparsed_problems(path, unparsed))
    if not frames:
        return LoadResult(empty, empty_problems(), 0)
    # One validation over all files, so that ids are unique across them too.
    result = validate(pd.concat(frames, ignore_index=True))
    if unparsed_problems:
        result.problems = pd.concat([*unparsed_problems, result.problems], ignore_index=True)
        result.n_read += sum(len(p) for p in unparsed_problems)
    return result


def read_articles(
    paths: str | Path | Iterable[str | Path], *, sites: Collection[str] | None = None
) -> LoadResult:
    """Load and validate article files; ids must be unique across all of them."""
    return _load(
        paths, lambda raw: validate_articles(raw, sites=sites), ARTICLE_REQUIRED, empty_articles()
    )


def read_events(paths: str | Path | Iterable[str | Path]) -> LoadResult:
    """Load and validate event files (pageviews, impressions, clicks)."""
    return _load(paths, validate_events, ("ts",), empty_events())
