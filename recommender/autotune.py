"""Trending that tunes itself on the network's own impressions and clicks.

At a refit the batch calls :func:`autotune` on the impression log it has
(a :class:`~recommender.datasets.mind.MindData`: MIND's format, which the
widget's impressions and clicks map to). It

1. **fits the CTR prior** by empirical Bayes (:func:`fit_beta`): a beta
   distribution over the articles' click-through rates, fitted to the
   clicks and impressions of every article *before* the holdout. Its
   strength ``alpha + beta`` (in impressions) becomes ``prior_impressions``:
   how many impressions at the network's CTR an article's own evidence is
   pulled toward. A network whose articles differ a lot in CTR gets a weak
   prior (its own clicks speak soon); one where they hardly differ, a strong
   one (most of the spread in raw CTRs is binomial noise).
2. **back-tests** every (half-life, freshness) of a small grid on the last
   ``holdout_hours`` of impressions with the evaluation's replay
   (:func:`recommender.evaluate.replay.replay`: a refresh every
   ``refresh_minutes``, each seeing only the events before it, the window
   from ``end - holdout`` to ``end``). Each setting's AUC, MRR and nDCG@10
   are measured, and in the same replays the simple baselines: all-time and
   time-decayed smoothed CTR (with the fitted prior), clicks and decayed
   clicks.
3. **chooses** the setting with the highest AUC. Settings within
   :data:`TIE_AUC` of the best count as tied; among them the shipped default
   wins, then the longer half-life, then the shipped freshness.
4. **guards** against losing to a baseline: it also replays the *CTR-like*
   setting (freshness off, an all-time half-life of
   :data:`ALL_TIME_HALF_LIFE` hours, the fitted prior), which ranks as the
   all-time smoothed CTR does up to ties (:data:`CTR_LIKE_TOLERANCE`; the
   result records the check, ``ctr_like_reproduces_ctr``). When the grid's best is below the best
   baseline's AUC the result says so (``below_baseline``) and, if the
   CTR-like setting does better than the grid's best, it is chosen instead.
5. **falls back** when the holdout has fewer than
   ``min_clicked_impressions`` impressions with a click (the metrics would
   be noise, see :data:`recommender.evaluate.replay.MIN_IMPRESSIONS`): no
   back-test is trusted, and the chosen setting is :func:`fallback_config`
   (freshness off, a long half-life, the fitted prior when one can be
   fitted), which measured level with the smoothed CTR on every simulated
   log (``benchmarks/autotune.py``) and on the real log of issue 16
   ("with freshness off it equals the baselines").

Everything is deterministic: the same log and arguments give the same
choice and figures (only :attr:`TuneResult.seconds` varies).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recommender.config import TrendingConfig
from recommender.datasets.mind import MindData
from recommender.evaluate.metrics import impression_metrics
from recommender.evaluate.replay import clicked_impressions, replay

_log = logging.getLogger(__name__)

#: A half-life (hours, about 11 years) under which nothing in a log decays
#: measurably: the engine with it and freshness off ranks as all-time CTR.
ALL_TIME_HALF_LIFE = 100_000.0
#: AUC differences below this count as ties in the choice.
TIE_AUC = 1e-4
#: The CTR-like setting "reproduces" the all-time smoothed CTR when their AUCs
#: differ by no more than this. They differ only in ties: two articles with
#: equal counts tie under the CTR, while the 100,000-hour decay still weighs a
#: recent impression a hair (1e-5 per hour) more and so breaks the tie; on the
#: simulated logs that moves the AUC by at most 5e-4.
CTR_LIKE_TOLERANCE = 1e-3
#: Bounds of the fitted prior strength ``alpha + beta`` (impressions).
MIN_STRENGTH = 1.0
MAX_STRENGTH = 1e5
#: The half-life of the fallback setting (hours); see :func:`fallback_config`.
FALLBACK_HALF_LIFE = 96.0
#: The simple baselines of the replay (method name -> depends on the half-life).
BASELINES: dict[str, bool] = {
    "ctr": False,
    "decayed_ctr": True,
    "clicks": False,
    "decayed_views": True,
}
GRID_COLUMNS = ("method", "half_life", "freshness", "auc", "mrr", "ndcg10", "n_impressions")


def fit_beta(
    clicks: Sequence[float] | np.ndarray,
    impressions: Sequence[float] | np.ndarray,
    *,
    min_strength: float = MIN_STRENGTH,
    max_strength: float = MAX_STRENGTH,
) -> tuple[float, float]:
    """Empirical-Bayes beta prior ``(alpha, beta)`` over the articles' CTRs.

    Model: article ``i`` has a CTR ``p_i ~ Beta(alpha, beta)`` and
    ``clicks_i ~ Binomial(impressions_i, p_i)``. Method of moments with the
    binomial noise taken out: with ``n_i`` impressions, ``k_i`` clicks,
    ``N = sum n_i``, ``K`` articles with an impression, the pooled CTR
    ``m = sum k_i / N`` and ``S = sum n_i (k_i / n_i - m) ** 2``, the
    expectation of ``S`` is exactly (for any ``n_i``)::

        E[S] = s2 * (N - K - sum(n_i ** 2) / N + 1) + mu (1 - mu) (K - 1)

    where ``s2`` is the variance of the ``p_i`` and ``mu`` their mean. So
    ``s2 = (S - m (1 - m) (K - 1)) / (N - K - sum(n_i ** 2) / N + 1)``: the
    spread of the raw CTRs less what binomial noise alone would give. The
    beta with mean ``m`` and variance ``s2`` has strength
    ``alpha + beta = m (1 - m) / s2 - 1``.

    Robustness: with few articles (or one that has nearly all impressions)
    the denominator is small or zero and ``s2`` can come out at or below 0,
    meaning the log shows no CTR spread beyond noise; the strength is then
    clipped to ``[min_strength, max_strength]`` (``max_strength``: pull
    every article to the pooled CTR). Articles without impressions carry no
    evidence and are left out. The result does not depend on the articles'
    order.

    Raises ValueError for mismatched lengths, negative or non-finite counts,
    more clicks than impressions in a row, or a degenerate log (no
    impressions, no clicks, or clicks on every impression).
    """
    k = np.asarray(clicks, dtype=np.float64).ravel()
    n = np.asarray(impressions, dtype=np.float64).ravel()
    if k.shape != n.shape:
        raise ValueError(f"clicks and impressions differ in length: {len(k)} != {len(n)}")
    if not (np.isfinite(k).all() and np.isfinite(n).all()):
        raise ValueError("clicks and impressions must be finite")
    if (k < 0).any() or (n < 0).any():
        raise ValueError("clicks and impressions must be >= 0")
    bad = np.flatnonzero(k > n)
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"row {i}: more clicks ({k[i]:g}) than impressions ({n[i]:g})")
    if not 0 < min_strength <= max_strength:
        raise ValueError("need 0 < min_strength <= max_strength")
    shown = n > 0
    k, n = k[shown], n[shown]
    # Sort so that the sums are taken in one order whatever the input's order.
    order = np.lexsort((k, n))
    k, n = k[order], n[order]
    total = float(n.sum())
    total_clicks = float(k.sum())
    if total <= 0 or total_clicks <= 0 or total_clicks >= total:
        raise ValueError(
            "cannot fit a CTR prior: need impressions with some clicks and some non-clicks "
            f"(got {total_clicks:g} clicks in {total:g} impressions)"
        )
    m = total_clicks / total
    q = m * (1.0 - m)
    n_articles = len(n)
    spread = float((n * (k / n - m) ** 2).sum())
    denominator = total - n_articles - float((n**2).sum()) / total + 1.0
    if n_articles < 2 or denominator <= 0:
        strength = max_strength
    else:
        s2 = (spread - q * (n_articles - 1)) / denominator
        strength = q / s2 - 1.0 if s2 > 0 else max_strength
    strength = float(np.clip(strength, min_strength, max_strength))
    return m * strength, (1.0 - m) * strength


def article_counts(data: MindData, before: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and impressions per article of the candidates shown before ``before``."""
    c = data.candidates
    early = c[(c["ts"] < before).to_numpy()]
    label = early["label"].fillna(0).to_numpy(dtype=np.float64)
    grouped = pd.DataFrame({"a": early["article_id"].astype(str).to_numpy(), "k": label})
    sums = grouped.groupby("a", sort=True)["k"].agg(["sum", "size"])
    return sums["sum"].to_numpy(dtype=np.float64), sums["size"].to_numpy(dtype=np.float64)


def fallback_config(base: TrendingConfig, prior_impressions: float | None) -> TrendingConfig:
    """The setting used without enough holdout data: freshness off, a
    :data:`FALLBACK_HALF_LIFE` half-life and the fitted prior (the shipped
    one when none could be fitted). Freshness off makes the engine a
    time-decayed smoothed CTR; its long half-life ranks close to the
    all-time smoothed CTR, which it measured level with or above on every
    log of ``benchmarks/autotune.py``."""
    update: dict[str, Any] = {"freshness": False, "half_life_hours": FALLBACK_HALF_LIFE}
    if prior_impressions is not None:
        update["prior_impressions"] = prior_impressions
    return base.model_copy(update=update)


@dataclass
class TuneResult:
    """What :func:`autotune` chose and measured.

    ``config``: the chosen trending settings. ``grid``: one row per measured
    method and setting (:data:`GRID_COLUMNS`; ``method`` is ``engine``,
    ``engine_ctr_like`` or a baseline of :data:`BASELINES`; a baseline that
    does not depend on the half-life has NaN there). ``alpha``, ``beta``:
    the fitted CTR prior (NaN when none could be fitted). ``fallback`` and
    ``reason``: whether the defaults were used instead of a back-test, and
    why. ``best_baseline``: (method, half-life) of the best baseline by AUC
    and ``below_baseline``: whether the grid's best engine setting was below
    it. ``notes``: what else a reader of the run record should know.
    """

    config: TrendingConfig
    grid: pd.DataFrame
    alpha: float
    beta: float
    fallback: bool
    reason: str
    seconds: float
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    n_clicked_impressions: int
    best_baseline: dict[str, Any] = field(default_factory=dict)
    below_baseline: bool = False
    ctr_like_reproduces_ctr: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def prior_impressions(self) -> float:
        return self.alpha + self.beta

    def chosen_row(self) -> dict[str, Any] | None:
        """The grid row of the chosen setting (None after a fallback)."""
        if self.fallback or not len(self.grid):
            return None
        engine = self.grid[self.grid["method"].isin(["engine", "engine_ctr_like"])]
        hit = engine[
            (engine["half_life"] == self.config.half_life_hours)
            & (engine["freshness"] == self.config.freshness)
        ]
        return _jsonable_row(hit.iloc[0].to_dict()) if len(hit) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary for the run record."""
        return {
            "config": {
                "half_life_hours": self.config.half_life_hours,
                "freshness": self.config.freshness,
                "prior_impressions": self.config.prior_impressions,
                "prior_views": self.config.prior_views,
            },
            "prior": {"alpha": _num(self.alpha), "beta": _num(self.beta)},
            "fallback": self.fallback,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "n_clicked_impressions": self.n_clicked_impressions,
            "chosen": self.chosen_row(),
            "best_baseline": self.best_baseline,
            "below_baseline": self.below_baseline,
            "ctr_like_reproduces_ctr": self.ctr_like_reproduces_ctr,
            "notes": list(self.notes),
            "grid": [_jsonable_row(r) for r in self.grid.to_dict(orient="records")],
        }


def _num(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value


def _jsonable_row(row: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _num(v) for k, v in row.items()}


def _means(candidates: pd.DataFrame, method: str) -> dict[str, float]:
    frame = candidates.assign(label=candidates["label"].fillna(0).astype(np.int8))
    per = impression_metrics(frame, score=method, ks=(10,))
    return {
        "auc": float(per["auc"].mean()),
        "mrr": float(per["mrr"].mean()),
        "ndcg10": float(per["ndcg@10"].mean()),
        "n_impressions": int(per["auc"].notna().sum()),
    }


def _choose(engine: pd.DataFrame, base: TrendingConfig) -> int:
    """Index (into ``engine``) of the best row by AUC, ties broken as the module says."""
    best = float(engine["auc"].max())
    tied = engine[engine["auc"] >= best - TIE_AUC]
    is_default = (tied["half_life"] == base.half_life_hours) & (tied["freshness"] == base.freshness)
    if is_default.any():
        return int(tied.index[is_default.to_numpy()][0])
    ranked = tied.assign(
        _same_freshness=(tied["freshness"] == base.freshness).astype(int),
    ).sort_values(["half_life", "_same_freshness"], ascending=[False, False], kind="stable")
    return int(ranked.index[0])


def autotune(
    data: MindData,
    *,
    at: pd.Timestamp | None = None,
    holdout_hours: float = 24.0,
    half_lives: Sequence[float] = (6.0, 12.0, 24.0, 48.0, 96.0),
    freshness: Sequence[bool] = (True, False),
    refresh_minutes: float | None = 60.0,
    min_clicked_impressions: int = 200,
    base: TrendingConfig | None = None,
) -> TuneResult:
    """Choose the trending settings by a back-test on the log's last hours.

    ``at``: the end of the holdout and of the data used (default: just after
    the log's last impression); the holdout is ``[at - holdout_hours, at)``
    and only events before each refresh of it train. ``base``: the settings
    the tuning starts from (shipped defaults); ``prior_views`` and ``k``
    are kept. See the module docs for the steps and :class:`TuneResult`.
    """
    started = time.perf_counter()
    base = base or TrendingConfig()
    if holdout_hours <= 0:
        raise ValueError(f"holdout_hours must be > 0, got {holdout_hours}")
    if not half_lives or not freshness:
        raise ValueError("half_lives and freshness must each name at least one value")
    end = pd.Timestamp(at) if at is not None else data.end + pd.Timedelta(seconds=1)
    if end.tzinfo is None:
        raise ValueError("at must be tz-aware (UTC)")
    window_start = end - pd.Timedelta(hours=holdout_hours)
    notes: list[str] = []

    clicks, impressions = article_counts(data, window_start)
    try:
        alpha, beta = fit_beta(clicks, impressions)
        prior: float | None = alpha + beta
    except ValueError as error:
        alpha = beta = float("nan")
        prior = None
        notes.append(f"no CTR prior fitted before {window_start}: {error}; kept the base prior")
    prior_impressions = prior if prior is not None else base.prior_impressions

    c = data.candidates
    in_window = ((c["ts"] >= window_start) & (c["ts"] < end)).to_numpy()
    n_clicked = clicked_impressions(c[in_window]) if in_window.any() else 0
    empty_grid = pd.DataFrame(columns=list(GRID_COLUMNS))

    def finish(
        config: TrendingConfig, grid: pd.DataFrame, fallback: bool, reason: str, **more: Any
    ) -> TuneResult:
        seconds = time.perf_counter() - started
        _log.info("autotune: %s (%s) in %.1f s", config, reason, seconds)
        return TuneResult(
            config=config,
            grid=grid,
            alpha=alpha,
            beta=beta,
            fallback=fallback,
            reason=reason,
            seconds=seconds,
            window_start=window_start,
            window_end=end,
            n_clicked_impressions=n_clicked,
            notes=notes,
            **more,
        )

    if n_clicked < min_clicked_impressions:
        reason = (
            f"only {n_clicked:,} impressions with a click in the {holdout_hours:g} h holdout "
            f"from {window_start} (fewer than {min_clicked_impressions:,}): no back-test; "
            f"fallback: freshness off, half-life {FALLBACK_HALF_LIFE:g} h, fitted prior"
        )
        return finish(fallback_config(base, prior), empty_grid, True, reason)

    rows: list[dict[str, Any]] = []
    seen_baselines: set[tuple[str, float]] = set()

    def measure(method_label: str, config: TrendingConfig, with_baselines: bool) -> None:
        result = replay(
            data,
            refresh_minutes=refresh_minutes,
            trending=config,
            window_start=window_start,
            window_end=end,
        )
        scored = result.candidates
        rows.append(
            {
                "method": method_label,
                "half_life": float(config.half_life_hours),
                "freshness": bool(config.freshness),
                **_means(scored, "engine"),
            }
        )
        if not with_baselines:
            return
        for name, decays in BASELINES.items():
            h = float(config.half_life_hours) if decays else float("nan")
            key = (name, h if decays else -1.0)
            if key in seen_baselines:
                continue
            seen_baselines.add(key)
            rows.append({"method": name, "half_life": h, "freshness": None, **_means(scored, name)})

    for h in sorted({float(v) for v in half_lives}):
        for f in sorted({bool(v) for v in freshness}, reverse=True):
            config = base.model_copy(
                update={
                    "half_life_hours": h,
                    "freshness": f,
                    "prior_impressions": prior_impressions,
                }
            )
            measure("engine", config, with_baselines=True)
    ctr_like = base.model_copy(
        update={
            "half_life_hours": ALL_TIME_HALF_LIFE,
            "freshness": False,
            "prior_impressions": prior_impressions,
        }
    )
    measure("engine_ctr_like", ctr_like, with_baselines=False)
    grid = pd.DataFrame(rows, columns=list(GRID_COLUMNS))

    engine = grid[grid["method"] == "engine"]
    chosen_index = _choose(engine, base)
    chosen_row: dict[str, Any] = {str(k): v for k, v in grid.loc[chosen_index].items()}
    chosen = base.model_copy(
        update={
            "half_life_hours": float(chosen_row["half_life"]),
            "freshness": bool(chosen_row["freshness"]),
            "prior_impressions": prior_impressions,
        }
    )
    baselines = grid[grid["method"].isin(list(BASELINES))]
    first_best = int(np.argmax(baselines["auc"].to_numpy()))
    best_b: dict[str, Any] = {str(k): v for k, v in baselines.iloc[first_best].items()}
    best_baseline = {
        "method": str(best_b["method"]),
        "half_life": _num(float(best_b["half_life"])),
        "auc": float(best_b["auc"]),
        "mrr": float(best_b["mrr"]),
        "ndcg10": float(best_b["ndcg10"]),
    }
    ctr_auc = float(baselines.loc[baselines["method"] == "ctr", "auc"].iloc[0])
    like_auc = float(grid.loc[grid["method"] == "engine_ctr_like", "auc"].iloc[0])
    reproduces = abs(like_auc - ctr_auc) <= CTR_LIKE_TOLERANCE
    if not reproduces:
        notes.append(
            f"the CTR-like setting's AUC {like_auc:.4f} differs from the all-time smoothed "
            f"CTR's {ctr_auc:.4f}"
        )
    below = float(chosen_row["auc"]) < float(best_b["auc"])
    reason = (
        f"back-test on {n_clicked:,} impressions with a click: best AUC "
        f"{float(chosen_row['auc']):.4f} at half-life {chosen.half_life_hours:g} h, "
        f"freshness {'on' if chosen.freshness else 'off'}"
    )
    if below:
        notes.append(
            f"the best engine setting (AUC {float(chosen_row['auc']):.4f}) is below the best "
            f"simple baseline, {best_baseline['method']} (AUC {best_baseline['auc']:.4f})"
        )
        if like_auc > float(chosen_row["auc"]) + TIE_AUC:
            chosen = ctr_like
            reason += (
                f"; below the best baseline, so the CTR-like setting (freshness off, "
                f"all-time half-life, AUC {like_auc:.4f}) is chosen"
            )
    return finish(
        chosen,
        grid,
        False,
        reason,
        best_baseline=best_baseline,
        below_baseline=below,
        ctr_like_reproduces_ctr=reproduces,
    )


def network_log(events: pd.DataFrame, articles: pd.DataFrame) -> MindData | None:
    """The network's own impressions and clicks as an impression log (the
    shape :func:`autotune` reads); None when ``events`` has no impression.

    An impression (a row of the block) belongs to the block seen in one page
    view: same ``session`` (the widget's random id per page view), page
    (``source_article_id``) and ``placement``. It is clicked when that page
    view has a click on its article in that placement. An impression without
    a session stands alone, and a click without one is attributed to no
    impression. Only articles of ``articles`` count (an event of an article
    the corpus does not hold has no age to be scored by).
    """
    kinds = events["kind"].astype("string")
    known = events["article_id"].astype("string").isin(articles["article_id"].astype(str))
    shown = events[(kinds == "impression").to_numpy() & known.to_numpy()]
    if shown.empty:
        return None

    def keys(frame: pd.DataFrame) -> pd.Series:
        parts = [frame[c].astype("string").fillna("") for c in ("session", "source_article_id")]
        placement = frame["placement"].astype("string").fillna("")
        return parts[0] + "\x1f" + parts[1] + "\x1f" + placement

    view = keys(shown)
    has_session = shown["session"].astype("string").fillna("").to_numpy() != ""
    view = view.where(
        has_session, "\x1e" + pd.Series(np.arange(len(shown)), index=shown.index).astype(str)
    )
    clicks = events[(kinds == "click").to_numpy()]
    clicked_keys = set((keys(clicks) + "\x1f" + clicks["article_id"].astype("string")).dropna())
    label = (view + "\x1f" + shown["article_id"].astype("string")).isin(clicked_keys)
    codes, _ = pd.factorize(view, sort=False)
    candidates = pd.DataFrame(
        {
            "impression_id": pd.Series([f"v{c}" for c in codes], dtype="string"),
            "user_id": shown["session"].astype("string").fillna("").to_numpy(),
            "ts": pd.to_datetime(shown["ts"].to_numpy(), utc=True),
            "article_id": shown["article_id"].astype("string").to_numpy(),
            "label": pd.array(label.to_numpy().astype(np.int8), dtype="Int8"),
        }
    )
    # The 0-based place in the block: as logged (events count from 1), else by order.
    by_order = candidates.groupby("impression_id", sort=False).cumcount().to_numpy()
    logged = (
        pd.to_numeric(shown["position"], errors="coerce").to_numpy(dtype=np.float64) - 1
        if "position" in shown
        else np.full(len(shown), np.nan)
    )
    candidates["position"] = np.where(np.isnan(logged), by_order, logged).astype(np.int64)
    candidates = candidates.sort_values("ts", kind="stable").reset_index(drop=True)
    behaviors = (
        candidates.groupby("impression_id", sort=False)
        .agg(user_id=("user_id", "first"), ts=("ts", "min"), n_candidates=("article_id", "size"))
        .reset_index()
        .assign(history="")
    )
    frame = articles[["article_id", "published_at"]].assign(
        article_id=articles["article_id"].astype(str)
    )
    return MindData(
        articles=frame.reset_index(drop=True), behaviors=behaviors, candidates=candidates
    )


def tune_trending(
    trending: TrendingConfig,
    events: pd.DataFrame,
    articles: pd.DataFrame,
    now: pd.Timestamp,
) -> tuple[TrendingConfig, dict[str, Any]]:
    """The trending settings a refit uses, and what the run record says of
    them: ``trending`` itself when ``trending.autotune`` is off or the log
    has no impression, else :func:`autotune`'s choice on the network's own
    log (:func:`network_log`) up to ``now``."""
    if not trending.autotune:
        return trending, {"tuned": False, "reason": "trending.autotune is off"}
    log = network_log(events, articles)
    if log is None:
        return trending, {
            "tuned": False,
            "reason": "no impressions in the events: the configured settings are used",
        }
    result = autotune(
        log,
        at=now,
        holdout_hours=trending.autotune_holdout_hours,
        min_clicked_impressions=trending.autotune_min_clicked_impressions,
        base=trending,
    )
    return result.config, {"tuned": not result.fallback, **result.to_dict()}


__all__ = [
    "ALL_TIME_HALF_LIFE",
    "BASELINES",
    "CTR_LIKE_TOLERANCE",
    "FALLBACK_HALF_LIFE",
    "GRID_COLUMNS",
    "TIE_AUC",
    "TuneResult",
    "article_counts",
    "autotune",
    "fallback_config",
    "fit_beta",
    "network_log",
    "tune_trending",
]
