"""``recommender ingest``: sources in, one incremental corpus (and events file) out.

A source is a path, a glob pattern or an http(s) URL. Its format is told
from its content (and the server's media type): an RSS/Atom feed, WordPress
posts JSON, a sitemap or sitemap index, an HTML article page, the text page
form, a combined access log, an analytics export (CSV / JSON Lines with a
time and a page column), or a tidy article table (CSV / JSON Lines / Parquet
with the Article columns); ``format`` forces one.

Fetching goes in rounds: the sources, then what they point to: the next
page of WordPress posts (``Link: rel="next"``), the child sitemaps of an
index, and with ``follow`` the pages of feed items and sitemap entries that
are new to the corpus or changed since (by ``lastmod``). A followed page's
fields win over its feed item's; a page that answers 404 or 410 unpublishes
its article.

Articles are upserted first (see :mod:`recommender.ingest.corpus`), then
traffic is matched against the updated corpus and appended to the events
file. Every document that cannot be used, and every record, is reported with
source, position and reason; the rest goes on. The corpus, then the events,
then the HTTP validators are saved, each atomically and only when changed.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from lxml import etree  # type: ignore[import-untyped]

from recommender.config import Config
from recommender.errors import SchemaError
from recommender.ingest.accesslog import COMBINED, read_access_log
from recommender.ingest.analytics import read_analytics
from recommender.ingest.corpus import (
    Corpus,
    EventLog,
    UpsertCounts,
    corpus_lock,
    load_state,
    save_state,
)
from recommender.ingest.documents import (
    Document,
    DocumentError,
    IngestLimits,
    Problem,
    problems_frame,
    read_file,
    without_bom,
)
from recommender.ingest.feeds import read_feed
from recommender.ingest.fetch import Fetched, Fetcher, FetchPolicy
from recommender.ingest.matching import url_key
from recommender.ingest.pages import read_page
from recommender.ingest.records import (
    INGEST_ARTICLE_DTYPES,
    SiteContext,
    article_id_for,
)
from recommender.ingest.sitemaps import read_sitemap
from recommender.ingest.tables import expand_paths, read_articles
from recommender.ingest.textpage import BLOCK_COLUMNS, BLOCK_HEADING, read_text_page
from recommender.ingest.wordpress import read_wordpress
from recommender.schema import LoadResult

_log = logging.getLogger(__name__)

FORMATS = (
    "feed",
    "wordpress",
    "sitemap",
    "page",
    "text-page",
    "access-log",
    "analytics",
    "table",
)
_TRAFFIC_FORMATS = ("access-log", "analytics")
_MEDIA_TYPES = {
    "application/rss+xml": "feed",
    "application/atom+xml": "feed",
    "application/rdf+xml": "feed",
    "text/html": "page",
    "application/xhtml+xml": "page",
}
_XML_ROOTS = {
    "rss": "feed",
    "RDF": "feed",
    "feed": "feed",
    "urlset": "sitemap",
    "sitemapindex": "sitemap",
    "html": "page",
}
_TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
_ARTICLE_COLUMNS = {"title", "published_at"}
_COMMENT_COUNT = re.compile(rb"^\s*(\d[\d,]*|no)\s+comments?\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class IngestOptions:
    """What to ingest and how.

    ``site``: the registry key every source belongs to. ``format``: ``auto``
    or one of :data:`FORMATS`. ``follow``: fetch the pages of feed items and
    sitemap entries that are new or changed. ``complete``: the sources list
    the site's whole catalogue, so stored articles of the site they do not
    list are unpublished (only when every source was read in full).
    ``page_url`` / ``published_at``: the URL and date of a text page, which
    its text does not carry. ``max_documents``: bound on documents per run
    (pagination and sitemap indexes included).
    """

    site: str
    format: str = "auto"
    follow: bool = False
    complete: bool = False
    page_url: str | None = None
    published_at: str | None = None
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    limits: IngestLimits = field(default_factory=IngestLimits)
    max_documents: int = 10_000


@dataclass
class IngestReport:
    """What an ingest did. Counts of articles, events and documents.

    ``rejected``: article records and whole documents rejected,
    ``events_rejected``: traffic records rejected; each has a row in
    ``problems``. ``block``: the items of text pages' blocks
    (see :class:`~recommender.ingest.textpage.TextPage`).
    """

    site: str
    corpus_path: Path
    events_path: Path | None = None
    documents: int = 0
    documents_failed: int = 0
    not_modified: int = 0
    articles_read: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    rejected: int = 0
    events_read: int = 0
    events_rejected: int = 0
    events_added: int = 0
    events_repeated: int = 0
    events_unmatched: int = 0
    bots: int = 0
    skipped_hits: int = 0
    corpus_size: int = 0
    block: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BLOCK_COLUMNS))
    problems: pd.DataFrame = field(default_factory=lambda: problems_frame([]))
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    """One document to read: a path or URL, its format if known, and for a
    followed page the URL key of the item that led to it."""

    location: str
    format: str | None = None
    origin: str | None = None

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


def sniff_format(document: Document) -> str | None:
    """The format of a document by its content and media type (see module docs).
    A document with a byte-order mark (UTF-8, UTF-16, UTF-32) is read by it."""
    document, _ = without_bom(document)
    head = document.content[:8192].lstrip(b" \t\r\n")
    if head.startswith(b"PAR1"):
        return "table"
    if head.startswith(b"<"):
        root = _xml_root(head)
        if root in _XML_ROOTS:
            return _XML_ROOTS[root]
        lowered = head.lower()
        if b"<html" in lowered or b"<!doctype html" in lowered:
            return "page"
        return _MEDIA_TYPES.get(document.media_type)
    if head.startswith((b"[", b"{")):
        return _json_format(document.content)
    lines = (line.strip() for line in head.decode("utf-8", "replace").splitlines())
    first_line = next((line for line in lines if line and not line.startswith("#")), "")
    if COMBINED.match(first_line):
        return "access-log"
    if BLOCK_HEADING.encode() in document.content or _COMMENT_COUNT.search(head):
        return "text-page"
    if "," in first_line or "\t" in first_line:
        names = {re.sub(r"[^a-z_]", "", c.lower()) for c in re.split(r"[,\t]", first_line)}
        return "table" if names >= _ARTICLE_COLUMNS else "analytics"
    return _MEDIA_TYPES.get(document.media_type)


def _xml_root(head: bytes) -> str | None:
    """The local name of the first element, read leniently from the first bytes."""
    try:
        for _, element in etree.iterparse(
            io.BytesIO(head),
            events=("start",),
            recover=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
        ):
            return str(etree.QName(element.tag).localname)
    except etree.XMLSyntaxError:
        return None
    return None


def _json_format(content: bytes) -> str | None:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        # Not one JSON document: JSON Lines (traffic or an article table),
        # else broken JSON, which the WordPress reader reports best.
        first = content.split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):
            return "wordpress"
        if isinstance(record, dict):
            return "table" if set(record) >= _ARTICLE_COLUMNS else "analytics"
        return "wordpress"
    if isinstance(data, dict) and {"title", "published_at"} <= set(data):
        return "table"
    return "wordpress"


class _Run:
    """The state of one ingest while its documents are read."""

    def __init__(
        self,
        config: Config,
        options: IngestOptions,
        corpus: Corpus,
        report: IngestReport,
        now: pd.Timestamp,
    ) -> None:
        self.config = config
        self.options = options
        self.site = SiteContext.from_config(config, options.site)
        self.corpus = corpus
        self.report = report
        self.now = now
        self.articles: list[LoadResult] = []
        self.traffic: list[tuple[Document, str]] = []
        self.problems: list[pd.DataFrame] = []
        self.traffic_problems: list[pd.DataFrame] = []
        self.gone: list[str] = []
        self.aliases: dict[str, str] = {}
        self.complete = True
        self.seen: set[str] = set()
        self.stored = corpus.articles.set_index("url_key")["modified_at"]
        self.stored = self.stored[~self.stored.index.duplicated()]

    # -- bookkeeping ---------------------------------------------------------
    def fail(self, source: str, reason: str) -> None:
        self.report.documents_failed += 1
        self.complete = False
        self.problems.append(problems_frame([Problem(source, 0, "(document)", "", reason)]))

    def wants(self, url: str, lastmod: pd.Timestamp | None) -> bool:
        """Whether a linked page is worth fetching: new, or changed since stored."""
        key = url_key(url)
        if key not in self.stored.index:
            return True
        stored = self.stored[key]
        return bool(
            lastmod is not None and pd.notna(lastmod) and (pd.isna(stored) or lastmod > stored)
        )

    # -- reading -------------------------------------------------------------
    def read(self, task: _Task, document: Document) -> list[_Task]:
        """Parse one document; return the tasks it leads to."""
        self.report.documents += 1
        document, repaired = without_bom(document)  # every reader gets UTF-8 (or binary)
        if repaired is not None:
            self.problems.append(problems_frame([repaired]))
        kind = task.format or sniff_format(document)
        if kind is None:
            self.fail(
                document.source,
                "cannot tell the format from the content; name it with --format "
                f"({', '.join(FORMATS)})",
            )
            return []
        if kind in _TRAFFIC_FORMATS:
            self.traffic.append((document, kind))
            return []
        opts = {"limits": self.options.limits, "now": self.now}
        follow: list[_Task] = []
        if kind == "feed":
            result = read_feed(document, self.site, **opts)  # type: ignore[arg-type]
            if self.options.follow:
                modified = result.valid["modified_at"]
                follow = [
                    _Task(url, "page", url_key(url))
                    for url, lastmod in zip(result.valid["url"], modified, strict=True)
                    if self.wants(url, lastmod)
                ]
        elif kind == "wordpress":
            result = read_wordpress(document, self.site, **opts)  # type: ignore[arg-type]
            if document.next_url:
                follow = [_Task(document.next_url, "wordpress")]
        elif kind == "sitemap":
            sitemap = read_sitemap(document, self.site, **opts)  # type: ignore[arg-type]
            result = sitemap.articles
            follow = [_Task(link.url, "sitemap") for link in sitemap.sitemaps]
            if self.options.follow:
                follow += [
                    _Task(link.url, "page", url_key(link.url))
                    for link in sitemap.pages
                    if self.wants(link.url, link.lastmod)
                ]
            elif sitemap.pages:
                self.report.notes.append(
                    f"{document.source}: {len(sitemap.pages)} entries without a news title "
                    "not fetched (--follow fetches their pages)"
                )
        elif kind == "page":
            result = read_page(document, self.site, **opts)  # type: ignore[arg-type]
            if task.origin and len(result.valid):
                page_url = str(result.valid["url"].iat[0])
                if url_key(page_url) != task.origin:
                    self.aliases[task.origin] = page_url
        elif kind == "text-page":
            page = read_text_page(
                document,
                self.site,
                site_names={s.display_name: key for key, s in self.config.sites.items()},
                url=self.options.page_url,
                published_at=self.options.published_at,
                **opts,  # type: ignore[arg-type]
            )
            result = page.article
            self.report.block = pd.concat([self.report.block, page.block], ignore_index=True)
        elif kind == "table":
            result = self._table(task, document)
        else:
            raise ValueError(f"unknown format {kind!r}")
        self.articles.append(result)
        problems = result.problems
        if ((problems["row"] == 0) & (problems["action"] == "rejected")).any():
            # A document rejected as a whole (or cut short): its listing is not complete.
            self.complete = False
            if not len(result.valid):
                self.report.documents_failed += 1
        return follow

    def _table(self, task: _Task, document: Document) -> LoadResult:
        """A tidy article table (CSV, JSON Lines, Parquet), read by :mod:`tables`."""
        if task.is_url or not task.location.lower().removesuffix(".gz").endswith(_TABLE_SUFFIXES):
            raise DocumentError(
                "an article table must be a local .csv, .tsv, .jsonl or .parquet file"
            )
        result = read_articles(
            task.location,
            sites=list(self.config.sites),
            max_decoded_bytes=self.options.limits.max_document_bytes,
        )
        result.valid = result.valid.assign(
            modified_at=pd.Series(pd.NaT, index=result.valid.index, dtype="datetime64[ns, UTC]")
        )
        return result

    def handle_fetched(self, task: _Task, fetched: Fetched) -> list[_Task]:
        if fetched.not_modified:
            self.report.not_modified += 1
            self.complete = False  # a 304 says nothing about what the listing holds now
            return []
        if fetched.document is not None:
            return self.read_safely(task, fetched.document)
        if fetched.gone and task.format == "page":
            self.gone.append(task.location)
            return []
        self.fail(task.location, fetched.error or f"HTTP {fetched.status}")
        return []

    def read_safely(self, task: _Task, document: Document) -> list[_Task]:
        try:
            return self.read(task, document)
        except (SchemaError, DocumentError) as error:
            self.fail(document.source, str(error))
            return []

    async def collect(self, sources: Sequence[str], validators: dict[str, dict[str, str]]) -> None:
        """Read every source and what it leads to, in rounds (see module docs)."""
        forced = None if self.options.format == "auto" else self.options.format
        queue = [_Task(s, forced) for s in _expand(sources, self.report)]
        async with Fetcher(self.options.fetch, validators) as fetcher:
            while queue:
                queue = [t for t in queue if t.location not in self.seen]
                budget = self.options.max_documents - len(self.seen)
                if len(queue) > budget:
                    self.report.notes.append(
                        f"stopped after {self.options.max_documents} documents; "
                        f"{len(queue) - budget} linked documents not read"
                    )
                    self.complete = False
                    queue = queue[:budget]
                self.seen.update(t.location for t in queue)
                following: list[_Task] = []
                urls = [t for t in queue if t.is_url]
                for task, fetched in zip(
                    urls, await fetcher.fetch_all([t.location for t in urls]), strict=True
                ):
                    following += self.handle_fetched(task, fetched)
                for task in (t for t in queue if not t.is_url):
                    try:
                        document = read_file(task.location, self.options.limits)
                    except DocumentError as error:
                        self.fail(task.location, error.reason)
                        continue
                    following += self.read_safely(task, document)
                queue = following
            validators.clear()
            validators.update(fetcher.validators)

    # -- storing -------------------------------------------------------------
    def incoming(self) -> pd.DataFrame:
        """Every valid article read, in order, followed pages' URLs put on their items."""
        frames = [r.valid for r in self.articles if len(r.valid)]
        if not frames:
            return pd.DataFrame(columns=[*INGEST_ARTICLE_DTYPES, "_file", "_row"])
        incoming = pd.concat(frames, ignore_index=True)
        if self.aliases:
            keys = incoming["url"].astype(str).map(url_key)
            moved = keys.isin(self.aliases.keys())
            new_urls = keys[moved].map(self.aliases)
            incoming.loc[moved, "url"] = new_urls
            incoming.loc[moved, "article_id"] = [
                article_id_for(site, url)
                for site, url in zip(incoming.loc[moved, "site"], new_urls, strict=True)
            ]
        return incoming


def _expand(sources: Sequence[str], report: IngestReport) -> list[str]:
    """URLs as they are, paths with glob patterns expanded (a pattern that
    matches nothing is noted)."""
    expanded: list[str] = []
    for source in sources:
        if source.startswith(("http://", "https://")):
            expanded.append(source)
            continue
        matches = [str(p) for p in expand_paths(source)]
        if not matches:
            report.notes.append(f"{source}: the pattern matches no file")
        expanded += matches
    return expanded


def ingest(
    sources: Sequence[str],
    config: Config,
    *,
    corpus_path: Path,
    events_path: Path | None = None,
    state_path: Path | None = None,
    options: IngestOptions,
    now: pd.Timestamp | None = None,
) -> IngestReport:
    """Ingest ``sources`` into the corpus (and events file) and report (see module docs).

    ``state_path``: where HTTP validators are kept between runs (default:
    beside the corpus, ``<corpus>.fetch-state.json``). ``now``: the reference
    time for absurd dates and bookkeeping (default: the clock).
    """
    now = now or pd.Timestamp.now(tz="UTC")
    state_path = state_path or corpus_path.with_name(f"{corpus_path.name}.fetch-state.json")
    report = IngestReport(options.site, corpus_path, events_path)
    with corpus_lock(corpus_path):
        corpus = Corpus.load(corpus_path)
        run = _Run(config, options, corpus, report, now)
        validators = load_state(state_path)
        before = dict(validators)
        asyncio.run(run.collect(sources, validators))

        results = run.articles
        report.articles_read = sum(r.n_read for r in results)
        complete = [options.site] if options.complete and run.complete else []
        if options.complete and not run.complete:
            report.notes.append(
                "--complete ignored: not every source was read in full (failed, not modified "
                "or cut short), so absence from them proves nothing"
            )
        counts, refused = corpus.upsert(
            run.incoming(), gone=run.gone, complete_sites=complete, now=now
        )
        report.counts = counts
        if counts.changed:
            corpus.save(corpus_path)
        report.corpus_size = len(corpus.articles)
        run.problems += [r.problems for r in results]
        if len(refused):
            run.problems.append(refused)

        if run.traffic:
            _ingest_traffic(run, events_path)
        if validators != before:
            save_state(state_path, validators)

    report.rejected = _rejected(run.problems)
    report.events_rejected = _rejected(run.traffic_problems)
    problems = [p for p in [*run.problems, *run.traffic_problems] if len(p)]
    report.problems = pd.concat(problems, ignore_index=True) if problems else problems_frame([])
    return report


def _rejected(problems: list[pd.DataFrame]) -> int:
    """Records rejected: distinct (file, row) among the problems that reject."""
    frames = [p[p["action"] == "rejected"] for p in problems if len(p)]
    if not frames:
        return 0
    return len(pd.concat(frames)[["file", "row"]].drop_duplicates())


def _ingest_traffic(run: _Run, events_path: Path | None) -> None:
    report = run.report
    if events_path is None:
        for document, _ in run.traffic:
            run.fail(document.source, "traffic needs an events file (--events PATH)")
        return
    log = EventLog.load(events_path)
    articles = run.corpus.articles
    opts = {"articles": articles, "limits": run.options.limits, "now": run.now}
    for document, kind in run.traffic:
        reader = read_access_log if kind == "access-log" else read_analytics
        traffic = reader(document, run.site, **opts)  # type: ignore[arg-type]
        run.traffic_problems.append(traffic.events.problems)
        report.events_read += traffic.events.n_read
        report.bots += traffic.bots
        report.skipped_hits += traffic.skipped
        report.events_unmatched += traffic.unmatched
        added, repeated = log.append(traffic.events.valid)
        report.events_added += added
        report.events_repeated += repeated
    if report.events_added:
        log.save(events_path)
