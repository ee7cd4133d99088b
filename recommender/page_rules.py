"""Which candidates a page may show, beyond eligibility: the rules that
depend on the page (its site, its category) as well as on the candidate.

- **Languages.** A site's pages show only articles in the languages its
  readers read (``[sites.<key>] languages``, default its own ``language``);
  an article's language is its row's ``language``, else its site's.
- **Brand safety.** A site may ask that its articles never appear on pages
  of some categories (``[sites.<key>] avoid_categories``: network category
  keys or the page's own labels).
- **Site-scoped blocks.** An editorial block with a ``site`` removes the
  article from that site's lists only (a block for every site is applied as
  ineligibility instead, see :func:`blocked_everywhere`).
- **Pins.** The active pins of each page, as article rows and slots
  (:class:`PinTable`).

Everything is vectorised over the candidates of a block of pages; a network
without any of these rules costs nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.config import SiteConfig
from recommender.editorial import Block, EditorialRules
from recommender.lists import SECTION_PAGE_PREFIX, SITE_PAGE_PREFIX


def _article_languages(articles: pd.DataFrame, sites: Mapping[str, SiteConfig]) -> pd.Series:
    by_site = {key: site.language.lower() for key, site in sites.items()}
    site_language = articles["site"].astype(str).map(lambda key: by_site.get(key, ""))
    if "language" in articles:
        own = articles["language"].fillna("").astype(str).str.lower()
        return own.mask(own == "", site_language)
    return site_language


def block_matches(block: Block, articles: pd.DataFrame) -> np.ndarray:
    """Mask of the articles ``block`` matches (whatever its site)."""
    kind, value = block.target
    if kind == "article":
        return (articles["article_id"].astype(str) == value).to_numpy()
    if kind == "url":
        urls = articles["url"].fillna("").astype(str)
        return urls.str.match(fnmatch.translate(value)).to_numpy(dtype=bool)
    if kind == "tag":
        if "tags" not in articles:
            return np.zeros(len(articles), dtype=bool)
        tags = "|" + articles["tags"].fillna("").astype(str) + "|"
        return tags.str.contains(f"|{value}|", regex=False).to_numpy(dtype=bool)
    labels = articles["category"].fillna("").astype(str)
    keys = articles.get("category_key", labels).fillna("").astype(str)
    return ((labels == value) | (keys == value)).to_numpy()


def blocked_everywhere(rules: EditorialRules, articles: pd.DataFrame) -> np.ndarray:
    """Mask of the articles a block without a site removes from every list."""
    out = np.zeros(len(articles), dtype=bool)
    for block in rules.blocks:
        if block.site is None:
            out |= block_matches(block, articles)
    return out


@dataclass(frozen=True)
class PagePin:
    row: int
    slot: int  # 0-based
    label: str | None


class PinTable:
    """The pins of every page, resolved to article rows (pins of articles
    not in the corpus are dropped and counted in ``missing``)."""

    def __init__(self, rules: EditorialRules, article_ids: np.ndarray) -> None:
        self.rules = rules
        index = pd.Index(np.asarray(article_ids, dtype=object))
        rows = index.get_indexer([p.article for p in rules.pins]) if rules.pins else []
        self._row = {p.id: int(r) for p, r in zip(rules.pins, rows, strict=True) if r >= 0}
        self.missing = sorted(p.id for p in rules.pins if p.id not in self._row)
        self.pages = {p.page for p in rules.pins if p.page is not None}
        self._index = index
        self._cache: dict[tuple[str | None, str | None], list[PagePin]] = {}

    def __bool__(self) -> bool:
        return bool(self._row)

    def row_of_article(self, article_id: str) -> int | None:
        """The row of ``article_id`` (None when not in the corpus)."""
        found = int(self._index.get_indexer([article_id])[0])
        return None if found < 0 else found

    def for_page(self, source_id: str, site: str | None) -> list[PagePin]:
        key = (source_id if source_id in self.pages else None, site)
        found = self._cache.get(key)
        if found is None:
            found = [
                PagePin(self._row[p.id], p.slot - 1, p.label)
                for p in self.rules.pins_for(source_id, site)
                if p.id in self._row
            ]
            self._cache[key] = found
        return found

    def report(
        self,
        site_values: np.ndarray,
        bucket_codes: np.ndarray,
        max_per_site: int,
        max_per_category: int,
    ) -> list[str]:
        """What editors should know of this run's pins: pins of articles not
        in the corpus (never shown), and pages whose pins alone exceed a cap
        (the pins are all shown; the rest of the list keeps to the caps). One
        line per finding, naming the pins."""
        lines = [f"pin {pin}: its article is not in the corpus: not shown" for pin in self.missing]
        sites = sorted({str(s) for s in site_values})
        # Every kind of page a pin combination can meet: each site's pages, and each pinned page.
        pages: list[tuple[str, str | None, str]] = [("", site, f"{site}'s pages") for site in sites]
        for page in sorted(self.pages):
            pages.append((page, _site_of_page(page, self, site_values), f"page {page}"))
        seen: set[tuple[str, ...]] = set()
        for source_id, site, where in pages:
            pins = [p for p in self.rules.pins_for(source_id, site) if p.id in self._row]
            key = tuple(p.id for p in pins)
            if len(pins) < 2 or key in seen:
                continue  # a set of pins is reported once, on the first page it meets
            seen.add(key)
            for label, codes, cap, name in (
                ("site", site_values, max_per_site, "max_per_site"),
                ("category", bucket_codes, max_per_category, "max_per_category"),
            ):
                groups: dict[object, list[str]] = {}
                for pin in pins:
                    groups.setdefault(codes[self._row[pin.id]], []).append(pin.id)
                for value, ids in groups.items():
                    if len(ids) > cap:
                        shown = value if label == "site" else f"one {label}"
                        lines.append(
                            f"pins on {where}: {len(ids)} pinned items from {shown} exceed "
                            f"{name} = {cap} (pins {', '.join(ids)}): all are shown"
                        )
        return lines

    def arrays(
        self, source_ids: Sequence[str], site: str | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, slots), each (pages, P) with -1 pads, of the pages of one
        site; None when none of them has a pin."""
        per_page = [self.for_page(str(s), site) for s in source_ids]
        width = max((len(p) for p in per_page), default=0)
        if width == 0:
            return None
        rows = np.full((len(per_page), width), -1, dtype=np.int64)
        slots = np.full((len(per_page), width), -1, dtype=np.int64)
        for i, pins in enumerate(per_page):
            for j, pin in enumerate(pins):
                rows[i, j], slots[i, j] = pin.row, pin.slot
        return rows, slots

    def pages_with_pins(self, source_ids: np.ndarray, sites: np.ndarray) -> np.ndarray:
        """Mask of the pages (ids and sites) that have a pin of an article
        in the corpus: a pin for every site, for their site or for them."""
        resolved = [p for p in self.rules.pins if p.id in self._row]
        if any(p.page is None and p.site is None for p in resolved):
            return np.ones(len(source_ids), dtype=bool)
        on_sites = [str(p.site) for p in resolved if p.page is None]
        on_pages = [str(p.page) for p in resolved if p.page is not None]
        return np.isin(np.asarray(sites, dtype=object).astype(str), on_sites) | np.isin(
            np.asarray(source_ids, dtype=object).astype(str), on_pages
        )

    def marks(
        self, source_ids: np.ndarray, source_sites: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which items of these lists were placed by a pin, and each one's
        label (None where none): a pinned article is never a plain
        candidate of its page, so an item is pinned exactly when it is one
        of its page's pins."""
        pinned = np.zeros(items.shape, dtype=bool)
        labels = np.full(items.shape, None, dtype=object)
        if not self:
            return pinned, labels
        for i in np.flatnonzero(self.pages_with_pins(source_ids, source_sites)):
            source_id, site = source_ids[i], source_sites[i]
            for pin in self.for_page(str(source_id), None if site is None else str(site)):
                at = items[i] == pin.row
                pinned[i] |= at
                labels[i][at] = pin.label
        return pinned, labels


def _site_of_page(page: str, pins: PinTable, site_values: np.ndarray) -> str | None:
    """The site of a pinned page: a site's or section page names it; an
    article's page is its article's site (None when not in the corpus)."""
    if page.startswith(SITE_PAGE_PREFIX):
        return page[len(SITE_PAGE_PREFIX) :]
    if page.startswith(SECTION_PAGE_PREFIX):
        return page[len(SECTION_PAGE_PREFIX) :].split(":", 1)[0]
    row = pins.row_of_article(page)
    return None if row is None else str(site_values[row])


class PageRules:
    """The page-dependent rules of one run, as arrays over the articles."""

    def __init__(
        self,
        articles: pd.DataFrame,
        site_keys: Sequence[str],
        site_codes: np.ndarray,
        sites: Mapping[str, SiteConfig],
        rules: EditorialRules,
    ) -> None:
        n = len(articles)
        self.site_keys = list(site_keys)
        code_of = {key: i for i, key in enumerate(self.site_keys)}
        # Languages: a (sites, languages) table of what each site's pages may show.
        languages = _article_languages(articles, sites)
        codes, names = pd.factorize(languages)
        self.language_codes = codes.astype(np.int64)
        self.language_ok: np.ndarray | None = None
        if len(names) > 1:
            table = np.ones((len(self.site_keys), len(names)), dtype=bool)
            for key, site in sites.items():
                if key in code_of:
                    shown = {x.lower() for x in (site.languages or [site.language])}
                    table[code_of[key]] = [name in shown for name in names]
            if not table.all():
                self.language_ok = table
        # Brand safety: per avoiding site, the pages (article rows) it avoids.
        self.avoid: list[tuple[int, np.ndarray]] = []
        labels = articles["category"].fillna("").astype(str)
        keys = articles.get("category_key", labels).fillna("").astype(str)
        for key, site in sites.items():
            if site.avoid_categories and key in code_of:
                hit = labels.isin(site.avoid_categories) | keys.isin(site.avoid_categories)
                if hit.any():
                    self.avoid.append((code_of[key], hit.to_numpy()))
        self.site_codes = site_codes
        # Blocks for one site's lists.
        self.blocked_on: dict[int, np.ndarray] = {}
        for block in rules.blocks:
            if block.site is not None and block.site in code_of:
                code = code_of[block.site]
                mask = self.blocked_on.get(code, np.zeros(n, dtype=bool))
                self.blocked_on[code] = mask | block_matches(block, articles)

    def __bool__(self) -> bool:
        return self.language_ok is not None or bool(self.avoid) or bool(self.blocked_on)

    def allowed(
        self, candidates: np.ndarray, source_rows: np.ndarray, page_sites: np.ndarray
    ) -> np.ndarray:
        """Mask of the candidates (rows, >= 0) the pages may show: pages'
        article rows ``source_rows`` (-1 for none) and site codes
        ``page_sites`` (-1 for the network's page), each broadcastable to
        ``candidates``."""
        ok = np.ones(np.broadcast_shapes(candidates.shape, np.shape(page_sites)), dtype=bool)
        page_sites = np.broadcast_to(page_sites, ok.shape)
        on_site = page_sites >= 0
        if self.language_ok is not None:
            lang = self.language_codes[candidates]
            ok &= ~on_site | self.language_ok[np.maximum(page_sites, 0), lang]
        if self.avoid:
            rows = np.broadcast_to(source_rows, ok.shape)
            on_page = rows >= 0
            cand_sites = self.site_codes[candidates]
            for code, pages in self.avoid:
                ok &= ~(on_page & pages[np.maximum(rows, 0)] & (cand_sites == code))
        for code, mask in self.blocked_on.items():
            ok &= ~((page_sites == code) & mask[candidates])
        return ok


__all__ = ["PagePin", "PageRules", "PinTable", "block_matches", "blocked_everywhere"]
