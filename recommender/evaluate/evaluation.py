"""The whole evaluation of a MIND-format log or of a configured network.

:func:`evaluate_mind` runs the trending replay for each refresh interval
and the static split, the blend comparison and the list metrics of the
engine's lists; :func:`evaluate_network` gives the list metrics of a
network described by a config (no click log needed). Both return an
:class:`Evaluation` that :mod:`recommender.evaluate.report` renders.

A metric averaged over fewer than ``min_impressions`` impressions with a
click (default :data:`~recommender.evaluate.replay.MIN_IMPRESSIONS`, 200) is
still computed and reported, and ``facts["warnings"]`` says so, with the
number of impressions: the CLI prints it in red and the report puts it at
its top.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recommender.autotune import autotune
from recommender.config import Config
from recommender.datasets.mind import MIND_SITE_NAMES, MindData, mind_events
from recommender.datasets.sites import network_config
from recommender.evaluate.blend import (
    BLEND_METHODS,
    article_features,
    blend_scores,
    history_relevance,
)
from recommender.evaluate.lists import engine_list_metrics
from recommender.evaluate.replay import (
    METHODS,
    MIN_IMPRESSIONS,
    clicked_impressions,
    evaluation_start,
    metric_table,
    replay,
    small_sample_warning,
    warn_small_sample,
)
from recommender.model import Recommender

_log = logging.getLogger(__name__)

#: Mix variants whose lists are compared with the configured ones.
LIST_VARIANTS: dict[str, dict[str, float]] = {
    "trending only (w_relevance = 0)": {"w_relevance": 0.0},
    "related only (w_trend = 0)": {"w_trend": 0.0},
}


@dataclass
class Evaluation:
    """Everything a report shows.

    ``replay``: rows of (setting, method, label, metric, mean, low, high,
    n_impressions); ``top_ctr``: rows of (setting, method, clicks,
    impressions, ctr); ``blend``: like ``replay`` for the blend methods;
    ``lists``: list metrics, one row per variant; ``facts``: what was
    evaluated (data, sizes, window, timings) and ``warnings``: what makes
    the results unreliable or incomplete (metrics on a small sample, list
    metrics left out); empty when nothing does.
    """

    facts: dict[str, Any]
    replay: pd.DataFrame = field(default_factory=pd.DataFrame)
    top_ctr: pd.DataFrame = field(default_factory=pd.DataFrame)
    blend: pd.DataFrame = field(default_factory=pd.DataFrame)
    lists: pd.DataFrame = field(default_factory=pd.DataFrame)


def mind_config(base: Config | None = None) -> Config:
    """A config for MIND's network of sections, with the other sections of
    ``base`` (features, trending, mix, similarity) when given."""
    sections: dict[str, Any] = {}
    if base is not None:
        for name in ("features", "similarity", "trending", "mix"):
            sections[name] = getattr(base, name).model_dump(mode="json", exclude_none=True)
        if base.similarity.allowed is not None and not set(base.similarity.allowed) <= set(
            MIND_SITE_NAMES
        ):
            sections["similarity"].pop("allowed", None)
    return network_config(MIND_SITE_NAMES, MIND_SITE_NAMES, **sections)


#: The replay's methods and the self-tuned engine.
REPLAY_LABELS = {**METHODS, "engine_tuned": "engine trending (self-tuned on the days before)"}


def evaluate_mind(
    data: MindData,
    config: Config | None = None,
    *,
    refresh_minutes: Sequence[float] = (10.0, 60.0),
    static: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    lists: bool = True,
    min_impressions: int = MIN_IMPRESSIONS,
) -> Evaluation:
    """Replay, blend and list metrics of a MIND-format log.

    ``config``: the engine's settings (default: as shipped); its site
    registry is replaced by MIND's sections (:data:`~recommender.datasets.MIND_SITES`).
    ``min_impressions``: a metric table averaged over fewer impressions with
    a click than this gets a warning in ``facts["warnings"]``.

    Candidates of articles without text (no ``news.tsv`` row) are evaluated
    like the others (trending scores them from their traffic; their content
    relevance is 0); the list metrics are of the articles with text only,
    the ones a page can show.
    """
    config = mind_config(config)
    start = evaluation_start(data)
    in_window = data.candidates["ts"] >= start
    window = data.candidates[in_window]
    facts: dict[str, Any] = {
        "warnings": [],
        "articles": len(data.articles),
        "articles_without_news": len(data.articles_without_news),
        "impressions": len(data.behaviors),
        "candidates": len(data.candidates),
        "candidates_without_news": data.candidates_without_news,
        "clicks": int(data.candidates["label"].fillna(0).sum()),
        "log_start": str(data.start),
        "log_end": str(data.end),
        "window_start": str(start),
        "window_impressions": int(window["impression_id"].nunique()),
        "window_impressions_clicked": clicked_impressions(window),
        "window_ctr": float(window["label"].fillna(0).mean()),
        "half_life_hours": config.trending.half_life_hours,
        "prior_impressions": config.trending.prior_impressions,
        "freshness": config.trending.freshness,
        "bootstrap": n_boot,
        "rejected_rows": len(data.problems),
        "min_impressions": min_impressions,
        "timings": {},
    }
    sample_warnings: list[str] = facts["warnings"]
    day = f"{start:%Y-%m-%d}"
    warning = small_sample_warning(
        f"the trending replay of {day}",
        facts["window_impressions_clicked"],
        facts["window_impressions"],
        min_impressions,
    )
    if warning:
        warn_small_sample(warning, sample_warnings)
    # Self-tuned trending, as a refit on this log would choose it: tuned on the
    # days before the window only, then replayed on the window like the others.
    tuned = None
    if config.trending.autotune:
        tuned = autotune(
            data,
            at=start,
            holdout_hours=config.trending.autotune_holdout_hours,
            min_clicked_impressions=config.trending.autotune_min_clicked_impressions,
            base=config.trending,
        )
        facts["autotune"] = {key: v for key, v in tuned.to_dict().items() if key != "grid"}
    methods = [*METHODS, *(["engine_tuned"] if tuned is not None else [])]
    settings: list[float | None] = [*refresh_minutes, *([None] if static else [])]
    tables, ctr_rows, blend_tables = [], [], []
    published_at = data.articles.set_index(data.articles["article_id"].astype(str))["published_at"]
    X = None
    relevance = has_history = None
    for minutes in settings:
        started = time.perf_counter()
        result = replay(data, refresh_minutes=minutes, trending=config.trending, seed=seed)
        if tuned is not None:
            again = replay(data, refresh_minutes=minutes, trending=tuned.config, seed=seed)
            result.candidates["engine_tuned"] = again.candidates["engine"].to_numpy()
        table = metric_table(
            result.candidates, methods, n_boot=n_boot, seed=seed, labels=REPLAY_LABELS
        )
        tables.append(table.assign(setting=result.label, refreshes=result.n_refreshes))
        ctr_rows.append(
            result.top_ctr.rename_axis("method").reset_index().assign(setting=result.label)
        )
        if X is None:
            X = article_features(data.articles, config.features)
            histories = data.behaviors.set_index("impression_id")["history"]
            relevance, has_history = history_relevance(
                X, pd.Index(data.articles["article_id"].astype(str)), result.candidates, histories
            )
        assert relevance is not None and has_history is not None
        scored = blend_scores(result.candidates, relevance, published_at, config.mix)
        with_history = scored[has_history]
        if len(with_history):
            blend = metric_table(
                with_history, list(BLEND_METHODS), n_boot=n_boot, seed=seed, labels=BLEND_METHODS
            )
            blend_tables.append(blend.assign(setting=result.label))
        facts["timings"][result.label] = round(time.perf_counter() - started, 2)
    facts["impressions_with_history"] = (
        int(
            pd.Series(has_history)
            .groupby(result.candidates["impression_id"].to_numpy())
            .any()
            .sum()
        )
        if has_history is not None
        else 0
    )
    if has_history is not None and facts["impressions_with_history"]:
        with_history = result.candidates[has_history]
        facts["impressions_with_history_clicked"] = clicked_impressions(with_history)
        warning = small_sample_warning(
            f"content vs trending vs blend on {day} (impressions whose user has a history)",
            facts["impressions_with_history_clicked"],
            facts["impressions_with_history"],
            min_impressions,
        )
        if warning:
            warn_small_sample(warning, sample_warnings)
    evaluation = Evaluation(
        facts=facts,
        replay=pd.concat(tables, ignore_index=True),
        top_ctr=pd.concat(ctr_rows, ignore_index=True),
        blend=pd.concat(blend_tables, ignore_index=True) if blend_tables else pd.DataFrame(),
    )
    articles = data.articles_with_text
    if lists and articles.empty:
        sample_warnings.append(
            "no article of the log has a news.tsv row (text): the list metrics are left out"
        )
    elif lists:
        started = time.perf_counter()
        # The lists of the articles a page can show: those with text.
        before = data.candidates[data.candidates["ts"] < start]
        before = before[before["article_id"].isin(articles["article_id"]).to_numpy()]
        model = Recommender(config).fit(articles, mind_events(before), now=start)
        clicks = before[before["label"].fillna(0) == 1].groupby("article_id").size()
        popularity = clicks.reindex(articles["article_id"].astype(str), fill_value=0)
        evaluation.lists = engine_list_metrics(model, popularity, LIST_VARIANTS)
        facts["timings"]["lists"] = round(time.perf_counter() - started, 2)
    return evaluation


def evaluate_network(config: Config) -> Evaluation:
    """List metrics of the network a config describes (its data, its ``now``)."""
    from recommender.inputs import load_inputs
    from recommender.progress import StageTimer

    articles, events, unmatched = load_inputs(config, StageTimer())
    model = Recommender(config).fit(articles.valid, events.valid)
    views = events.valid[events.valid["kind"].isin(["view", "click"])]
    popularity = (
        views.groupby("article_id")
        .size()
        .reindex(model.articles_["article_id"].astype(str), fill_value=0)
    )
    facts = {
        "articles": len(model.articles_),
        "eligible": int(model.eligible_.sum()),
        "events": len(events.valid),
        "events_unmatched": unmatched,
        "now": str(model.now_),
    }
    return Evaluation(facts=facts, lists=engine_list_metrics(model, popularity, LIST_VARIANTS))


__all__ = ["LIST_VARIANTS", "Evaluation", "evaluate_mind", "evaluate_network", "mind_config"]
