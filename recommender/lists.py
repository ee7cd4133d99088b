"""The published result: recommendation lists and the runs that produced them.

Plain frozen dataclasses with a JSON form, standard library only: the store and
the serving path use them without numpy, pandas or scikit-learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: The block's heading, as the network's pages show it.
HEADING = "A mix of what's trending on our other sites"
#: Source id of a site's page without an article (its home page).
SITE_PAGE_PREFIX = "site:"
#: Source id of the network-wide trending mix (fallback of last resort).
NETWORK_PAGE = "network"
#: Source id prefix of a site's section page (``section:<site>:<category label>``).
SECTION_PAGE_PREFIX = "section:"
#: Source id prefix of an article's related-only list (``related:<article id>``).
RELATED_PREFIX = "related:"


#: ``RecommendationList.fallback_source`` of the fallbacks, in the order tried.
FALLBACK_SITE, FALLBACK_NETWORK, FALLBACK_EMPTY = "site", "network", "empty"


def site_page_id(site: str) -> str:
    """Source id under which a site's article-less page list is published."""
    return f"{SITE_PAGE_PREFIX}{site}"


def section_page_id(site: str, category: str) -> str:
    """Source id of ``site``'s section page of its own ``category`` label
    (e.g. ``section:japantoday:Politics``)."""
    return f"{SECTION_PAGE_PREFIX}{site}:{category}"


def related_page_id(article_id: str) -> str:
    """Source id of ``article_id``'s related-only list (published only when
    ``[mix] related_lists`` is on)."""
    return f"{RELATED_PREFIX}{article_id}"


#: Source id prefix of an experiment variant's list of an article
#: (``variant:<experiment>:<variant>:<article id>``).
VARIANT_PREFIX = "variant:"


def variant_page_id(experiment: str, variant: str, article_id: str) -> str:
    """Source id of ``article_id``'s list in ``variant`` of ``experiment``
    (published for variants with settings of their own)."""
    return f"{VARIANT_PREFIX}{experiment}:{variant}:{article_id}"


def fallback_kind(source_id: str) -> str:
    """Which fallback the list published under ``source_id`` is: ``"site"`` for
    a site's page, ``"network"`` for the network's mix, else ``"article"``."""
    if source_id == NETWORK_PAGE:
        return FALLBACK_NETWORK
    if source_id.startswith(SITE_PAGE_PREFIX):
        return FALLBACK_SITE
    return "article"


@dataclass(frozen=True, slots=True)
class Item:
    """One recommended article, with the parts of its score.

    ``score`` is the blend ``w_relevance * relevance + w_trend * trend +
    w_freshness * freshness``; each part lies in [0, 1]. ``reason`` is
    ``"related"`` when the item was chosen for its similarity to the source
    article, ``"trending"`` when it came from the trending pool and
    ``"pinned"`` when an editor pinned it to its slot (then ``pinned`` is
    true, and ``label`` the pin's label, e.g. "Sponsored", if it has one);
    both are left out of :meth:`to_dict` when unset.
    """

    article_id: str
    site: str
    site_name: str
    category: str
    title: str
    url: str
    image_url: str | None
    score: float
    relevance: float
    trend: float
    freshness: float
    reason: str
    label: str | None = None
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "article_id": self.article_id,
            "site": self.site,
            "site_name": self.site_name,
            "category": self.category,
            "title": self.title,
            "url": self.url,
            "image_url": self.image_url,
            "score": self.score,
            "relevance": self.relevance,
            "trend": self.trend,
            "freshness": self.freshness,
            "reason": self.reason,
        }
        # Only when set, so that lists stored before these fields stay byte-identical.
        if self.label is not None:
            data["label"] = self.label
        if self.pinned:
            data["pinned"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class RecommendationList:
    """The ordered items shown on one page.

    ``source_id`` is an article id, ``site:<key>`` for a site's page without an
    article, or ``network`` for the network-wide trending mix. ``fallback`` says
    the list is not the page's own (e.g. the site's trending mix served for an
    unknown article id); ``fallback_source`` then says which one was served:
    ``"site"`` (the page's site's mix), ``"network"`` (the network's mix) or
    ``"empty"`` (none could be had); it is ``""`` for a page's own list.
    """

    source_id: str
    site: str | None
    items: tuple[Item, ...]
    run_id: str
    generated_at: str  # ISO 8601, UTC
    fallback: bool = False
    fallback_source: str = ""

    def top(self, k: int) -> RecommendationList:
        """The same list cut to its first ``k`` items."""
        if k >= len(self.items):
            return self
        return RecommendationList(
            self.source_id,
            self.site,
            self.items[:k],
            self.run_id,
            self.generated_at,
            self.fallback,
            self.fallback_source,
        )

    def as_fallback_for(self, source_id: str) -> RecommendationList:
        """This list served in place of ``source_id``'s own."""
        return RecommendationList(
            source_id,
            self.site,
            self.items,
            self.run_id,
            self.generated_at,
            True,
            fallback_kind(self.source_id) if self.items else FALLBACK_EMPTY,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "site": self.site,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "fallback": self.fallback,
            "fallback_source": self.fallback_source,
            "items": [item.to_dict() for item in self.items],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecommendationList:
        return cls(
            source_id=data["source_id"],
            site=data.get("site"),
            items=tuple(Item.from_dict(i) for i in data["items"]),
            run_id=data["run_id"],
            generated_at=data["generated_at"],
            fallback=bool(data.get("fallback", False)),
            fallback_source=str(data.get("fallback_source") or ""),
        )

    @classmethod
    def from_json(cls, text: str) -> RecommendationList:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class SerializedList:
    """A list already in its JSON form (as :meth:`RecommendationList.to_json`
    writes it): what the batch hands the store, built in bulk."""

    source_id: str
    json: str

    def to_json(self) -> str:
        return self.json

    def decode(self) -> RecommendationList:
        return RecommendationList.from_json(self.json)


#: What a store publishes: lists as objects or already serialised.
PublishableList = RecommendationList | SerializedList


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A batch run as the store records it.

    ``status``: ``current`` (being served), ``kept`` (published earlier, can
    be rolled back to) or ``failed`` (recorded, never served); ``published``
    when given to :meth:`Store.publish`. ``summary``: the run's figures
    (input counts, coverage, seconds per stage). ``published_at`` and
    ``created_at``: ISO 8601, UTC. ``error``: why a failed run failed.
    ``n_lists``: how many lists the run serves.

    ``base_run_id``: for a *delta* run (written by
    :meth:`Store.publish_changes`), the full run it stores its differences
    from; empty for a full run. ``delta_rows``: how many rows a delta run
    stores (its changed and added lists, plus one per list removed from its
    base); 0 for a full run.
    """

    run_id: str
    created_at: str
    config_hash: str = ""
    model_version: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "published"
    n_lists: int = 0
    published_at: str = ""
    error: str = ""
    base_run_id: str = ""
    delta_rows: int = 0

    @property
    def is_delta(self) -> bool:
        """Whether the run stores only its differences from ``base_run_id``."""
        return bool(self.base_run_id)
