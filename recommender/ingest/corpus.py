"""The incremental corpus: one Parquet file of articles, upserted by every ingest.

An article's identity is its URL's :func:`~recommender.ingest.matching.url_key`
(canonical form, trailing slash and parameter order ignored); an article
that another URL of the same site already holds with the same text (same
content hash of title and body) is a duplicate and left out. An ingest:

- adds articles it has not seen (``new``);
- replaces an article whose fields changed (``updated``): each field the
  source gives replaces the stored one, a field it leaves empty keeps the
  stored value, so a feed without images does not erase the images a page
  gave; the article keeps its id;
- marks an article ``unpublished`` (it leaves the lists, its id and traffic
  stay) when its source says so (WordPress status), its page answers 404 or
  410, or a source given as the site's complete listing no longer has it;
- leaves everything else as it is (``unchanged``), so running the same ingest
  twice changes nothing, and the file is not rewritten.

The file holds the Article columns (the batch job reads it as an article
input like any other) plus ``modified_at`` (the source's last change),
``content_hash``, ``url_key``, ``first_seen`` and ``updated_at`` (UTC).
It is replaced atomically (written beside, flushed, renamed), and
:func:`corpus_lock` keeps two ingests from updating it at once.

The events file is kept the same way. An event that a source holds n times
(same time, article, kind, session, ...) is stored n times, minus the copies
already stored: a log ingested twice, or ingested again after it grew,
counts each hit once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.errors import InputError, SchemaError
from recommender.ingest.matching import url_key
from recommender.ingest.records import INGEST_ARTICLE_DTYPES
from recommender.schema import EVENT_DTYPES, empty_events

CORPUS_DTYPES: dict[str, str] = {
    **INGEST_ARTICLE_DTYPES,
    "content_hash": "string",
    "url_key": "string",
    "first_seen": "datetime64[ns, UTC]",
    "updated_at": "datetime64[ns, UTC]",
}
#: Fields compared to tell an updated article from an unchanged one.
COMPARED = (
    "url",
    "title",
    "body",
    "category",
    "published_at",
    "image_url",
    "tags",
    "language",
    "status",
    "modified_at",
)
_MERGED = tuple(c for c in COMPARED if c != "status")
_SPACES = re.compile(r"\s+")


def content_hash(titles: pd.Series, bodies: pd.Series) -> pd.Series:
    """16 hex digits of SHA-256 over title and body, spaces and case normalised."""
    text = (titles.fillna("") + "\n" + bodies.fillna("")).astype(str)
    return text.map(
        lambda t: hashlib.sha256(_SPACES.sub(" ", t).strip().casefold().encode()).hexdigest()[:16]
    ).astype("string")


def _typed(frame: pd.DataFrame, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name, dtype in dtypes.items():
        if name in frame and dtype.startswith("datetime64"):
            out[name] = pd.to_datetime(frame[name], utc=True).astype(dtype)
        elif name in frame:
            out[name] = frame[name].astype(dtype)
        else:
            missing = pd.NaT if dtype.startswith("datetime64") else pd.NA
            out[name] = pd.Series(missing, index=frame.index, dtype=dtype)
    return out.reset_index(drop=True)


def _empty(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if values.dtype == "string":
        return values.isna() | (values.str.strip() == "")
    return values.isna()


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so that readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with temp.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_parquet`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def corpus_lock(path: Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (``<name>.lock``) for one ingest.

    Waits up to ``timeout`` seconds for another ingest to finish, then fails
    with :class:`InputError`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f"{path.name}.lock")
    with lock_path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InputError(
                        f"{path}: another ingest has held {lock_path} for over {timeout:g} s"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class UpsertCounts:
    """What one upsert did, in articles."""

    new: int = 0
    updated: int = 0
    unpublished: int = 0
    unchanged: int = 0
    duplicates: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.unpublished)


class Corpus:
    """The articles of the network as ingested so far (see module docs).

    ``articles``: one row per article, columns :data:`CORPUS_DTYPES`.
    """

    def __init__(self, articles: pd.DataFrame | None = None) -> None:
        self.articles = _typed(articles if articles is not None else pd.DataFrame(), CORPUS_DTYPES)

    @classmethod
    def load(cls, path: Path) -> Corpus:
        """The corpus in ``path``; an empty one when the file does not exist yet.

        A Parquet file of articles written by another tool is accepted: the
        ingest columns it lacks are derived.
        """
        if not path.exists():
            return cls()
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as error:
            raise SchemaError(f"{path}: cannot read the corpus: {error}") from None
        missing = [
            c for c in ("article_id", "site", "url", "title", "published_at") if c not in frame
        ]
        if missing:
            raise SchemaError(f"{path}: not an article corpus (no {', '.join(missing)} column)")
        corpus = cls(frame)
        articles = corpus.articles
        if articles["url_key"].isna().any():
            articles["url_key"] = articles["url"].astype(str).map(url_key).astype("string")
        if articles["content_hash"].isna().any():
            articles["content_hash"] = content_hash(articles["title"], articles["body"])
        for column, default in (("status", "published"), ("body", ""), ("category", "")):
            articles[column] = articles[column].fillna(default)
        return corpus

    def save(self, path: Path) -> None:
        """Replace ``path`` with the corpus, atomically."""
        atomic_write_parquet(self.articles, path)

    def upsert(
        self,
        incoming: pd.DataFrame,
        *,
        gone: Iterable[str] = (),
        complete_sites: Iterable[str] = (),
        now: pd.Timestamp,
    ) -> tuple[UpsertCounts, pd.DataFrame]:
        """Merge ingested articles into the corpus (see module docs).

        ``incoming``: ingest Article frames concatenated in source order; of
        rows with the same URL key, later non-empty fields win. ``gone``:
        URLs whose pages answered 404/410. ``complete_sites``: sites whose
        whole listing ``incoming`` is; their stored articles missing from it
        are unpublished. Returns the counts and the rows refused (an id that
        another URL already holds) as problems (``file``, ``row``, ...).
        """
        counts = UpsertCounts()
        refused: list[dict[str, Any]] = []
        stored = self.articles
        position = pd.Series(stored.index, index=stored["url_key"].to_numpy())
        position = position[~position.index.duplicated()]
        merged = _merge_incoming(incoming)
        touched: set[int] = set()
        additions: list[pd.Series] = []
        hashes = set(
            zip(stored["site"], stored["content_hash"].where(stored["body"] != ""), strict=True)
        )
        ids = set(stored["article_id"].astype(str))
        for _, row in merged.iterrows():
            key = row["url_key"]
            if key in position.index:
                at = int(position[key])
                touched.add(at)
                old = stored.loc[at]
                new = old.copy()
                for column in _MERGED:
                    value = row[column]
                    if not (pd.isna(value) or (isinstance(value, str) and not value.strip())):
                        new[column] = value
                new["status"] = row["status"]
                if all(_same(old[c], new[c]) for c in COMPARED):
                    counts.unchanged += 1
                    continue
                if old["status"] == "published" and new["status"] == "unpublished":
                    counts.unpublished += 1
                else:
                    counts.updated += 1
                new["content_hash"] = str(
                    content_hash(pd.Series([new["title"]]), pd.Series([new["body"]])).iat[0]
                )
                new["updated_at"] = now
                for column in (*COMPARED, "content_hash", "updated_at"):
                    stored.loc[at, column] = new[column]
                continue
            if row["status"] != "published":
                counts.unchanged += 1  # never stored, nothing to take down
                continue
            digest = (row["site"], row["content_hash"] if row["body"] else None)
            if row["body"] and digest in hashes:
                counts.duplicates += 1
                counts.unchanged += 1
                continue
            if row["article_id"] in ids:
                refused.append(
                    {
                        "file": row["_file"],
                        "row": row["_row"],
                        "field": "article_id",
                        "value": row["article_id"],
                        "reason": "duplicate article_id: the corpus holds it for another URL",
                        "action": "rejected",
                    }
                )
                continue
            hashes.add(digest)
            ids.add(row["article_id"])
            additions.append(row)
            counts.new += 1
        gone_keys = {url_key(u) for u in gone}
        unpublish = stored["status"].eq("published") & stored["url_key"].isin(gone_keys)
        for site in complete_sites:
            listed = set(merged.loc[merged["site"] == site, "url_key"])
            unpublish |= (
                stored["status"].eq("published")
                & stored["site"].eq(site)
                & ~stored["url_key"].isin(listed)
            )
        if unpublish.any():
            counts.unpublished += int(unpublish.sum())
            stored.loc[unpublish, "status"] = "unpublished"
            stored.loc[unpublish, "updated_at"] = now
        if additions:
            added = pd.DataFrame(additions).assign(first_seen=now, updated_at=now)
            stored = pd.concat([stored, _typed(added, CORPUS_DTYPES)], ignore_index=True)
        self.articles = _typed(stored, CORPUS_DTYPES)
        return counts, pd.DataFrame(refused)


def _same(a: Any, b: Any) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    if pd.isna(a) or pd.isna(b):
        return False
    return bool(a == b)


def _merge_incoming(incoming: pd.DataFrame) -> pd.DataFrame:
    """One row per URL key, fields taken from the last row that has them."""
    frame = incoming.copy()
    if "_file" not in frame:
        frame["_file"] = ""
    if "_row" not in frame:
        frame["_row"] = 0
    frame["url_key"] = frame["url"].astype(str).map(url_key)
    for column in ("url", "title", "body", "category", "image_url", "tags", "language"):
        frame[column] = frame[column].mask(_empty(frame, column))
    grouped = frame.groupby("url_key", sort=False)
    merged = grouped.last()
    # groupby.last skips missing values: status and the id follow the last and first row.
    merged["status"] = grouped["status"].agg(lambda s: s.iloc[-1])
    merged["article_id"] = grouped["article_id"].first()
    merged = merged.reset_index()
    for column in ("body", "category", "tags", "language"):
        merged[column] = merged[column].fillna("")
    merged["content_hash"] = content_hash(merged["title"], merged["body"])
    return merged


def load_state(path: Path) -> dict[str, dict[str, str]]:
    """The HTTP validators (``etag``, ``last_modified`` per URL) of earlier runs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a damaged state only costs full downloads
    validators = data.get("validators") if isinstance(data, dict) else None
    return validators if isinstance(validators, dict) else {}


def save_state(path: Path, validators: Mapping[str, Mapping[str, str]]) -> None:
    atomic_write_text(json.dumps({"version": 1, "validators": validators}, indent=1), path)


class EventLog:
    """The events file: appended to by traffic ingests, exact repeats dropped."""

    def __init__(self, events: pd.DataFrame | None = None) -> None:
        self.events = _typed(events if events is not None else empty_events(), EVENT_DTYPES)

    @classmethod
    def load(cls, path: Path) -> EventLog:
        if not path.exists():
            return cls()
        try:
            return cls(pd.read_parquet(path))
        except (OSError, ValueError, pa.ArrowException) as error:
            raise SchemaError(f"{path}: cannot read the events file: {error}") from None

    def append(self, events: pd.DataFrame) -> tuple[int, int]:
        """Add events beyond the copies already stored (see module docs);
        return (added, repeats left out)."""
        if not len(events):
            return 0, 0
        incoming = _typed(events, EVENT_DTYPES)
        stored_counts = pd.util.hash_pandas_object(self.events, index=False).value_counts()
        keys = pd.util.hash_pandas_object(incoming, index=False)
        occurrence = keys.groupby(keys).cumcount()
        already = keys.map(stored_counts).fillna(0).astype("int64")
        fresh = incoming[(occurrence >= already).to_numpy()]
        self.events = pd.concat([self.events, fresh], ignore_index=True)
        return len(fresh), len(incoming) - len(fresh)

    def save(self, path: Path) -> None:
        atomic_write_parquet(self.events, path)
