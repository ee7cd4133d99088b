"""Tuning: a small grid over the mix weights, the trend half-life and the caps.

Temporal split on a MIND-format log: the settings are chosen on the
*validation day* (the day before the last) and confirmed on the *test day*
(the last), each replayed as in :mod:`recommender.evaluate.replay` (a
refresh every ``refresh_minutes``, only earlier events). Each setting ranks
the impressions whose user has a history by the blend of
:mod:`recommender.evaluate.blend`, then applies the caps the way the mix
fills a list: candidates in blend order, at most ``max_per_site`` per site
and ``max_per_category`` per category among the first ``k``, the ones the
caps skip after them. The objective is nDCG@10 (AUC and MRR are reported
too).

Candidates of articles without text (MIND candidates with no ``news.tsv``
row) take part like any other: trend from their traffic, relevance 0, the
unknown site and no category (its own bucket for the category cap).

When the validation or the test day has fewer impressions with a click and
a user history than ``min_impressions`` (default 200), the tuning still
runs and :attr:`TuningResult.warnings` says so.

:func:`write_tuned_config` writes the best setting as a TOML config file.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.config import (
    Config,
    FeaturesConfig,
    MixConfig,
    TrendingConfig,
    Weights,
    parse_config,
)
from recommender.datasets.mind import MindData
from recommender.evaluate.blend import article_features, blend_scores, history_relevance
from recommender.evaluate.metrics import impression_metrics
from recommender.evaluate.replay import (
    MIN_IMPRESSIONS,
    evaluation_start,
    replay,
    small_sample_warning,
    warn_small_sample,
)
from recommender.mix import capped_fill, category_buckets

_log = logging.getLogger(__name__)

DEFAULT_WEIGHTS: tuple[tuple[float, float, float], ...] = (
    (0.45, 0.40, 0.15),
    (0.30, 0.60, 0.10),
    (0.20, 0.70, 0.10),
    (0.10, 0.80, 0.10),
    (0.30, 0.70, 0.00),
    (0.60, 0.30, 0.10),
)
DEFAULT_HALF_LIVES: tuple[float, ...] = (6.0, 12.0, 24.0, 48.0)
DEFAULT_CAPS: tuple[tuple[int, int], ...] = ((5, 3), (3, 2), (10, 10))


@dataclass(frozen=True)
class Setting:
    """One point of the grid."""

    w_relevance: float
    w_trend: float
    w_freshness: float
    half_life_hours: float
    max_per_site: int
    max_per_category: int

    def as_dict(self) -> dict[str, float]:
        return {
            "w_relevance": self.w_relevance,
            "w_trend": self.w_trend,
            "w_freshness": self.w_freshness,
            "half_life_hours": self.half_life_hours,
            "max_per_site": self.max_per_site,
            "max_per_category": self.max_per_category,
        }


@dataclass
class TuningResult:
    """``grid``: one row per setting with its validation metrics, best first;
    ``best`` and ``shipped`` settings; ``test``: their metrics on the test day;
    ``warnings``: the small-sample warnings (empty when both days have enough
    impressions)."""

    grid: pd.DataFrame
    best: Setting
    shipped: Setting
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    warnings: list[str] = field(default_factory=list)


def capped_ranking(
    frame: pd.DataFrame,
    score: str,
    *,
    max_per_site: int,
    max_per_category: int,
    k: int = 10,
    impression: str = "impression_id",
) -> np.ndarray:
    """Scores that rank each impression the way the capped greedy fill does.

    Candidates are taken in ``score`` order (ties by row order) by the mix's
    own :func:`~recommender.mix.capped_fill`: one is accepted while fewer
    than ``k`` are, its site has fewer than ``max_per_site`` and its
    category fewer than ``max_per_category`` accepted ones. Accepted
    candidates come first, the rest after them, each group in score order.
    ``frame`` needs ``site`` and ``category``; an empty category counts as
    its site's own bucket, as in the mix.
    """
    imp, _ = pd.factorize(frame[impression])
    site, _ = pd.factorize(frame["site"].astype(str))
    cat = category_buckets(frame, "category")
    s = frame[score].to_numpy(dtype=np.float64)
    order = np.lexsort((np.arange(len(s)), -s, imp))
    imp_sorted = imp[order]
    n_imp = int(imp.max()) + 1 if len(imp) else 0
    sizes = np.bincount(imp_sorted, minlength=n_imp)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(len(order)) - starts[imp_sorted]
    width = int(sizes.max()) if len(sizes) else 0
    site_m = np.full((n_imp, width), -1)
    cat_m = np.full((n_imp, width), -1)
    site_m[imp_sorted, pos] = site[order]
    cat_m[imp_sorted, pos] = cat[order]
    slots = capped_fill(
        np.maximum(site_m, 0),
        np.maximum(cat_m, 0),
        site_m >= 0,
        k=k,
        max_per_site=max_per_site,
        max_per_category=max_per_category,
    )
    accepted = np.zeros((n_imp, width), dtype=bool)
    filled_rows, filled_slots = np.nonzero(slots >= 0)
    accepted[filled_rows, slots[filled_rows, filled_slots]] = True
    key = np.where(accepted[imp_sorted, pos], pos, width + pos)
    out = np.empty(len(s))
    out[order] = -key.astype(np.float64)
    return out


def _scored_window(
    data: MindData,
    start: pd.Timestamp,
    end: pd.Timestamp,
    trending: TrendingConfig,
    refresh_minutes: float | None,
    relevance_cache: dict[pd.Timestamp, tuple[np.ndarray, np.ndarray]],
    X: Any,
) -> pd.DataFrame:
    result = replay(
        data,
        refresh_minutes=refresh_minutes,
        trending=trending,
        window_start=start,
        window_end=end,
    )
    scored = result.candidates
    if start not in relevance_cache:
        histories = data.behaviors.set_index("impression_id")["history"]
        relevance_cache[start] = history_relevance(
            X, pd.Index(data.articles["article_id"].astype(str)), scored, histories
        )
    relevance, has_history = relevance_cache[start]
    info = data.articles.set_index(data.articles["article_id"].astype(str))
    return scored.assign(
        relevance=relevance,
        has_history=has_history,
        site=scored["article_id"].astype(str).map(info["site"]).astype(str).to_numpy(),
        category=scored["article_id"].astype(str).map(info["category"]).astype(str).to_numpy(),
    )


def _with_history(scored: pd.DataFrame) -> int:
    """Impressions of a scored window whose user has a history profile."""
    return int(scored.loc[scored["has_history"].to_numpy(), "impression_id"].nunique())


def _evaluate(scored: pd.DataFrame, setting: Setting, published_at: pd.Series) -> dict[str, float]:
    mix = MixConfig(
        weights=Weights(
            relevance=setting.w_relevance, trend=setting.w_trend, freshness=setting.w_freshness
        )
    )
    blended = blend_scores(scored, scored["relevance"].to_numpy(), published_at, mix)
    blended = blended[blended["has_history"]]
    ranked = blended.assign(
        capped=capped_ranking(
            blended,
            "blend",
            max_per_site=setting.max_per_site,
            max_per_category=setting.max_per_category,
        ),
        label=blended["label"].fillna(0).astype(np.int8),
    )
    per = impression_metrics(ranked, score="capped", ks=(10,))
    return {
        "ndcg@10": float(per["ndcg@10"].mean()),
        "auc": float(per["auc"].mean()),
        "mrr": float(per["mrr"].mean()),
        "n_impressions": int(per["ndcg@10"].notna().sum()),
    }


def tune(
    data: MindData,
    *,
    base: Config | None = None,
    weights: Sequence[tuple[float, float, float]] = DEFAULT_WEIGHTS,
    half_lives: Sequence[float] = DEFAULT_HALF_LIVES,
    caps: Sequence[tuple[int, int]] = DEFAULT_CAPS,
    refresh_minutes: float | None = 60.0,
    min_impressions: int = MIN_IMPRESSIONS,
) -> TuningResult:
    """Run the grid on the validation day, then score the best and the
    shipped (or ``base``) setting on the test day.

    ``min_impressions``: a day whose metrics average over fewer impressions
    (with a click and a user history) than this gets a warning in
    :attr:`TuningResult.warnings`."""
    test_start = evaluation_start(data)
    validation_start = test_start - pd.Timedelta(days=1)
    if (
        data.start >= test_start - pd.Timedelta(hours=1)
        or not (
            (data.candidates["ts"] >= validation_start) & (data.candidates["ts"] < test_start)
        ).any()
    ):
        raise ValueError(
            "tuning needs at least two days of log: a validation day and a test day "
            f"(log from {data.start} to {data.end})"
        )
    base_trending = base.trending if base else TrendingConfig()
    base_mix = base.mix if base else MixConfig()
    features = base.features if base else FeaturesConfig()
    X = article_features(data.articles, features)
    published_at = data.articles.set_index(data.articles["article_id"].astype(str))["published_at"]
    cache: dict[pd.Timestamp, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    n_validation = n_test = 0
    grid = list(itertools.product(half_lives, weights, caps))
    for half_life in half_lives:
        trending = base_trending.model_copy(update={"half_life_hours": float(half_life)})
        scored = _scored_window(
            data, validation_start, test_start, trending, refresh_minutes, cache, X
        )
        n_validation = _with_history(scored)
        for h, (wr, wt, wf), (mps, mpc) in grid:
            if h != half_life:
                continue
            setting = Setting(wr, wt, wf, float(h), int(mps), int(mpc))
            rows.append({**setting.as_dict(), **_evaluate(scored, setting, published_at)})
        _log.info("tuning: half-life %s h done", half_life)
    table = (
        pd.DataFrame(rows)
        .sort_values(["ndcg@10", "auc"], ascending=False, kind="stable")
        .reset_index(drop=True)
    )
    best = Setting(**{k: table.iloc[0][k] for k in Setting.__dataclass_fields__})
    best = Setting(
        float(best.w_relevance),
        float(best.w_trend),
        float(best.w_freshness),
        float(best.half_life_hours),
        int(best.max_per_site),
        int(best.max_per_category),
    )
    shipped = Setting(
        base_mix.weights.relevance,
        base_mix.weights.trend,
        base_mix.weights.freshness,
        base_trending.half_life_hours,
        base_mix.max_per_site,
        base_mix.max_per_category,
    )
    test_rows = []
    for name, setting in (("shipped", shipped), ("tuned", best)):
        trending = base_trending.model_copy(update={"half_life_hours": setting.half_life_hours})
        scored = _scored_window(
            data, test_start, data.end + pd.Timedelta(seconds=1), trending, refresh_minutes, {}, X
        )
        n_test = _with_history(scored)
        test_rows.append(
            {"setting": name, **setting.as_dict(), **_evaluate(scored, setting, published_at)}
        )
    test = pd.DataFrame(test_rows)
    found: list[str] = []
    for day, start, n_clicked, n_shown in (
        ("validation", validation_start, int(table["n_impressions"].min()), n_validation),
        ("test", test_start, int(test["n_impressions"].min()), n_test),
    ):
        warning = small_sample_warning(
            f"the tuning's {day} day {start:%Y-%m-%d} (impressions whose user has a history)",
            n_clicked,
            n_shown,
            min_impressions,
        )
        if warning:
            warn_small_sample(warning, found)
    return TuningResult(table, best, shipped, test, validation_start, test_start, found)


def tuned_values(setting: Setting) -> dict[str, dict[str, Any]]:
    """The config sections a setting changes, as TOML-ready dicts."""
    return {
        "trending": {"half_life_hours": setting.half_life_hours},
        "mix": {
            "max_per_site": setting.max_per_site,
            "max_per_category": setting.max_per_category,
            "weights": {
                "relevance": setting.w_relevance,
                "trend": setting.w_trend,
                "freshness": setting.w_freshness,
            },
        },
    }


def _merge(target: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value
    return target


def write_tuned_config(
    path: str | Path,
    setting: Setting,
    *,
    base_path: str | Path | None = None,
    sites: Mapping[str, str] | None = None,
    comment: str = "",
) -> Path:
    """Write ``setting`` as a TOML config file and check that it loads.

    With ``base_path``, the base file's own TOML is copied with the tuned
    keys replaced (relative input paths are made absolute when the new file
    lives in another folder); otherwise the file holds a site registry built
    from ``sites`` (key -> display name) and the tuned sections.
    """
    import tomllib

    import tomli_w

    path = Path(path)
    if base_path is not None:
        base_path = Path(base_path)
        data: dict[str, Any] = tomllib.loads(base_path.read_text(encoding="utf-8"))
        if base_path.resolve().parent != path.resolve().parent:
            _absolute_paths(data, base_path.resolve().parent)
    else:
        if not sites:
            raise ValueError("without a base config, the sites of the network are needed")
        data = {"sites": {key: {"display_name": name} for key, name in sites.items()}}
    _merge(data, tuned_values(setting))
    text = tomli_w.dumps(data)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")
    parse_config(tomllib.loads(text), base_dir=path.resolve().parent, source=str(path))
    return path


def _absolute_paths(data: dict[str, Any], base_dir: Path) -> None:
    def fix(value: str) -> str:
        return value if Path(value).is_absolute() else str((base_dir / value).resolve())

    section = data.get("data", {})
    for key in ("articles", "events"):
        if key in section:
            section[key] = [fix(v) for v in section[key]]
    store = data.get("store", {})
    if "model_path" in store:
        store["model_path"] = fix(store["model_path"])
    url = store.get("url")
    if isinstance(url, str) and ("://" not in url or url.startswith("sqlite:///")):
        raw = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url
        store["url"] = f"sqlite:///{fix(raw)}"


__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_HALF_LIVES",
    "DEFAULT_WEIGHTS",
    "Setting",
    "TuningResult",
    "capped_ranking",
    "tune",
    "tuned_values",
    "write_tuned_config",
]
