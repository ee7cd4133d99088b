"""List payloads: a fitted model's lists as :class:`RecommendationList` objects
and as the JSON the store publishes, built in bulk with Arrow's string kernels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring as encode_string
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.columns import as_arrow
from recommender.lists import Item, RecommendationList, SerializedList
from recommender.mix import MixedLists
from recommender.model.stages import Stages


def recommendation_lists(
    model: Stages,
    run_id: str,
    generated_at: str | None = None,
    *,
    positions: Iterable[int] | None = None,
    lists: MixedLists | None = None,
) -> Iterator[RecommendationList]:
    """The work of :meth:`~recommender.model.Recommender.recommendation_lists`
    (see there), on a fitted ``model``."""
    generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    lists = model.lists_ if lists is None else lists
    chosen = np.arange(len(lists)) if positions is None else np.fromiter(positions, int)
    # The item fields of just the articles these lists show.
    shown = np.unique(lists.items[chosen][lists.items[chosen] >= 0])
    names = {key: site.display_name for key, site in model.config.sites.items()}
    field = {
        name: dict(zip(shown.tolist(), values, strict=True))
        for name, values in item_fields(model, shown).items()
    }
    site_names = {r: names.get(str(site), str(site)) for r, site in field["site"].items()}
    min_relevance = model.config.mix.min_relevance
    pins = model._pin_table()
    for i in chosen.tolist():
        rows = lists.items[i].tolist()
        n_items = sum(r >= 0 for r in rows)
        score, relevance, trend, freshness = (
            rounded(getattr(lists, part)[i])
            for part in ("score", "relevance", "trend", "freshness")
        )
        pinned, labels = pins.marks(
            lists.source_ids[i : i + 1], lists.source_sites[i : i + 1], lists.items[i : i + 1]
        )
        items = tuple(
            Item(
                article_id=field["article_id"][r],
                site=field["site"][r],
                site_name=site_names[r],
                category=field["category"][r] or "",
                title=field["title"][r],
                url=field["url"][r],
                image_url=field["image_url"][r],
                score=float(score[j]),
                relevance=float(relevance[j]),
                trend=float(trend[j]),
                freshness=float(freshness[j]),
                reason="pinned"
                if pinned[0, j]
                else "related"
                if lists.relevance[i, j] >= min_relevance
                else "trending",
                label=labels[0, j],
                pinned=bool(pinned[0, j]),
            )
            for j, r in enumerate(rows[:n_items])
        )
        yield RecommendationList(
            str(lists.source_ids[i]), lists.source_sites[i], items, run_id, generated_at
        )


def list_payloads(
    model: Stages,
    run_id: str,
    generated_at: str | None = None,
    *,
    rows: np.ndarray | None = None,
    chunk: int = 100_000,
) -> Iterator[SerializedList]:
    """The work of :meth:`~recommender.model.Recommender.list_payloads`
    (see there), on a fitted ``model``."""

    generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    lists = model.lists_
    order = np.arange(len(lists)) if rows is None else np.asarray(rows)
    if order.dtype == bool:
        order = np.flatnonzero(order)
    chosen = lists.items[order]
    shown = np.unique(chosen[chosen >= 0])
    shown_cards = pa.array(cards(model, shown), type=pa.string())
    card_at = np.full(len(model.articles_), -1, dtype=np.int64)
    card_at[shown] = np.arange(len(shown))
    dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    tail = "]," + dumps({"run_id": run_id, "generated_at": generated_at, "fallback": False})[1:]
    min_relevance = model.config.mix.min_relevance
    pins = model._pin_table()
    for start in range(0, len(order), chunk):
        at = order[start : start + chunk]
        items_at = lists.items[at]
        valid = items_at >= 0
        offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
        numbers = [
            json_numbers(rounded(getattr(lists, part)[at])[valid])
            for part in ("score", "relevance", "trend", "freshness")
        ]
        reasons = np.where(
            lists.relevance[at][valid] >= min_relevance,
            ',"reason":"related"}',
            ',"reason":"trending"}',
        ).astype(object)
        if pins:
            pinned, labels = pins.marks(lists.source_ids[at], lists.source_sites[at], items_at)
            for n in np.flatnonzero(pinned[valid]):
                label = labels[valid][n]
                reasons[n] = (
                    ',"reason":"pinned"'
                    + ("" if label is None else f',"label":{dumps(label)}')
                    + ',"pinned":true}'
                )

        items = pc.binary_join_element_wise(
            shown_cards.take(pa.array(card_at[items_at[valid]])),
            ',"score":',
            numbers[0],
            ',"relevance":',
            numbers[1],
            ',"trend":',
            numbers[2],
            ',"freshness":',
            numbers[3],
            pa.array(reasons, type=pa.string()),
            "",
        )
        if isinstance(items, pa.ChunkedArray):
            items = items.combine_chunks()
        joined = pc.binary_join(
            pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), items), ","
        )
        source_ids = [str(source_id) for source_id in lists.source_ids[at]]
        heads = [
            f'{{"source_id":{encode_string(source_id)},"site":'
            f'{"null" if site is None else encode_string(site)},"items":['
            for source_id, site in zip(source_ids, lists.source_sites[at], strict=True)
        ]
        payloads = pc.binary_join_element_wise(pa.array(heads, type=pa.string()), joined, tail, "")
        for source_id, payload in zip(source_ids, payloads.to_pylist(), strict=True):
            yield SerializedList(source_id, payload)


def item_fields(model: Stages, rows: np.ndarray) -> dict[str, list[Any]]:
    """The fields an item shows (id, site, category, title, url, image)
    of the articles at ``rows``, as Python values (None when missing).

    Read from contiguous Arrow arrays of those columns, built once per
    model: taking a few rows from a frame's chunked string columns costs
    time in proportion to the whole column (~5 ms per column at a
    million articles), which a request for one list cannot afford."""

    columns = model.__dict__.get("_item_columns")
    if columns is None:
        columns = {}
        for name in ("article_id", "site", "category", "title", "url", "image_url"):
            columns[name] = as_arrow(model.articles_[name]).combine_chunks()  # NA -> null
        model.__dict__["_item_columns"] = columns
    at = pa.array(np.asarray(rows, dtype=np.int64))
    return {name: column.take(at).to_pylist() for name, column in columns.items()}


def cards(model: Stages, rows: np.ndarray) -> list[str]:
    """Each article's item fields as JSON, left open for the item's numbers."""
    names = {key: site.display_name for key, site in model.config.sites.items()}
    dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    columns = list(item_fields(model, rows).values())
    return [
        dumps(
            {
                "article_id": article_id,
                "site": site,
                "site_name": names.get(site, site),
                "category": category or "",
                "title": title,
                "url": url,
                "image_url": image_url,
            }
        )[:-1]
        for article_id, site, category, title, url, image_url in zip(*columns, strict=True)
    ]


def json_numbers(values: np.ndarray) -> Any:
    """float64 values as Arrow strings that JSON reads back as the same floats
    (Arrow's shortest round-trip form; integral values get ``.0`` so that they
    stay floats)."""

    text = pc.cast(pa.array(values, type=pa.float64()), pa.string())
    return pc.replace_substring_regex(text, pattern=r"^(-?[0-9]+)$", replacement=r"\1.0")


def rounded(values: np.ndarray) -> np.ndarray:
    """Score parts as published: float64, 6 decimals (one rule for both list forms)."""
    return np.round(values.astype(np.float64), 6)


__all__ = [
    "cards",
    "item_fields",
    "json_numbers",
    "list_payloads",
    "recommendation_lists",
    "rounded",
]
