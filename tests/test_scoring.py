"""One scoring rule and one capped fill, and everything that ranks goes through them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.config import MixConfig, Weights
from recommender.evaluate.blend import blend_scores
from recommender.evaluate.lists import remix
from recommender.mix import Mixer, capped_fill
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from recommender.scoring import WeightedBlend, scorer_from_config
from tests.conftest import tiny_articles, tiny_config, tiny_events


@dataclass(frozen=True)
class TrendOnly:
    """A scorer that is not a weighted blend: the trend, squared."""

    parts: ClassVar[tuple[str, ...]] = ("trend",)

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        return parts["trend"] ** 2


@dataclass(frozen=True)
class ReadsClicks:
    parts: ClassVar[tuple[str, ...]] = ("relevance", "ctr")

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        raise AssertionError("never called")


def fitted() -> Recommender:
    return Recommender(tiny_config()).fit(
        validate_articles(tiny_articles()).valid,
        validate_events(tiny_events({"a2": 40, "b2": 30, "c1": 20, "a1": 5})).valid,
    )


def mixer_of(model: Recommender, mix: MixConfig, scorer=None) -> Mixer:
    return Mixer(
        model.X_,
        model.articles_,
        model.trend_["trend"].to_numpy(),
        model.freshness_,
        model.eligible_,
        model.groups_,
        mix,
        scorer=scorer,
        allowed=model.config.allowed_pairs(),
        sites=list(model.config.sites),
    )


def test_the_weighted_blend_is_the_documented_sum_in_float32() -> None:
    """``w_r * relevance + w_t * trend + w_f * freshness``, in the parts' dtype."""
    rng = np.random.default_rng(0)
    parts = {name: rng.random(50).astype(np.float32) for name in WeightedBlend.parts}
    blend = WeightedBlend(0.5, 0.3, 0.2)
    score = blend.score(parts)
    assert score.dtype == np.float32
    expected = (
        np.float32(0.5) * parts["relevance"]
        + np.float32(0.3) * parts["trend"]
        + np.float32(0.2) * parts["freshness"]
    )
    np.testing.assert_array_equal(score, expected)
    mix = MixConfig(weights=Weights(relevance=0.5, trend=0.3, freshness=0.2))
    assert scorer_from_config(mix) == blend


def test_the_lists_score_is_the_scorers_score_of_its_parts() -> None:
    """Every published item's score is the config's scorer applied to its parts."""
    model = fitted()
    lists = model.lists_
    filled = lists.items >= 0
    parts = {name: getattr(lists, name)[filled] for name in WeightedBlend.parts}
    np.testing.assert_array_equal(
        lists.score[filled], scorer_from_config(model.config.mix).score(parts)
    )


def test_the_mixer_ranks_by_any_scorer_it_is_given() -> None:
    """A scorer other than the blend decides the order: with the trend only,
    each site page lists its pool by falling trend."""
    model = fitted()
    pages = mixer_of(model, model.config.mix, TrendOnly()).for_pages()
    for i in range(len(pages)):
        rows = pages.items[i][pages.items[i] >= 0]
        assert len(rows)
        trend = model.trend_["trend"].to_numpy()[rows]
        assert np.all(np.diff(trend) <= 0)
        np.testing.assert_allclose(pages.score[i][: len(rows)], trend.astype(np.float32) ** 2)


def test_a_scorer_reading_a_part_the_mix_lacks_is_refused() -> None:
    model = fitted()
    with pytest.raises(ValueError, match="ctr"):
        mixer_of(model, model.config.mix, ReadsClicks())


def test_evaluations_blend_is_the_mixs_scorer() -> None:
    """``blend_scores`` gives the config's scorer of (relevance, trend, freshness),
    and another scorer when one is passed."""
    refresh = pd.Timestamp("2026-01-02", tz="UTC")
    scored = pd.DataFrame(
        {"article_id": ["a", "b", "c"], "engine": [0.9, 0.1, 0.5], "refresh": refresh}
    )
    published = pd.Series(
        pd.to_datetime(["2026-01-01", "2025-12-20", "2026-01-02"], utc=True), index=["a", "b", "c"]
    )
    relevance = np.array([0.2, 0.8, 0.0])
    mix = MixConfig()
    blended = blend_scores(scored, relevance, published, mix)
    parts = {
        "relevance": relevance,
        "trend": scored["engine"].to_numpy(),
        "freshness": blended["freshness"].to_numpy(),
    }
    np.testing.assert_array_equal(blended["blend"], WeightedBlend.from_config(mix).score(parts))
    other = blend_scores(scored, relevance, published, mix, scorer=TrendOnly())
    np.testing.assert_allclose(other["blend"], scored["engine"] ** 2)


def test_remix_takes_mix_settings_and_weights_by_name() -> None:
    model = fitted()
    trending_only = remix(model, w_relevance=0.0)
    filled = trending_only.items >= 0
    np.testing.assert_allclose(
        trending_only.score[filled],
        0.4 * trending_only.trend[filled] + 0.15 * trending_only.freshness[filled],
        rtol=1e-6,
    )
    short = remix(model, k=2)
    assert short.items.shape[1] == 2
    with pytest.raises(ValueError, match="popularity"):
        remix(model, w_popularity=1.0)


def reference_fill(sites, buckets, open_, k, max_per_site, max_per_category, groups=None):
    """The capped fill written as the plain loop over one row at a time."""
    out = np.full((len(open_), k), -1)
    for i in range(len(open_)):
        taken: list[int] = []
        for j in range(open_.shape[1]):
            if not open_[i, j] or len(taken) == k:
                continue
            if sum(sites[i, t] == sites[i, j] for t in taken) >= max_per_site:
                continue
            if sum(buckets[i, t] == buckets[i, j] for t in taken) >= max_per_category:
                continue
            if groups is not None and any(groups[i, t] == groups[i, j] for t in taken):
                continue
            taken.append(j)
        out[i, : len(taken)] = taken
    return out


@st.composite
def fills(draw):
    b, m = draw(st.integers(1, 6)), draw(st.integers(0, 12))
    codes = st.integers(0, 3)
    matrix = lambda values: np.array(  # noqa: E731
        draw(st.lists(st.lists(values, min_size=m, max_size=m), min_size=b, max_size=b)),
        dtype=np.int64,
    ).reshape(b, m)
    # Open candidates lead each row.
    lengths = draw(st.lists(st.integers(0, m), min_size=b, max_size=b))
    open_ = np.arange(m)[None, :] < np.array(lengths)[:, None]
    groups = matrix(st.integers(0, 4)) if draw(st.booleans()) else None
    caps = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return matrix(codes), matrix(codes), open_, caps, groups


@settings(max_examples=200, deadline=None)
@given(fills())
def test_the_capped_fill_equals_the_plain_loop(case) -> None:
    """Vectorised across rows, the fill takes exactly what a row-by-row
    greedy loop takes, and never breaks a cap."""
    sites, buckets, open_, (k, per_site, per_category), groups = case
    slots = capped_fill(
        sites,
        buckets,
        open_,
        k=k,
        max_per_site=per_site,
        max_per_category=per_category,
        groups=groups,
    )
    expected = reference_fill(sites, buckets, open_, k, per_site, per_category, groups)
    np.testing.assert_array_equal(slots, expected)
    for i, row in enumerate(slots):
        taken = row[row >= 0]
        assert np.all(np.diff(taken) > 0)
        if len(taken):
            assert np.bincount(sites[i, taken]).max() <= per_site
            assert np.bincount(buckets[i, taken]).max() <= per_category
