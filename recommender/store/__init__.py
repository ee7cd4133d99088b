"""Where published recommendation lists live.

A store keeps whole *runs*: ``publish(lists, run)`` makes a new run current in
one atomic step (readers see the previous run or the new one, never a mix),
``publish_changes(lists, run, removed=...)`` does the same for a run that
differs from the current one in a few lists (writing only those),
``get(source_id)`` reads the current run's list, and the last ``keep_runs``
runs stay for rollback. Standard library only, so that serving needs nothing
heavy.

``open_store(url)`` picks the backend from the URL: ``sqlite:///path`` (or a
plain path) for the embedded default, ``postgresql://...`` for PostgreSQL
(needs the ``postgres`` extra). ``open_store(url, read_only=True)`` is what a
reader uses: nothing is created, migrated or written, so a user that may only
read the store can open it.

Ids are checked before they reach the database (see
:mod:`recommender.ids`): ``get`` of an invalid id is None on every backend,
and a publish with an invalid id is refused the same way on every backend.
Damaged data raises :class:`DamagedStoreError` (a StoreError).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from recommender.errors import StoreError
from recommender.lists import PublishableList, RecommendationList, RunInfo
from recommender.store._sql import DamagedStoreError


@runtime_checkable
class Store(Protocol):
    """The contract every backend meets (see tests/store_contract.py)."""

    def publish(self, lists: Iterable[PublishableList], run: RunInfo) -> RunInfo:
        """Store every list of ``run`` and make it current, atomically; returns
        the run as recorded (with its list count)."""
        ...

    def publish_changes(
        self,
        lists: Iterable[PublishableList],
        run: RunInfo,
        *,
        removed: Iterable[str] = (),
        based_on: str | None = None,
    ) -> RunInfo:
        """Record and make current, atomically like :meth:`publish`, a run
        whose lists are the current run's with ``lists`` replacing or adding
        the lists of their source ids and the source ids in ``removed``
        dropped; returns the run as recorded (``n_lists``: all the lists it
        serves). For incremental runs that change few lists: only the
        differences are written (see :mod:`recommender.store._sql`). A list
        carried over keeps, in its JSON, the ``run_id`` and ``generated_at`` of
        the run that computed it. Raises StoreError when no run is current,
        or when ``based_on`` (the run the changes were computed against) is
        not the current run."""
        ...

    def get(self, source_id: str) -> RecommendationList | None:
        """The current run's list for ``source_id``, or None (its ``run_id``:
        the run being served). None, not an error, for an invalid id."""
        ...

    def current_run(self) -> RunInfo | None:
        """The run being served, or None before the first publish."""
        ...

    def current_run_id(self) -> str | None:
        """Id of the run being served; cheap enough to call on every request."""
        ...

    def run(self, run_id: str) -> RunInfo | None:
        """One recorded run, or None."""
        ...

    def runs(self) -> list[RunInfo]:
        """Recorded runs (current, kept and failed), newest first."""
        ...

    def record_failure(self, run: RunInfo, error: str) -> None:
        """Record a run that failed before publishing; the current run stays."""
        ...

    def rollback(self, run_id: str) -> RunInfo:
        """Serve an earlier kept run again, atomically."""
        ...

    def close(self) -> None: ...


def open_store(
    url: str | Path,
    *,
    keep_runs: int = 5,
    compact_fraction: float = 0.25,
    read_only: bool = False,
    create: bool = True,
) -> Store:
    """Open (creating if needed) the store at ``url``.

    ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or a plain
    file path select the embedded SQLite backend. ``compact_fraction``: a
    ``publish_changes`` that would store more rows than this fraction of its
    base run's lists writes a full run instead.

    ``read_only``: only read: the store must exist, nothing is created or
    migrated, writes raise StoreError; a user with read access only can open
    it. ``create=False``: open for writing, but refuse (StoreError) a store
    that does not exist yet instead of creating an empty one (a mistyped path
    or schema).
    """
    text = str(url)
    if text.startswith("sqlite://"):
        path = text[len("sqlite:///") :] if text.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"{text}: a SQLite store URL needs a path, e.g. sqlite:///lists.db")
        text = path
    elif text.startswith(("postgresql://", "postgres://")):
        from recommender.store.postgres import PostgresStore

        return PostgresStore(
            text,
            keep_runs=keep_runs,
            compact_fraction=compact_fraction,
            read_only=read_only,
            create=create,
        )
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"{text}: unsupported store scheme {scheme!r}; use sqlite:///path or postgresql://..."
        )
    from recommender.store.sqlite import SQLiteStore

    return SQLiteStore(
        text,
        keep_runs=keep_runs,
        compact_fraction=compact_fraction,
        read_only=read_only,
        create=create,
    )


__all__ = ["DamagedStoreError", "Store", "StoreError", "open_store"]
