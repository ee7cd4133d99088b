"""Documents: the bytes of one source (a local file or a fetched URL), read within limits.

Every reader of a publisher format (feeds, WordPress JSON, sitemaps, HTML
pages, text pages, access logs, analytics exports) takes a :class:`Document`
and reports what it could not use as :class:`Problem` rows, the same rows
:func:`recommender.schema.validate_articles` returns: ``file`` is the source
as given (path or URL), ``row`` the 1-based record number inside it (feed
item, post, sitemap entry, log line; ``0`` for the document as a whole), and
``reason`` says what was wrong, with line, column or byte where known.
Actions: ``rejected`` (left out), ``cleared`` (an optional value dropped, the
record kept) and ``repaired`` (a document was read despite a defect, such as
a wrong declared encoding; what could be read was kept).

Sizes are bounded before anything is parsed: a document larger than
``IngestLimits.max_document_bytes`` *after* decompression is refused, and
gzip/deflate streams are inflated in bounded steps, so a zip bomb costs at
most that many bytes of memory. Article tables (CSV, JSON Lines, Parquet)
are bounded by what they decode to in the same way (see
:mod:`recommender.ingest.tables`).

Text is decoded the same way for every format (see
:mod:`recommender.ingest.charsets`): a byte-order mark (UTF-8, UTF-16,
UTF-32), UTF-8, the declared charset; UTF-8 with a few bad bytes keeps its
text with just those bytes replaced (U+FFFD) and their lines and columns
reported; a document in another encoding is detected.
"""

from __future__ import annotations

import codecs
import dataclasses
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from recommender.errors import SchemaError
from recommender.ingest.charsets import (
    bom_codec,
    codec_name,
    declared_in,
    decode,
    with_utf8_declaration,
)
from recommender.schema import PROBLEM_COLUMNS, empty_problems

GZIP_MAGIC = b"\x1f\x8b"

#: Longest accepted value per article field, in characters. A record with a
#: longer value is rejected rather than truncated: a 50 MB "title" is a broken
#: export, not an article.
FIELD_LIMITS: dict[str, int] = {
    "url": 2_048,
    "title": 1_000,
    "body": 1_000_000,
    "category": 200,
    "image_url": 2_048,
    "tags": 4_000,
    "language": 35,
}


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one document may hold.

    ``max_document_bytes``: decoded (decompressed) size of one document, in
    bytes. ``max_line_bytes``: longest line of a line-based format (access
    log, CSV, JSON Lines), in bytes. ``field_limits``: longest value per
    article field, in characters. ``earliest``: publication or event times
    before this are absurd. ``max_future_hours``: times more than this many
    hours after the ingest's reference time are absurd (clock skew and time
    zone slips stay well inside it).
    """

    max_document_bytes: int = 64 * 2**20
    max_line_bytes: int = 64 * 2**10
    field_limits: Mapping[str, int] = field(default_factory=lambda: dict(FIELD_LIMITS))
    earliest: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("1990-01-01", tz="UTC"))
    max_future_hours: float = 48.0


class Problem(NamedTuple):
    """One thing in a source that could not be used as given (see module docs)."""

    file: str
    row: int
    field: str
    value: str
    reason: str
    action: str = "rejected"


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """Problems as the frame :class:`recommender.schema.LoadResult` carries."""
    rows = [p._replace(value=p.value[:200]) for p in problems]
    if not rows:
        return empty_problems()
    frame = pd.DataFrame(rows, columns=PROBLEM_COLUMNS)
    frame["row"] = frame["row"].astype("int64")
    return frame


def problems_where(
    mask: pd.Series,
    frame: pd.DataFrame,
    *,
    source: str,
    field: str,
    values: pd.Series,
    reason: str | pd.Series,
) -> list[Problem]:
    """One rejection per true value of ``mask`` (aligned with ``frame``): the
    row from ``frame["_row"]``, the value from ``values``."""
    mask = mask.fillna(False).astype(bool)
    rows = frame.loc[mask, "_row"].astype("int64").tolist()
    shown = values[mask].astype("string").fillna("").str.slice(0, 200).tolist()
    reasons = reason[mask].tolist() if isinstance(reason, pd.Series) else [reason] * len(rows)
    return [
        Problem(source, row, field, value, why)
        for row, value, why in zip(rows, shown, reasons, strict=True)
    ]


class DocumentError(SchemaError):
    """A document cannot be used at all (too large, not decodable, a failed fetch).

    ``reason`` says why, with the position where known; the source is named by
    whoever caught it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Document:
    """The bytes of one source and what is known about where they came from.

    ``source``: the path or URL as the user gave it (the name in reports).
    ``content``: the body, already decompressed. ``url``: where it was
    fetched from after redirects (the base for relative links; ``None`` for a
    local file). ``media_type``: from the Content-Type header, lower case,
    without parameters. ``charset``: the header's charset parameter.
    ``next_url``: the next page of a paginated API (``Link: rel="next"``).
    """

    source: str
    content: bytes
    url: str | None = None
    media_type: str = ""
    charset: str | None = None
    next_url: str | None = None

    def lines(self) -> Iterator[bytes]:
        """The content's lines, without line endings."""
        yield from self.content.splitlines()


class BoundedInflater:
    """Incremental gzip/deflate decoder that refuses to produce more than ``limit`` bytes.

    Inflating happens in steps of at most the remaining allowance, so memory
    stays bounded whatever the compression ratio. Concatenated gzip members
    (as ``cat a.gz b.gz`` makes) are decoded one after another.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise DocumentError(f"unsupported content encoding {encoding!r}")
        self._encoding = encoding
        # 32 + MAX_WBITS: a gzip or zlib header, detected; raw deflate is tried
        # when a "deflate" body turns out to have no zlib header.
        self._wbits = 32 + zlib.MAX_WBITS
        self._decoder = zlib.decompressobj(self._wbits)
        self._limit = limit
        self._out = bytearray()
        self._seen_input = 0

    def feed(self, data: bytes) -> None:
        """Decode one chunk of the compressed stream."""
        self._seen_input += len(data)
        pending = data
        while pending:
            if self._decoder.eof:
                if self._encoding == "deflate" or not pending.strip(b"\0"):
                    return  # trailing padding after the stream
                self._decoder = zlib.decompressobj(self._wbits)  # the next gzip member
            try:
                chunk = self._decoder.decompress(pending, self._limit + 1 - len(self._out))
            except zlib.error as error:
                if self._encoding == "deflate" and not self._out and self._wbits > 0:
                    self._wbits = -zlib.MAX_WBITS  # a raw deflate body, without zlib header
                    self._decoder = zlib.decompressobj(self._wbits)
                    continue
                raise DocumentError(
                    f"corrupt {self._encoding} stream within the first {self._seen_input:,} "
                    f"compressed bytes: {error}"
                ) from None
            self._out += chunk
            if len(self._out) > self._limit:
                raise DocumentError(
                    f"more than {self._limit:,} bytes after {self._encoding} decompression of "
                    f"{self._seen_input:,} compressed bytes (a zip bomb?); document refused"
                )
            # Below the allowance zlib uses all the input it can: what is left is
            # the data after the end of a gzip member, if any.
            pending = self._decoder.unused_data if self._decoder.eof else b""

    def finish(self) -> bytes:
        """The decoded bytes; a stream cut short is an error."""
        if self._seen_input and not self._decoder.eof:
            raise DocumentError(
                f"truncated {self._encoding} stream: it ends after {self._seen_input:,} "
                f"compressed bytes ({len(self._out):,} decoded)"
            )
        return bytes(self._out)


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a whole gzip/deflate body, refusing more than ``limit`` bytes."""
    inflater = BoundedInflater(encoding, limit)
    inflater.feed(data)
    return inflater.finish()


def read_file(path: str | Path, limits: IngestLimits, source: str | None = None) -> Document:
    """A local file as a document; gzip files (by their magic bytes) are inflated.

    Raises :class:`DocumentError` when the file is missing, unreadable or
    larger than the limit (before or after decompression).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_document_bytes:
            raise DocumentError(
                f"file of {size:,} bytes is larger than the limit of "
                f"{limits.max_document_bytes:,} bytes"
            )
        content = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError("file not found") from None
    except IsADirectoryError:
        raise DocumentError("is a folder, not a file") from None
    except OSError as error:
        raise DocumentError(f"cannot read: {error.strerror}") from None
    if content.startswith(GZIP_MAGIC):
        content = inflate(content, "gzip", limits.max_document_bytes)
    return Document(source=source or str(path), content=content)


def decode_text(content: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """Decode a text document; return the text and a note when it had to be
    repaired (bad bytes replaced, with their lines and columns; a declared
    charset that does not fit; an encoding detected). Never raises.

    See :func:`recommender.ingest.charsets.decode` for the order.
    """
    decoded = decode(content, declared)
    return decoded.text, decoded.note


def _repaired(document: Document, note: str | None) -> Problem | None:
    return Problem(document.source, 0, "(document)", "", note, "repaired") if note else None


def utf8_document(document: Document, markup: str | None = None) -> tuple[Document, Problem | None]:
    """The document as UTF-8 bytes, decoded as :func:`decode_text` does, and a
    ``repaired`` problem when it was not read as it is.

    ``markup``: ``"xml"`` or ``"html"`` to honour the document's own declared
    charset; an XML declaration is rewritten to say UTF-8, and ``charset`` is
    ``utf-8``, so that a parser given the bytes reads them as decoded here.
    """
    content = document.content
    decoded = decode(content, document.charset, markup=markup)
    problem = _repaired(document, decoded.note)
    declared = [codec_name(document.charset), codec_name(declared_in(content, markup))]
    if (
        decoded.encoding == "utf-8"
        and decoded.note is None
        and not content.startswith(codecs.BOM_UTF8)
        and all(name in (None, "utf-8") for name in declared)
    ):
        return document, None
    utf8 = with_utf8_declaration(decoded.text.encode("utf-8"))
    return dataclasses.replace(document, content=utf8, charset="utf-8"), problem


def without_bom(document: Document) -> tuple[Document, Problem | None]:
    """A document that starts with a byte-order mark as UTF-8 without one
    (UTF-16 and UTF-32 transcoded, an XML declaration rewritten to say UTF-8);
    other documents as they are."""
    if bom_codec(document.content) is None:
        return document, None
    decoded = decode(document.content)
    utf8 = with_utf8_declaration(decoded.text.encode("utf-8"))
    return dataclasses.replace(document, content=utf8, charset="utf-8"), _repaired(
        document, decoded.note
    )
