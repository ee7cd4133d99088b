"""The incremental update: a new model from the current articles and events
that keeps a fitted model's state and recomputes only what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from recommender.columns import rows_of, take_rows
from recommender.mix import MixedLists, Mixer, concat_lists
from recommender.model.payloads import cards
from recommender.model.rows import assemble_rows, same_content
from recommender.model.stages import Stages
from recommender.progress import StageTimer
from recommender.similarity import Neighbors, best_first
from recommender.trending import TrendBaseline

M = TypeVar("M", bound=Stages)


def update_model(
    old: M,
    articles: pd.DataFrame,
    events: pd.DataFrame,
    now: datetime | pd.Timestamp | None = None,
    progress: StageTimer | None = None,
    *,
    incremental: bool = True,
) -> M:
    """The work of :meth:`Recommender.update <recommender.model.Recommender.update>`
    (see there): a new model of ``old``'s class, ``old`` already checked fitted."""
    progress = progress or StageTimer()
    model = type(old)(old.config)
    # The refit's trending settings (tuned on its log, see Stages._trend_and_groups).
    model.trending_ = getattr(old, "trending_", old.config.trending)
    model.tuning_ = {
        **getattr(old, "tuning_", {"tuned": False, "reason": "no tuning recorded"}),
        "kept_from_refit": True,
    }
    with progress.stage("features", total=len(articles)):
        articles = model._prepare(articles, now)
        previous = rows_of(articles["article_id"], old.articles_["article_id"])
        same = same_content(old.articles_, previous, articles)
        model.vectorizer_ = old.vectorizer_
        model.vocabulary_fitted_at_ = old.vocabulary_fitted_at_
        model.X_ = assemble_rows(
            old.X_,
            previous,
            same,
            lambda rows: model.vectorizer_.transform(take_rows(articles, rows)),
        )
    n = len(articles)
    # Old row -> new row of each article kept unchanged; -1 otherwise.
    new_of_old = np.full(len(old.articles_), -1, dtype=np.int64)
    new_of_old[previous[same]] = np.flatnonzero(same)
    model._eligibility()
    # Ties rank by row: reusing old results is exact when kept articles keep their order.
    ordered = bool(np.all(np.diff(previous[same]) > 0))
    reuse = incremental and ordered
    with progress.stage("similarity", total=n) as advance:
        if reuse:
            recomputed = _merge_neighbors(model, old, previous, same, new_of_old, advance)
        else:
            model._set_neighbors(
                model._neighbors(candidates=model.eligible_, deep=True, on_progress=advance)
            )
            recomputed = n
    # The trend baseline is fitted with the vocabulary, and reused with it.
    baseline = getattr(old, "trend_baseline_", None)
    if reuse:
        mixed = _score_reusing(model, old, previous, same, new_of_old, events, progress, baseline)
    else:
        model._score(events, progress, baseline, getattr(old, "title_links_", None))
        mixed = n
    _find_list_changes(model, old, previous, same, new_of_old)
    model.update_stats_ = {
        "incremental": reuse,
        "articles": n,
        "new": int((previous < 0).sum()),
        "changed": int(((previous >= 0) & ~same).sum()),
        "removed": len(old.articles_) - int((previous >= 0).sum()),
        "rows_recomputed": int(recomputed),
        "lists_mixed": int(mixed),
        "lists_changed": int(model.changed_lists_.sum()),
        "lists_removed": len(model.removed_sources_),
    }
    return model


def _merge_neighbors(
    model: Stages,
    old: Stages,
    previous: np.ndarray,
    same: np.ndarray,
    new_of_old: np.ndarray,
    advance: Callable[[int], None],
    *,
    block: int = 4096,
) -> int:
    """Neighbours equal to a full computation, recomputing only what
    changed; returns how many lists were computed in full.

    A kept article's previous list, less the candidates it lost
    (removed, changed, no longer eligible), is still the exact top of the
    unchanged candidates down to its depth (its *part*). Merged with the
    arriving candidates (new, changed, newly eligible) that rank ahead of
    the part's last entry — a product over those columns only, keeping
    only scores that reach that entry's — it is exact down to where the
    part ends. Articles whose part is shorter than k, and new and changed
    ones, are computed in full. Row arrays are worked a ``block`` of rows
    at a time (in cache).
    """
    n = len(model.articles_)
    similarity = model.config.similarity
    k, width = similarity.k, similarity.k + similarity.reserve
    old_eligible = np.zeros(n, dtype=bool)
    old_eligible[same] = old.eligible_[previous[same]]
    arrivals = model.eligible_ & ~old_eligible

    kept = np.flatnonzero(same)
    old_reserve = getattr(old, "reserve_", None)
    old_parts = [old.neighbors_] + ([old_reserve] if old_reserve is not None else [])
    old_width = sum(part.k for part in old_parts)
    old_depth = getattr(old, "depth_", None)
    if old_depth is None:
        old_depth = np.full(len(old.articles_), old_width, dtype=np.int32)
    # Old row -> new row (-1: not kept; and for a -1 pad, the last entry).
    new_row = np.append(new_of_old, -1).astype(np.int32)
    candidate = np.append(model.eligible_, False)
    part_idx = np.empty((len(kept), old_width), dtype=np.int32)
    part_val = np.empty((len(kept), old_width), dtype=np.float32)
    exhausted = np.empty(len(kept), dtype=bool)
    n_part = np.empty(len(kept), dtype=np.int64)
    b_val = np.empty(len(kept), dtype=np.float32)
    b_idx = np.empty(len(kept), dtype=np.int64)
    columns = np.arange(old_width)
    for start in range(0, len(kept), block):
        at = slice(start, start + block)
        before = previous[kept[at]]
        idx = np.hstack([part.indices[before] for part in old_parts])
        val = np.hstack([part.scores[before] for part in old_parts])
        within = columns[None, :] < old_depth[before][:, None]
        # No further candidate: a -1 inside the depth.
        exhausted[at] = (within & (idx < 0)).any(axis=1)
        idx = np.where(within, new_row[idx], -1)
        still = candidate[idx]
        idx[~still], val[~still] = -1, 0.0
        n_part[at] = still.sum(axis=1)
        # b: the part's last entry (lost ones leave holes: best_first closes them).
        last = old_width - 1 - np.argmax(still[:, ::-1], axis=1)
        b_val[at] = val[np.arange(len(idx)), last]
        b_idx[at] = idx[np.arange(len(idx)), last]
        part_idx[at], part_val[at] = idx, val

    # Exact down to b: add the arrivals ranking before b (all, when exhausted).
    merge = np.flatnonzero(exhausted | (n_part >= k))
    b_val[exhausted], b_idx[exhausted] = 0.0, n
    if arrivals.any() and len(merge):
        fresh = model._neighbors(
            candidates=arrivals, rows=kept[merge], deep=True, floors=b_val[merge]
        )
    else:
        fresh = Neighbors(
            np.full((len(merge), width), -1, dtype=np.int32),
            np.zeros((len(merge), width), dtype=np.float32),
        )
    # Written straight into neighbors_ (the first k) and reserve_ (the rest).
    near = Neighbors(np.full((n, k), -1, dtype=np.int32), np.zeros((n, k), dtype=np.float32))
    far = Neighbors(
        np.full((n, width - k), -1, dtype=np.int32),
        np.zeros((n, width - k), dtype=np.float32),
    )
    depths = np.full(n, width, dtype=np.int32)

    def put(rows: np.ndarray, found: Neighbors) -> None:
        near.indices[rows], near.scores[rows] = found.indices[:, :k], found.scores[:, :k]
        far.indices[rows], far.scores[rows] = found.indices[:, k:], found.scores[:, k:]

    for start in range(0, len(merge), block):
        chosen = merge[start : start + block]
        f_idx, f_val = fresh.indices[start : start + block], fresh.scores[start : start + block]
        # Ties with b rank by row: those after b are not ahead of it.
        behind = (f_val == b_val[chosen][:, None]) & (f_idx > b_idx[chosen][:, None])
        f_idx[behind], f_val[behind] = -1, 0.0
        gained = (f_idx >= 0).sum(axis=1)
        merged = best_first(
            [Neighbors(part_idx[chosen], part_val[chosen]), Neighbors(f_idx, f_val)], width
        )
        rows = kept[chosen]
        put(rows, merged)
        depths[rows] = np.where(
            exhausted[chosen], width, np.minimum(width, n_part[chosen] + gained)
        )
    full_rows = np.concatenate([np.flatnonzero(~same), np.delete(kept, merge)])
    if len(full_rows):
        put(full_rows, model._neighbors(candidates=model.eligible_, rows=full_rows, deep=True))
    model.neighbors_, model.reserve_, model.depth_ = near, far, depths
    advance(n)
    return len(full_rows)


def _score_reusing(
    model: Stages,
    old: Stages,
    previous: np.ndarray,
    same: np.ndarray,
    new_of_old: np.ndarray,
    events: pd.DataFrame,
    progress: StageTimer,
    baseline: TrendBaseline | None,
) -> int:
    """:meth:`_score`, reusing ``old``'s list of every kept article whose
    list cannot have changed; returns how many article lists were mixed.

    See :func:`_unchanged_lists` for when a list is copied.
    """
    n = len(model.articles_)
    # Titles compared before and unchanged keep their pairs.
    titles_kept = same & model.eligible_
    titles_kept[same] &= old.eligible_[previous[same]]
    model._trend_and_groups(
        events,
        progress,
        baseline,
        getattr(old, "title_links_", None),
        (new_of_old, previous, titles_kept),
    )
    with progress.stage("mix", total=n) as advance:
        mixer = model._mixer()
        if model.editorial_ == old.editorial_:
            reusable = _unchanged_lists(model, old, previous, same, new_of_old, mixer)
            if mixer.pins:  # a pinned page's list is always mixed again
                pinned = mixer.pins.pages_with_pins(mixer.article_ids, mixer.site_values)
                reusable &= ~pinned
        else:  # other pins or blocks: every list may differ
            reusable = np.zeros(n, dtype=bool)
        mix_rows = np.flatnonzero(~reusable)
        fresh = mixer.for_articles(
            mix_rows,
            Neighbors(model.neighbors_.indices[mix_rows], model.neighbors_.scores[mix_rows]),
            on_progress=advance,
        )
        copied = np.flatnonzero(reusable)
        source = previous[copied]  # the old article lists come first, in row order
        items = np.full((n, mixer.mix.k), -1, dtype=np.int32)
        items[mix_rows] = fresh.items
        items[copied] = _to_new(old.lists_.items[source], new_of_old)
        parts = []
        for name in ("score", "relevance", "trend", "freshness"):
            values = np.zeros((n, mixer.mix.k), dtype=np.float32)
            values[mix_rows] = getattr(fresh, name)
            values[copied] = getattr(old.lists_, name)[source]
            parts.append(values)
        advance(len(copied))
        article_lists = MixedLists(
            mixer.article_ids.copy(), mixer.site_values.copy(), items, *parts
        )
        model.lists_ = concat_lists([article_lists, *model._page_lists(mixer)])
    model.timings_ = dict(progress.timings)
    return len(mix_rows)


def _unchanged_lists(
    model: Stages,
    old: Stages,
    previous: np.ndarray,
    same: np.ndarray,
    new_of_old: np.ndarray,
    mixer: Mixer,
    *,
    block: int = 4096,
    margin: float = 1e-5,
) -> np.ndarray:
    """Articles whose list is ``old``'s (mask over this model's rows).

    A list is filled greedily from its candidates (neighbours and its
    site's trending pool) in score order, and never looks past the
    candidate that filled its last slot (the *cut*). So a kept article
    (same text, so the same feature row) whose own near-duplicate group
    is unchanged keeps its list when every candidate that differs —
    a neighbour gained or lost or rescored, a pool member gained or
    lost, or a candidate whose trend, freshness, eligibility or group
    changed — scores below the cut (by ``margin``, against rounding)
    both before and after; a list that was not full keeps it only when
    no valid candidate differs.
    """
    n = len(model.articles_)
    kept = np.flatnonzero(same)
    before = previous[kept]
    new_ctx, old_ctx = mixer.ctx, old._mixer().ctx
    # Same group: its smallest kept member is the same before and after (a
    # changed pair relation changes it for one of the two; see _group_floor).
    same_group = np.zeros(n, dtype=bool)
    same_group[kept] = (
        _group_floor(model.groups_, same, np.arange(n))[kept]
        == _group_floor(old.groups_, new_of_old >= 0, new_of_old)[before]
    )
    clean = _clean_rows(model, old, previous, same, same_group)
    own_ok = same_group[kept]
    last = old.lists_.items[before, -1]
    cut = np.where(last >= 0, old.lists_.score[before, -1], -np.inf)
    worst = np.full(len(kept), -np.inf)  # the best score among differing candidates

    def note(
        ctx: Any, at: np.ndarray, pages: np.ndarray, candidates: np.ndarray, score: np.ndarray
    ) -> None:
        """Raise ``worst`` by differing candidates (with their neighbour
        scores) of the lists at ``at`` (pages ``pages``)."""
        np.maximum.at(worst, at, ctx.scores(candidates, score, pages)[0])

    # Neighbours gained, lost or rescored, or whose candidate changed: one
    # sort per list of both lists' entries, keyed (candidate as a new row,
    # score, side); an entry equal on both sides sits next to its twin.
    # Old candidates not kept are numbered from n, and never match.
    k_now = model.neighbors_.k
    all_ones = np.uint64(2**64 - 1)
    for start in range(0, len(kept), block):
        at = np.arange(start, min(start + block, len(kept)))
        rows, old_rows = kept[at], before[at]
        was = old.neighbors_.indices[old_rows]
        was_new = _to_new(was, new_of_old)
        field = np.hstack(
            [model.neighbors_.indices[rows], np.where(was_new >= 0, was_new, was + n)]
        )
        value = np.hstack([model.neighbors_.scores[rows], old.neighbors_.scores[old_rows]])
        key = field.astype(np.uint64) << np.uint64(33)
        key |= value.astype(np.float32).view(np.uint32).astype(np.uint64) << np.uint64(1)
        key[:, k_now:] |= np.uint64(1)
        np.putmask(key, np.hstack([field[:, :k_now] < 0, was < 0]), all_ones)
        key.sort(axis=1)
        twin = (key[:, 1:] >> np.uint64(1)) == (key[:, :-1] >> np.uint64(1))
        matched = np.zeros(key.shape, dtype=bool)
        matched[:, 1:] = twin
        matched[:, :-1] |= twin
        field = (key >> np.uint64(33)).astype(np.int64)
        clean_field = np.zeros(key.shape, dtype=bool)
        inside = field < n
        clean_field[inside] = clean[field[inside]]
        differs = (key != all_ones) & ~(matched & clean_field)
        row, column = np.nonzero(differs)
        found = key[row, column]
        candidate = field[row, column]
        score = ((found >> np.uint64(1)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        score = score.view(np.float32)
        now, was_side = (found & np.uint64(1)) == 0, (found & np.uint64(1)) == 1
        note(new_ctx, at[row[now]], rows[row[now]], candidate[now], score[now])
        # As old rows: kept ones through previous, the others numbered from n.
        lost = candidate[was_side]
        lost = np.where(lost < n, previous[np.minimum(lost, n - 1)], lost - n)
        note(old_ctx, at[row[was_side]], old_rows[row[was_side]], lost, score[was_side])

    # Pool members gained, lost, or changed.
    old_pools = old._mixer().pools
    sites = mixer.site_values[kept]
    for site, pool in mixer.pools.items():
        old_pool = old_pools.get(site, np.zeros(0, dtype=np.int64))
        old_pool_new = new_of_old[old_pool]
        gained = pool[~(np.isin(pool, old_pool_new) & clean[pool])]
        stays = (old_pool_new >= 0) & np.isin(old_pool_new, pool)
        stays[stays] &= clean[old_pool_new[stays]]
        lost = old_pool[~stays]
        if not len(gained) and not len(lost):
            continue
        at_site = np.flatnonzero(sites == site)
        for start in range(0, len(at_site), block):
            at = at_site[start : start + block]
            rows, old_rows = kept[at], before[at]
            for X, ctx, members, page_rows in (
                (model.X_, new_ctx, gained, rows),
                (old.X_, old_ctx, lost, old_rows),
            ):
                if len(members):
                    relevance = (X[page_rows] @ X[members].T).toarray()
                    candidates = np.broadcast_to(members, relevance.shape)
                    pages = np.broadcast_to(page_rows[:, None], relevance.shape)
                    values = ctx.scores(candidates, relevance, pages)[0]
                    np.maximum.at(worst, at, values.max(axis=1))

    ok = np.isneginf(worst) | (worst < cut - margin)
    reusable = np.zeros(n, dtype=bool)
    reusable[kept] = own_ok & ok
    return reusable


def _clean_rows(
    model: Stages, old: Stages, previous: np.ndarray, same: np.ndarray, same_group: np.ndarray
) -> np.ndarray:
    """Kept articles whose trend, freshness and eligibility are as in
    ``old``, and whose near-duplicate group is (``same_group``); site and
    category are part of the content compared."""
    kept = np.flatnonzero(same)
    before = previous[kept]
    clean = np.zeros(len(model.articles_), dtype=bool)
    clean[kept] = (
        (model.trend_["trend"].to_numpy()[kept] == old.trend_["trend"].to_numpy()[before])
        & (model.freshness_[kept] == old.freshness_[before])
        & (model.eligible_[kept] == old.eligible_[before])
        & same_group[kept]
    )
    return clean


def _find_list_changes(
    model: Stages, old: Stages, previous: np.ndarray, same: np.ndarray, new_of_old: np.ndarray
) -> None:
    """``changed_lists_`` (per list of ``lists_``: would its payload differ
    from ``old``'s, run id and time aside?) and ``removed_sources_``
    (``old``'s lists with no list now): what a publish of only the
    changes (:meth:`Store.publish_changes`) needs."""
    lists, before = model.lists_, old.lists_
    # Article lists come first, in row order (so an article's old list is at
    # its old row); the page lists follow.
    n, n_old = len(model.articles_), len(old.articles_)
    at = np.full(len(lists), -1, dtype=np.int64)
    at[:n] = previous
    pages = pd.Index(before.source_ids[n_old:]).get_indexer(lists.source_ids[n:])
    at[n:] = np.where(pages >= 0, pages + n_old, -1)
    matched = np.flatnonzero(at >= 0)
    changed = np.ones(len(lists), dtype=bool)
    old_items = before.items[at[matched]]
    # Kept articles map to their new row; others to -2, equal to nothing.
    mapped = _to_new(old_items, new_of_old)
    mapped = np.where((old_items >= 0) & (mapped < 0), -2, mapped)
    equal = (lists.items[matched] == mapped).all(axis=1)
    equal &= lists.source_sites[matched] == before.source_sites[at[matched]]
    for name in ("score", "relevance", "trend", "freshness"):
        equal &= (getattr(lists, name)[matched] == getattr(before, name)[at[matched]]).all(axis=1)
    # A kept article whose card (title, link, ...) changed changes every list showing it.
    shown = np.unique(lists.items[lists.items >= 0])
    shown = shown[same[shown]]
    card_changed = np.zeros(len(model.articles_), dtype=bool)
    card_changed[shown] = np.array(cards(model, shown), dtype=object) != np.array(
        cards(old, previous[shown]), dtype=object
    )
    items = lists.items[matched]
    equal &= ~((items >= 0) & card_changed[np.maximum(items, 0)]).any(axis=1)
    changed[matched] = ~equal
    if model.editorial_ != old.editorial_:
        changed[:] = True  # a pin's label or mark may differ in an equal list
    model.changed_lists_ = changed
    gone = np.ones(len(before), dtype=bool)
    gone[at[matched]] = False
    model.removed_sources_ = [str(source_id) for source_id in before.source_ids[gone]]


def _to_new(old_rows: np.ndarray, new_of_old: np.ndarray) -> np.ndarray:
    """Old row indices (-1 pads) as new ones: -1 for pads and for articles
    not kept unchanged."""
    return np.where(old_rows >= 0, new_of_old[np.maximum(old_rows, 0)], -1)


def _group_floor(groups: np.ndarray, members: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the smallest ``labels`` value among the ``members`` rows of
    its group (a large sentinel when it has none).

    With ``labels`` the rows' positions in one common order, two rows share
    a group exactly when they share a floor; so if two kept rows were
    grouped before and not now (or the reverse), the floor of at least one
    of them changed: comparing floors finds every changed relation."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    floor = np.full(int(codes.max()) + 1 if len(codes) else 0, np.iinfo(np.int64).max)
    np.minimum.at(floor, codes[members], np.asarray(labels, dtype=np.int64)[members])
    return floor[codes]


__all__ = ["update_model"]
