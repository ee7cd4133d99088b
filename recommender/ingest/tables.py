"""Tabular inputs: CSV, JSON Lines and Parquet files of articles or events.

The format follows the file name: ``.csv``, ``.tsv``, ``.jsonl`` / ``.ndjson``,
``.parquet``, the text formats optionally compressed (``.gz``, ``.bz2``,
``.xz``, ``.zst``). Every value is read as text (an id such as ``007`` stays
``007``) and validated by :mod:`recommender.schema`.

**Rows** are numbered one way: the physical line where the record starts,
the header being line 1 (a CSV record whose quoted field spans lines is
numbered by its first line; blank lines count). For Parquet, which has no
lines, the 1-based record number.

**Bad rows** are rejected and reported, and the rest go on: a CSV record with
more fields than the header ("expected 10 fields, saw 11"; one with fewer is
padded with empty values, as pandas does), a quote that never closes
(reported at the line where it opened; the lines after it are read again as
records), a JSON line that is not an object or is nested more than
:data:`~recommender.ingest.jsontext.MAX_JSON_DEPTH` levels deep.

**Text** is UTF-8, or what a byte-order mark says (UTF-16, UTF-32). A few bad
bytes in a UTF-8 file become U+FFFD, each reported (``repaired``) by line and
column; a file in another encoding is refused naming the first bad byte's
line and column (see :mod:`recommender.ingest.charsets`).

**Size**: what a file *decodes* to is bounded, so that a few kilobytes that
inflate to gigabytes (a decompression bomb) are refused before they are
inflated: text is decompressed in steps and counted, Parquet is checked
against its metadata, then read row group by row group counting the bytes
its columns decode to (dictionary-encoded columns are counted before they are
expanded; prefix-encoded ones are read in batches that cannot pass the
limit). The limit is ``max_decoded_bytes`` when given (``recommender ingest``
gives its 64 MB document limit); the batch's own default grows with the file:
the larger of :data:`MIN_DECODED_BYTES` and :data:`MAX_EXPANSION` times its
size on disk, since a corpus of a million articles decodes to gigabytes while
real exports decode to at most a few dozen times their size.

A file that cannot be used at all (missing, unreadable, no header, a
required column absent, not text, past the limit) raises
:class:`~recommender.errors.SchemaError` naming the file: a run must not
publish lists that silently lack a whole source.
"""

from __future__ import annotations

import bisect
import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recommender.errors import SchemaError
from recommender.ingest.charsets import Decoded, NotTextError, bom_codec, decode
from recommender.ingest.jsontext import MAX_JSON_DEPTH, too_deep
from recommender.schema import (
    ARTICLE_REQUIRED,
    PROBLEM_COLUMNS,
    LoadResult,
    empty_articles,
    empty_events,
    empty_problems,
    validate_articles,
    validate_events,
)
from recommender.spool import SPOOL_COLUMNS, is_spool_header, unescape_cell

#: The least a table file may decode to, in bytes (ingest's document limit).
MIN_DECODED_BYTES = 64 * 2**20
#: A table file may decode to this many times its size on disk (when more than
#: :data:`MIN_DECODED_BYTES`). Real exports stay far below: about 2x for an
#: article corpus in Parquet, 8x for the sample's gzipped pageviews; gzip
#: cannot pass about 1,000x, a Parquet bomb reaches millions.
MAX_EXPANSION = 100

_COMPRESSIONS: dict[str, Callable[..., Any]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
_STEP = 2**20  # bytes decompressed at a time


class _Found(NamedTuple):
    """A problem a reader found (its file is added later)."""

    row: int
    field: str
    value: str
    reason: str
    action: str = "rejected"


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
    if kind == ".parquet" and compression is None:
        return "parquet", None
    raise SchemaError(
        f"{path}: unknown file type {''.join(path.suffixes) or '(none)'}; "
        "expected .csv, .tsv, .jsonl, .ndjson or .parquet (the text formats optionally "
        ".gz/.bz2/.xz/.zst)"
    )


def decoded_limit(path: Path, max_decoded_bytes: int | None = None) -> int:
    """What ``path`` may decode to: ``max_decoded_bytes``, or the default (see module docs)."""
    if max_decoded_bytes is not None:
        return max_decoded_bytes
    return max(MIN_DECODED_BYTES, MAX_EXPANSION * path.stat().st_size)


def _bomb(path: Path, limit: int, detail: str) -> SchemaError:
    return SchemaError(
        f"{path}: decodes to more than the limit of {limit:,} bytes ({detail}); "
        "a decompression bomb? file refused"
    )


# ---------------------------------------------------------------------------
# bytes


def _read_bytes(path: Path, compression: str | None, limit: int) -> bytes:
    """The file's bytes, decompressed in steps, refused past ``limit``."""
    size = path.stat().st_size
    if compression is None:
        if size > limit:
            raise _bomb(path, limit, f"{size:,} bytes on disk")
        return path.read_bytes()
    chunks: list[bytes] = []
    total = 0
    try:
        stream: Any = (
            pa.CompressedInputStream(str(path), "zstd")
            if compression == ".zst"
            else _COMPRESSIONS[compression](path, "rb")
        )
        with stream:
            while chunk := stream.read(min(_STEP, limit + 1 - total)):
                chunks.append(bytes(chunk))
                total += len(chunk)
                if total > limit:
                    raise _bomb(path, limit, f"{size:,} bytes of {compression[1:]} on disk")
    except (OSError, EOFError, lzma.LZMAError, zlib.error, pa.ArrowException) as error:
        raise SchemaError(f"{path}: cannot read as {compression[1:]}: {error}") from None
    return b"".join(chunks)


def _encoding_problems(decoded: Decoded, row_of: Callable[[int], int]) -> list[_Found]:
    """One ``repaired`` problem per bad spot U+FFFD replaced (``row_of``: the row
    holding a line), and one for those past the listed ones."""
    found = [
        _Found(
            row_of(spot.line),
            "(record)",
            "",
            f"invalid {decoded.encoding} replaced by U+FFFD at {spot}",
            "repaired",
        )
        for spot in decoded.bad
    ]
    if decoded.n_bad > len(decoded.bad):
        more = decoded.n_bad - len(decoded.bad)
        found.append(
            _Found(0, "(document)", "", f"{more:,} more invalid sequences replaced", "repaired")
        )
    return found


# ---------------------------------------------------------------------------
# CSV


def _column_names(header: Sequence[str]) -> list[str]:
    """Header names as pandas makes them: ``Unnamed: i`` for an empty one,
    ``x.1``, ``x.2`` for repeats."""
    names: list[str] = []
    for i, name in enumerate(header):
        name = name or f"Unnamed: {i}"
        base, n = name, 0
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.append(name)
    return names


def _record_lines(data: bytes, sep: str) -> np.ndarray | None:
    """The physical line where each non-blank record starts (the header's
    first), from the newlines outside quotes; None unless every quote is where
    RFC 4180 puts one (an opening quote at a field's start, a closing one at
    its end, or a doubled quote inside), since pandas' parser reads other
    quotes without a word and the count of lines would not hold."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    quotes = np.flatnonzero(arr == 34)
    if len(quotes):
        if len(quotes) % 2:
            return None
        opening, closing = quotes[0::2], quotes[1::2]
        # The byte before each opening quote and after each closing one (a line
        # end at the start and the end of the data).
        before = np.where(opening > 0, arr[np.maximum(opening - 1, 0)], 10)
        after = np.where(closing + 1 < len(arr), arr[np.minimum(closing + 1, len(arr) - 1)], 10)
        if not np.isin(before, (10, 34, ord(sep))).all():
            return None
        if not np.isin(after, (10, 13, 34, ord(sep))).all():
            return None
        ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    else:
        ends = newlines
    starts = np.concatenate(([0], ends + 1))
    starts = starts[starts < len(arr)]
    before = np.searchsorted(newlines, starts)  # newlines before each start
    line_ends = np.append(newlines, len(arr))[before]
    blank = line_ends == starts
    maybe = np.flatnonzero(~blank & np.isin(arr[starts], (9, 13, 32)))
    for i in maybe:  # lines of spaces and tabs are blank to pandas too
        blank[i] = not data[starts[i] : line_ends[i]].strip(b" \t\r")
    return (before + 1)[~blank]


def _first_row_fits(data: bytes, sep: str) -> bool:
    """Whether the first record has no more fields than the header (else
    pandas takes the first column for an index, or drops the surplus)."""

    def lines() -> Iterator[str]:  # one at a time: no copy of the whole data
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            yield data[start : end + 1].decode("utf-8", "replace")
            start = end + 1
        yield data[start:].decode("utf-8", "replace")

    rows = (r for r in csv.reader(lines(), delimiter=sep) if r)
    try:
        header, first = next(rows), next(rows, None)
    except (csv.Error, StopIteration):
        return False
    return first is None or len(first) <= len(header)


def _read_csv(content: bytes, sep: str, path: Path | None) -> tuple[pd.DataFrame, list[_Found]]:
    """The records (``_row`` set) and the problems of a CSV file's bytes
    (decompressed). pandas' C parser reads a well-formed UTF-8 file (from
    ``path`` when given: ``content`` is then the file as it is); the csv
    module, slower, reads the others record by record."""
    data = content.removeprefix(codecs.BOM_UTF8)
    if bom_codec(data) is None:
        if not data or data.isspace():
            raise pd.errors.EmptyDataError("no header")
        lines = _record_lines(data, sep)
        if lines is not None and _first_row_fits(data, sep):
            source: Any = path if path is not None and data is content else io.BytesIO(data)
            try:
                frame = pd.read_csv(
                    source,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    sep=sep,
                    index_col=False,
                    encoding="utf-8",
                )
            except (pd.errors.ParserError, UnicodeDecodeError):
                frame = None  # a bad row, or bytes that are not UTF-8: read slowly
            if frame is not None and len(lines) == len(frame) + 1:
                frame["_row"] = lines[1:]
                return frame, []
    decoded = decode(content, detect=False)
    if not decoded.text or decoded.text.isspace():
        raise pd.errors.EmptyDataError("no header")
    frame, found, starts = _read_csv_slowly(decoded.text, sep)
    found += _encoding_problems(
        decoded, lambda line: starts[max(bisect.bisect_right(starts, line) - 1, 0)]
    )
    return frame, found


def _read_csv_slowly(text: str, sep: str) -> tuple[pd.DataFrame, list[_Found], list[int]]:
    """:func:`_read_csv` record by record with the csv module, strictly: a
    record with a quote that does not close is rejected at its line and
    reading starts again on the line after the one where the quote opened."""
    nul = "\x00" in text  # the csv module refuses NUL; ids with one are rejected later
    if nul:
        text = text.replace("\x00", "\ufdd0")
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_start(line: int) -> int:
        return 0 if line == 1 else newlines[line - 2] + 1

    found: list[_Found] = []
    header: list[str] | None = None
    rows: list[list[str]] = []
    starts: list[int] = []
    every: list[int] = []  # the start line of every record: header, good and rejected
    base = 0  # lines before the text being read
    while base <= len(newlines):
        reader = csv.reader(
            io.StringIO(text[line_start(base + 1) :], newline="\n"), delimiter=sep, strict=True
        )
        previous, restart = 0, None
        while restart is None:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                line = base + previous + 1
                every.append(line)
                opened = _bad_quote(text, line_start(line), sep)
                if opened is None:
                    found.append(_Found(line, "(record)", "", f"bad CSV: {error}"))
                    previous = reader.line_num
                    continue
                open_line = bisect.bisect_right(newlines, opened) + 1
                column = opened - line_start(open_line) + 1
                where = f"line {open_line}, column {column}"
                if header is None:
                    raise SchemaError(f"the header's quote at {where} does not close") from None
                reason = (
                    f"unclosed quote: the quoted field opened at {where} does not close "
                    "where its field ends; the lines after it are read as records"
                )
                begin = line_start(line)
                shown = text[begin : begin + 200].split("\n", 1)[0]
                found.append(_Found(line, "(record)", shown, reason))
                restart = open_line
                continue
            line = base + previous + 1
            previous = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip(" \t\r")):
                continue
            every.append(line)
            if header is None:
                header = record
            elif len(record) > len(header):
                reason = f"expected {len(header)} fields, saw {len(record)}"
                found.append(_Found(line, "(record)", sep.join(record)[:200], reason))
            else:
                rows.append(record)
                starts.append(line)
        if restart is None:
            break
        base = restart
    if header is None:
        raise pd.errors.EmptyDataError("no header")
    names = _column_names(header)
    columns: list[list[str | None]] = [[] for _ in names]
    for record in rows:
        for i, cells in enumerate(columns):
            value = record[i] if i < len(record) else ""
            cells.append(value or None)
    if nul:
        columns = [[v.replace("\ufdd0", "\x00") if v else v for v in cells] for cells in columns]
        found = [f._replace(value=f.value.replace("\ufdd0", "\\x00")) for f in found]
    # Text columns as pandas' parser gives them (decoded text holds no lone surrogate).
    frame = pd.DataFrame(
        {name: pd.array(cells, dtype="string") for name, cells in zip(names, columns, strict=True)}
    )
    frame["_row"] = np.asarray(starts, dtype="int64")
    return frame, found, sorted(every)


def _bad_quote(text: str, start: int, sep: str) -> int | None:
    """Where, in the record at ``start``, a quoted field opens that does not
    close where its field ends (at a separator, a line end or the end of the
    text), or None. A quote opens a field only at the field's start."""
    boundary = re.compile(f"[{re.escape(sep)}\n]")
    at, end = start, len(text)
    while at < end:
        if text[at] == '"':
            opened, search = at, at + 1
            while True:
                close = text.find('"', search)
                if close == -1:
                    return opened
                if text.startswith('"', close + 1):
                    search = close + 2
                    continue
                break
            after = text[close + 1 : close + 2]
            if after not in ("", "\r", "\n", sep):
                return opened
            if after in ("", "\n") or (after == "\r" and text[close + 2 : close + 3] in ("", "\n")):
                return None
            at = close + 2
            continue
        found = boundary.search(text, at)
        if found is None or found.group() == "\n":
            return None
        at = found.end()
    return None


# ---------------------------------------------------------------------------
# JSON Lines


def _read_jsonl(text: str) -> tuple[pd.DataFrame, list[_Found]]:
    """Records (``_row``: the line) and the lines that are no JSON object."""
    records: list[dict[str, object]] = []
    rows: list[int] = []
    found: list[_Found] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        deep = too_deep(line)
        if deep is not None:
            reason = (
                f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep "
                f"(at column {deep + 1})"
            )
            found.append(_Found(number, "(record)", line[:80], reason))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            reason = f"invalid JSON: {error.msg} at column {error.colno}"
            found.append(_Found(number, "(record)", line[:80], reason))
            continue
        except RecursionError:
            found.append(_Found(number, "(record)", line[:80], "invalid JSON: nested too deep"))
            continue
        if not isinstance(record, dict):
            found.append(
                _Found(number, "(record)", line[:80], "invalid JSON: expected an object per line")
            )
            continue
        records.append(record)
        rows.append(number)
    # object columns: a lone surrogate (from a "\ud800" escape) is for validation to report.
    frame = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    frame["_row"] = np.asarray(rows, dtype="int64")
    return frame, found


# ---------------------------------------------------------------------------
# Parquet

_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 8}
_DICTIONARY_ENCODINGS = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
_BINARY = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
)


def _is_binary(kind: pa.DataType) -> bool:
    return any(test(kind) for test in _BINARY)


def _bitmap(n: int) -> int:
    return (n + 7) // 8


def _array_nbytes(array: pa.Array) -> int:
    """What ``array`` takes once its dictionaries are expanded, without expanding them."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        values = array.dictionary
        n = len(array)
        if _is_binary(values.type):
            lengths = pc.binary_length(values)
            expanded = pc.sum(pc.take(lengths, array.indices)).as_py() or 0
            wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
            return int(expanded) + (8 if wide else 4) * (n + 1) + _bitmap(n)
        if getattr(values.type, "bit_width", 0):
            return n * values.type.bit_width // 8 + _bitmap(n)
        return _array_nbytes(pc.take(values, array.indices))
    if pa.types.is_struct(kind):
        return _bitmap(len(array)) + sum(_array_nbytes(child) for child in array.flatten())
    if (
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_map(kind)
    ):
        own = 8 * (len(array) + 1) + _bitmap(len(array))
        return own + _array_nbytes(array.flatten())
    return int(array.nbytes)


def _decoded_nbytes(table: pa.Table | pa.RecordBatch) -> int:
    total = 0
    for column in table.columns:
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        total += sum(_array_nbytes(chunk) for chunk in chunks)
    return total


def _plain_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every dictionary type replaced by its value type."""
    if pa.types.is_dictionary(kind):
        return _plain_type(kind.value_type)
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_plain_type(kind.value_type)))
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(kind.value_field.with_type(_plain_type(kind.value_type)), kind.list_size)
    if pa.types.is_map(kind):
        return pa.map_(_plain_type(kind.key_type), _plain_type(kind.item_type))
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_plain_type(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_plain_type(f.type)) for f in kind])
    return kind


def _read_parquet(path: Path, limit: int) -> pd.DataFrame:
    """A Parquet file within ``limit`` decoded bytes (see module docs)."""
    parquet = pq.ParquetFile(path)
    meta, schema = parquet.metadata, parquet.schema
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    stored = sum(group.total_byte_size for group in groups)
    if stored > limit:
        raise _bomb(path, limit, f"its metadata gives {stored:,} bytes uncompressed")
    least = 0
    for group in groups:
        for j in range(group.num_columns):
            chunk = group.column(j)
            width = _WIDTHS.get(chunk.physical_type, 4)
            if chunk.physical_type == "FIXED_LEN_BYTE_ARRAY":
                width = schema.column(j).length
            least += chunk.num_values * width
    if least > limit:
        raise _bomb(path, limit, f"its {meta.num_rows:,} rows take at least {least:,} bytes")

    # Where each column's values may decode past what the file stores: a
    # dictionary (read as one, counted, then expanded) or prefix sharing
    # (DELTA_BYTE_ARRAY, which Arrow cannot read as a dictionary: read in
    # batches, each value being at most its column chunk's uncompressed size).
    dictionary: list[str] = []
    batched: dict[str, list[int]] = {}
    for j in range(meta.num_columns):
        column = schema.column(j)
        if column.physical_type != "BYTE_ARRAY":
            continue
        encodings = {e for group in groups for e in group.column(j).encodings}
        top = column.path.split(".")[0]
        if "DELTA_BYTE_ARRAY" in encodings:
            batched.setdefault(top, []).append(j)
        elif encodings & _DICTIONARY_ENCODINGS or any(
            g.column(j).has_dictionary_page for g in groups
        ):
            dictionary.append(column.path)
    dictionary = [p for p in dictionary if p.split(".")[0] not in batched]
    reader = pq.ParquetFile(path, read_dictionary=dictionary or None)
    arrow_schema = parquet.schema_arrow
    names = arrow_schema.names
    direct = [name for name in names if name not in batched]
    target = pa.schema(
        [f.with_type(_plain_type(f.type)) for f in arrow_schema], metadata=arrow_schema.metadata
    )

    tables: list[pa.Table] = []
    total = 0

    def count(part: pa.Table | pa.RecordBatch) -> None:
        nonlocal total
        total += _decoded_nbytes(part)
        if total > limit:
            where = f"row group {len(tables) + 1} of {len(groups)}"
            raise _bomb(path, limit, f"{total:,} bytes once decoded, counted up to {where}")

    for i, group in enumerate(groups):
        part = reader.read_row_group(i, columns=direct)
        count(part)
        columns = {name: part.column(name) for name in direct}
        for top, leaves in batched.items():
            largest = max(group.column(j).total_uncompressed_size for j in leaves)
            size = int(min(max((limit - total) // max(largest, 1), 1), 65536))
            arrays = []
            for batch in parquet.iter_batches(batch_size=size, row_groups=[i], columns=[top]):
                count(batch)
                arrays.append(batch.column(0))
            columns[top] = pa.chunked_array(arrays, type=arrow_schema.field(top).type)
        table = pa.table([columns[name] for name in names], names=names)
        tables.append(table.cast(target.remove_metadata()))
    table = pa.concat_tables(tables) if tables else target.empty_table()
    return table.replace_schema_metadata(arrow_schema.metadata).to_pandas()


# ---------------------------------------------------------------------------
# files


def read_raw(
    path: str | Path, *, max_decoded_bytes: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one file into a raw frame (text values, ``_file`` and ``_row``).

    Returns the frame and the problems the reading found (the
    :data:`~recommender.schema.PROBLEM_COLUMNS`): records that could not be
    parsed at all (``rejected``), bad bytes replaced (``repaired``).
    ``max_decoded_bytes``: see :func:`decoded_limit`. ``_row``: see module docs.
    """
    path = Path(path)
    kind, compression = _format_of(path)
    found: list[_Found] = []
    try:
        limit = decoded_limit(path, max_decoded_bytes)
        if kind == "parquet":
            frame = _read_parquet(path, limit)
            frame["_row"] = np.arange(1, len(frame) + 1)
        else:
            content = _read_bytes(path, compression, limit)
            if kind == "jsonl":
                decoded = decode(content, detect=False)
                frame, found = _read_jsonl(decoded.text)
                found += _encoding_problems(decoded, lambda line: line)
            else:
                sep = "\t" if kind == "tsv" else ","
                frame, found = _read_csv(content, sep, None if compression else path)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a folder, not a file") from None
    except NotTextError as error:
        raise SchemaError(f"{path}: {error.reason}") from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: empty file (no header row)") from None
    except SchemaError as error:
        message = str(error)
        raise SchemaError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None
    except (pd.errors.ParserError, OSError, ValueError, pa.ArrowException) as error:
        raise SchemaError(f"{path}: cannot read as {kind}: {error}") from None
    frame["_file"] = str(path)
    problems = pd.DataFrame(found, columns=["row", "field", "value", "reason", "action"])
    problems.insert(0, "file", str(path))
    problems["row"] = problems["row"].astype("int64")
    return frame, problems[PROBLEM_COLUMNS]


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
    max_decoded_bytes: int | None,
) -> LoadResult:
    frames, found = [], []
    for path in expand_paths(paths):
        raw, problems = read_raw(path, max_decoded_bytes=max_decoded_bytes)
        _require_columns(path, raw, required)
        if is_spool_header(c for c in raw.columns if not str(c).startswith("_")):
            # The widget's events spool: cells a spreadsheet would run as
            # formulas were written with a leading ' (recommender.spool).
            for column in (c for c in SPOOL_COLUMNS if c in raw):
                raw[column] = raw[column].map(
                    lambda value: unescape_cell(value) if isinstance(value, str) else value
                )
        frames.append(raw)
        if len(problems):
            found.append(problems)
    if not frames:
        return LoadResult(empty, empty_problems(), 0)
    # One validation over all files, so that ids are unique across them too.
    result = validate(pd.concat(frames, ignore_index=True))
    if found:
        reading = pd.concat(found, ignore_index=True)
        unparsed = reading[(reading["action"] == "rejected") & (reading["row"] > 0)]
        result.problems = pd.concat([reading, result.problems], ignore_index=True)
        result.n_read += len(unparsed[["file", "row"]].drop_duplicates())
    return result


def read_articles(
    paths: str | Path | Iterable[str | Path],
    *,
    sites: Collection[str] | None = None,
    max_decoded_bytes: int | None = None,
) -> LoadResult:
    """Load and validate article files; ids must be unique across all of them.

    ``max_decoded_bytes``: what each file may decode to (see module docs)."""
    return _load(
        paths,
        lambda raw: validate_articles(raw, sites=sites),
        ARTICLE_REQUIRED,
        empty_articles(),
        max_decoded_bytes,
    )


def read_events(
    paths: str | Path | Iterable[str | Path], *, max_decoded_bytes: int | None = None
) -> LoadResult:
    """Load and validate event files (pageviews, impressions, clicks)."""
    return _load(paths, validate_events, ("ts",), empty_events(), max_decoded_bytes)
