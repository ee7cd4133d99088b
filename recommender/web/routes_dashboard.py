"""The operator's page: ``GET /dashboard`` (off unless a token is set).

What it shows, as plots drawn on the server (inline SVG, see
:mod:`recommender.web.dashboard_svg`; nothing is loaded from anywhere):

- **Click-through rate** (clicks per impression) over time, per site, per
  placement and, when the events carry one, per variant; hourly when the
  events span two days at most, else daily; and each one's CTR over the whole
  window. The site is the site of the page that showed the block (its list's
  site in the published run; ``(unknown page)`` when the run has no list of
  that page). The window is the last :data:`WINDOW_DAYS` days of the spool.
- **What trends now**: the network's trending mix and each site's, by trend score.
- **The runs**: each recorded run's time and lists, coloured by status.
- **The latest refit**: the trending back-test of the newest run that has
  one (AUC per half-life, freshness on and off, the best simple baseline as
  a reference line) and the ranker's figures when the run records them.

The data comes from the service's own events spool and the store's run
records: no other server. The page is computed in a worker thread at most
once per :data:`CACHE_SECONDS` (reading the spool is not per request).

**Access.** The route exists only when :attr:`ServiceSettings.dashboard_token`
is set (else ``/dashboard`` is a 404 like any unknown path). A request needs
``Authorization: Bearer <token>`` or ``?token=<token>`` (compared in constant
time), else 401. The token is never logged: a ``token`` query parameter is
removed from the request's recorded query string before the access log sees
it. The answer is ``no-store``, with a Content-Security-Policy that lets the
page load nothing at all.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from recommender.web import dashboard_svg as svg
from recommender.web.service import Service

_log = logging.getLogger(__name__)

#: The computed page is reused for this long.
CACHE_SECONDS = 30.0
#: Days of events shown (ending at the newest event).
WINDOW_DAYS = 14
#: Hourly points when the events span at most this long, else daily.
HOURLY_SPAN = timedelta(hours=48)
#: Series drawn per chart at most (by impressions); the rest are merged.
MAX_SERIES = 8
#: Distinct pages whose site is looked up at most (the most shown first).
MAX_PAGES = 20_000
#: Runs shown (the newest).
MAX_RUNS = 30
#: Items of the network's trending mix shown, and of each site's.
TRENDING_ITEMS = 10
SITE_TRENDING_ITEMS = 5
#: Sites whose trending mix is shown at most.
MAX_SITES = 12
UNKNOWN_PAGE = "(unknown page)"
NOT_LOOKED_UP = "(pages not looked up)"
#: Spool bytes read at most (the newest files first).
MAX_SPOOL_BYTES = 128 * 1024 * 1024
NO_PLACEMENT = "(none)"
OTHER = "(other)"
STATUS_COLOURS = {"current": "#009E73", "kept": "#0072B2", "failed": "#D55E00"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

_SPOOL_NAME = re.compile(r"^events-(\d{8}T\d{6})")


# -- access --------------------------------------------------------------------
def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token")


def _token_matches(presented: str | None, expected: str) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _forget_query_token(request: Request) -> None:
    """Drop ``token`` from the request's query string as the server records
    it (uvicorn's access log reads it from the scope after the response)."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    kept = [(key, value) for key, value in pairs if key != "token"]
    request.scope["query_string"] = urlencode(kept).encode("latin-1")


# -- the data ------------------------------------------------------------------
@dataclass(frozen=True)
class SpoolWindow:
    """The spool files read, and whether older ones were left out for size."""

    files: list[Path]
    cut_for_size: bool = False


def spool_files(
    folder: Path, days: int = WINDOW_DAYS, max_bytes: int = MAX_SPOOL_BYTES
) -> SpoolWindow:
    """The spool's files that may hold events of the last ``days`` days
    before its newest file (by the time in their names; a file named
    otherwise is always read), newest first up to ``max_bytes`` in all."""
    if not folder.is_dir():
        return SpoolWindow([])
    files = sorted(p for p in folder.glob("*.csv") if p.is_file())
    stamps: dict[Path, datetime] = {}
    for path in files:
        found = _SPOOL_NAME.match(path.name)
        if found:
            stamps[path] = datetime.strptime(found.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    if stamps:
        since = max(stamps.values()) - timedelta(days=days + 1)
        files = [p for p in files if p not in stamps or stamps[p] >= since]
    kept: list[Path] = []
    total = 0
    for path in reversed(files):
        try:
            total += path.stat().st_size
        except OSError:
            continue  # gone since the listing (the spool is written meanwhile)
        if total > max_bytes and kept:
            return SpoolWindow(sorted(kept), cut_for_size=True)
        kept.append(path)
    return SpoolWindow(sorted(kept))


def load_events(window: SpoolWindow) -> tuple[Any, str]:
    """The impressions and clicks of ``window``'s files, in the last
    :data:`WINDOW_DAYS` days before the newest (a frame), and what went wrong
    reading them ("" when nothing did)."""
    import pandas as pd

    from recommender.errors import RecommenderError
    from recommender.ingest import read_events

    empty = pd.DataFrame(columns=["ts", "kind", "placement", "source_article_id"])
    if not window.files:
        return empty, ""
    try:
        frame = read_events(window.files).valid
    except (RecommenderError, OSError, ValueError) as error:
        _log.error("dashboard: cannot read the events spool: %s", error)
        return empty, str(error)
    frame = frame[frame["kind"].isin(["impression", "click"])]
    if len(frame):
        newest = frame["ts"].max()
        frame = frame[frame["ts"] >= newest - pd.Timedelta(days=WINDOW_DAYS)]
    return frame.reset_index(drop=True), ""


class PageSites:
    """Page id -> the site of its list, read from the store once per run
    (not through the service's lookups, whose cache holds what readers ask
    for); at most :data:`MAX_PAGES` pages per run, the most shown first."""

    def __init__(self) -> None:
        self._run: str | None = None
        self._sites: dict[str, str | None] = {}

    def sites(self, store: Any, run_id: str | None, pages: Any) -> dict[str, str]:
        """Site per page of ``pages`` (a Series of page ids): the site of the
        page's list, :data:`UNKNOWN_PAGE` when the run has none, and
        :data:`NOT_LOOKED_UP` beyond the :data:`MAX_PAGES` most shown."""
        if run_id != self._run:
            self._run, self._sites = run_id, {}
        counts = pages.dropna().astype(str).value_counts()
        answer: dict[str, str] = {}
        for page in counts.index:
            if page not in self._sites:
                if store is None or len(self._sites) >= MAX_PAGES:
                    answer[page] = NOT_LOOKED_UP
                    continue
                try:
                    found = store.get(page)
                except Exception as error:  # a damaged list: that page's site is unknown
                    _log.warning("dashboard: cannot read the list of a page: %s", error)
                    found = None
                self._sites[page] = found.site if found is not None else None
            answer[page] = self._sites[page] or UNKNOWN_PAGE
        return answer


@dataclass(frozen=True)
class Ctr:
    """Impressions and clicks per (bucket, group), and per group overall."""

    buckets: list[str]
    points: dict[str, list[svg.Point]]
    totals: list[svg.Bar]
    hourly: bool = True


def ctr_over_time(
    events: Any, column: str, names: dict[str, str] | None = None, *, what: str
) -> Ctr:
    """CTR per ``column`` value over time: hourly when ``events`` span at
    most :data:`HOURLY_SPAN`, else daily. ``names``: value -> shown name."""
    import pandas as pd

    names = names or {}
    if not len(events):
        return Ctr([], {}, [])
    ts = pd.to_datetime(events["ts"], utc=True)
    hourly = ts.max() - ts.min() <= HOURLY_SPAN
    freq, fmt = ("h", "%m-%d %H:00") if hourly else ("D", "%Y-%m-%d")
    bucket = ts.dt.floor(freq)
    span = pd.date_range(bucket.min(), bucket.max(), freq=freq)
    labels = [stamp.strftime(fmt) for stamp in span]
    position = {stamp: at for at, stamp in enumerate(span)}
    kind = events["kind"].astype(str)
    frame = pd.DataFrame(
        {
            "bucket": bucket,
            "group": events[column].astype("string").fillna("").astype(str),
            "impressions": (kind == "impression").astype(int),
            "clicks": (kind == "click").astype(int),
        }
    )
    by_size = (
        frame.groupby("group")["impressions"].sum().sort_values(ascending=False, kind="stable")
    )
    shown = list(by_size.index[:MAX_SERIES])
    if len(by_size) > MAX_SERIES:
        frame.loc[~frame["group"].isin(shown), "group"] = OTHER
        shown.append(OTHER)
    cells = frame.groupby(["group", "bucket"])[["impressions", "clicks"]].sum().reset_index()
    points: dict[str, list[svg.Point]] = {}
    for group in shown:
        name = names.get(group, group)
        series = []
        mine = cells[cells["group"] == group]
        for stamp, shown_n, clicked_n in zip(
            mine["bucket"], mine["impressions"], mine["clicks"], strict=True
        ):
            shows, clicks = int(shown_n), int(clicked_n)
            if shows == 0:
                continue  # no CTR without impressions: the line breaks there
            at = position[stamp]
            series.append(
                svg.Point(
                    at,
                    clicks / shows,
                    f"{name}, {labels[at]}: {clicks} clicks / {shows} impressions "
                    f"= {clicks / shows:.2%}",
                    {"group": group, "impressions": str(shows), "clicks": str(clicks)},
                )
            )
        points[name] = series
    totals = frame.groupby("group")[["impressions", "clicks"]].sum()
    bars = []
    for at, group in enumerate(shown):
        shows, clicks = int(totals.loc[group, "impressions"]), int(totals.loc[group, "clicks"])
        rate = clicks / shows if shows else 0.0
        name = names.get(group, group)
        bars.append(
            svg.Bar(
                name,
                rate,
                f"{name}: {clicks} clicks / {shows} impressions"
                + (f" = {rate:.2%}" if shows else " (no impressions)"),
                svg.PALETTE[at % len(svg.PALETTE)],
                {"group": group, "impressions": str(shows), "clicks": str(clicks), "what": what},
            )
        )
    return Ctr(labels, points, bars, hourly)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _run_seconds(summary: dict[str, Any]) -> float:
    timings = summary.get("timings")
    if not isinstance(timings, dict):
        return 0.0
    return sum(n for n in map(_number, timings.values()) if n is not None)


def run_charts(runs: list[Any]) -> dict[str, Markup]:
    """The runs (oldest to newest): seconds and lists per run, by status."""
    shown = list(reversed(runs[:MAX_RUNS]))
    time_bars, list_bars = [], []
    for run in shown:
        summary = run.summary if isinstance(run.summary, dict) else {}
        seconds = _run_seconds(summary)
        coverage = summary.get("coverage", {})
        full = _number(coverage.get("full_lists")) if isinstance(coverage, dict) else None
        trending = summary.get("trending", {})
        reason = trending.get("reason", "") if isinstance(trending, dict) else ""
        described = (
            f"{run.run_id} ({run.status}, {'delta' if run.is_delta else 'full'}), "
            f"{run.created_at[:16].replace('T', ' ')} UTC: {run.n_lists} lists, {seconds:.1f} s"
            + (f", {full:.0%} full lists" if full is not None else "")
            + (f"; trending: {reason}" if reason else "")
            + (f"; error: {run.error}" if run.error else "")
        )
        colour = STATUS_COLOURS.get(run.status, "#999999")
        data = {"run": run.run_id, "status": run.status}
        time_bars.append(svg.Bar(run.run_id, seconds, described, colour, data))
        list_bars.append(svg.Bar(run.run_id, float(run.n_lists), described, colour, data))
    if not shown:
        return {}
    return {
        "seconds": svg.column_chart(time_bars, chart_id="runs-seconds", label="Seconds per run"),
        "lists": svg.column_chart(list_bars, chart_id="runs-lists", label="Lists per run"),
    }


def backtest_chart(trending: dict[str, Any]) -> Markup | None:
    """AUC per half-life of the trending back-test, freshness on and off,
    with the best simple baseline as a reference line; None without a grid."""
    grid = trending.get("grid")
    if not isinstance(grid, list) or not grid:
        return None
    rows = [r for r in grid if isinstance(r, dict) and r.get("method") == "engine"]
    half_lives = sorted({h for r in rows if (h := _number(r.get("half_life"))) is not None})
    if not half_lives:
        return None
    at = {h: i for i, h in enumerate(half_lives)}
    series: dict[str, list[svg.Point]] = {}
    for freshness, name in ((True, "engine, freshness on"), (False, "engine, freshness off")):
        points = []
        for row in rows:
            h, auc = _number(row.get("half_life")), _number(row.get("auc"))
            if h is None or auc is None or bool(row.get("freshness")) is not freshness:
                continue
            points.append(
                svg.Point(
                    at[h],
                    auc,
                    f"{name}, half-life {h:g} h: AUC {auc:.4f}",
                    {"half-life": f"{h:g}", "freshness": str(freshness).lower()},
                )
            )
        if points:
            series[name] = points
    references = []
    best = trending.get("best_baseline")
    if isinstance(best, dict) and (auc := _number(best.get("auc"))) is not None:
        references.append((f"best baseline: {best.get('method', '?')}", auc))
    values = [p.y for points in series.values() for p in points] + [v for _, v in references]
    low = math.floor(min(values) * 50) / 50 if values else 0.0
    high = math.ceil(max(values) * 50) / 50 if values else 1.0
    return svg.line_chart(
        series,
        [f"{h:g} h" for h in half_lives],
        chart_id="backtest",
        label="Back-test AUC per half-life",
        y_format="plain",
        y_min=max(low - 0.02, 0.0),
        y_max=min(high + 0.02, 1.0) if high + 0.02 > low else None,
        references=references,
    )


def figures_chart(figures: dict[str, Any], chart_id: str, label: str) -> Markup | None:
    """A bar per numeric figure of ``figures`` (one level of nesting is
    flattened as ``outer.inner``); None when there is none."""
    bars = []
    for key, value in figures.items():
        inner = value.items() if isinstance(value, dict) else [("", value)]
        for sub, figure in inner:
            number = _number(figure) if not isinstance(figure, bool) else None
            if number is None:
                continue
            name = f"{key}.{sub}" if sub else str(key)
            bars.append(svg.Bar(name, number, f"{name}: {number:.6g}", data={"figure": name}))
    if not bars:
        return None
    return svg.bar_chart(bars[:40], chart_id=chart_id, label=label, label_width=240)


def comparison_chart(trending: dict[str, Any]) -> Markup | None:
    """The chosen setting's AUC, MRR and nDCG@10 beside the best baseline's."""
    chosen, best = trending.get("chosen"), trending.get("best_baseline")
    bars = []
    for who, row, colour in (
        ("chosen", chosen, svg.PALETTE[0]),
        ("best baseline", best, "#666666"),
    ):
        if not isinstance(row, dict):
            continue
        for metric in ("auc", "mrr", "ndcg10"):
            value = _number(row.get(metric))
            if value is not None:
                name = f"{who} {metric}"
                bars.append(svg.Bar(name, value, f"{name}: {value:.4f}", colour, {"figure": name}))
    if not bars:
        return None
    return svg.bar_chart(
        bars, chart_id="refit-figures", label="Chosen setting and best baseline", max_value=1.0
    )


# -- the page ------------------------------------------------------------------
_TEMPLATE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>recommender: dashboard</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1580px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
h3 { font-size: 0.95em; margin: 0.8em 0 0.2em; color: #444; }
.facts { color: #555; margin: 0; font-size: 0.9em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em 2em; }
figure { margin: 0; } figcaption { font-size: 0.9em; font-weight: 600; margin-bottom: 0.2em; }
svg.chart { max-width: 100%; height: auto; background: #fff; }
svg .grid { stroke: #e4e4e4; } svg .tick, svg .bar-label, svg .bar-value { font-size: 11px;
       fill: #444; }
svg .point:hover { r: 5; }
.legend { list-style: none; padding: 0; margin: 0.2em 0 0 60px; display: flex; flex-wrap: wrap;
          gap: 0.3em 1.2em; font-size: 0.85em; }
.swatch { display: inline-block; width: 1.4em; border-top: 3px solid; margin-right: 0.4em;
          vertical-align: middle; } .swatch.dashed { border-top-style: dashed; }
.note { color: #777; font-style: italic; } .error { color: #b00; }
</style></head>
<body>
<h1>recommender: operator's dashboard</h1>
<p class="facts">Run served: <strong>{{ run_id or "none" }}</strong> &middot;
page computed {{ generated }} UTC (kept {{ cache_seconds }} s)</p>
<p class="facts">Events: {{ impressions }} impressions, {{ clicks }} clicks
{% if window %}from {{ window[0] }} to {{ window[1] }} UTC {% endif %}
({{ files }} spool files in {{ events_dir }}{% if cut_for_size %}; only the newest
{{ max_spool_mb }} MB of files are read{% endif %})</p>
{% if events_error %}<p class="error">The events spool could not be read: {{ events_error }}</p>
{% endif %}

<section id="ctr"><h2>Click-through rate (clicks per impression)</h2>
{% if not ctr %}<p class="note">No impressions or clicks in the events spool yet.</p>{% endif %}
<div class="grid">
{% for chart in ctr %}
<figure class="ctr-chart" data-dimension="{{ chart.dimension }}">
<figcaption>CTR per {{ chart.dimension }}, {{ chart.step }}</figcaption>
{{ chart.line }}
<h3>Over the window</h3>
{{ chart.totals }}
</figure>
{% endfor %}
</div></section>

<section id="trending"><h2>What trends now</h2>
<div class="grid">
{% if network %}<figure><figcaption>The network</figcaption>{{ network }}</figure>
{% else %}<p class="note">Nothing is trending: no run is served.</p>{% endif %}
{% for name, chart in site_trending %}
<figure><figcaption>{{ name }}</figcaption>{{ chart }}</figure>
{% endfor %}
</div></section>

<section id="runs"><h2>Runs</h2>
{% if runs %}
<div class="grid">
<figure><figcaption>Seconds per run (oldest to newest)</figcaption>{{ runs.seconds }}
{{ status_legend }}</figure>
<figure><figcaption>Lists per run</figcaption>{{ runs.lists }}</figure>
</div>
{% else %}<p class="note">No run recorded{% if store_error %}: {{ store_error }}{% endif %}.</p>
{% endif %}
</section>

<section id="refit"><h2>Latest refit</h2>
{% if refit_run %}<p class="facts">Run {{ refit_run }}: trending
{% if tuned %}tuned{% else %}not tuned{% endif %}{% if reason %}: {{ reason }}{% endif %}</p>
{% endif %}
<div class="grid">
{% if backtest %}<figure><figcaption>Trending back-test: AUC per half-life</figcaption>
{{ backtest }}</figure>{% endif %}
{% if comparison %}<figure><figcaption>Chosen setting and best baseline</figcaption>
{{ comparison }}</figure>{% endif %}
{% if ranker %}<figure><figcaption>Ranker</figcaption>{{ ranker }}</figure>{% endif %}
</div>
{% if not backtest %}<p class="note">No trending back-test recorded in the runs.</p>{% endif %}
{% if ranker %}<p class="facts">Ranker figures of run {{ ranker_run }}.</p>
{% else %}<p class="note">No ranker figures recorded in the runs.</p>{% endif %}
</section>
</body></html>
"""

_environment = Environment(
    autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_template = _environment.from_string(_TEMPLATE)


def ctr_charts(events: Any, site_names: dict[str, str]) -> list[dict[str, Any]]:
    """The CTR charts of ``events`` (with a ``site`` column): per site, per
    placement and, when the events carry one, per variant."""
    dimensions: list[tuple[str, dict[str, str]]] = [("site", dict(site_names)), ("placement", {})]
    if "variant" in events.columns and events["variant"].notna().any():
        events = events.assign(variant=events["variant"].astype("string").fillna(NO_PLACEMENT))
        dimensions.append(("variant", {}))
    charts = []
    for dimension, names in dimensions:
        found = ctr_over_time(events, dimension, names, what=dimension)
        charts.append(
            {
                "dimension": dimension,
                "step": "per hour" if found.hourly else "per day",
                "line": svg.line_chart(
                    found.points,
                    found.buckets,
                    chart_id=f"ctr-{dimension}",
                    label=f"CTR per {dimension} over time",
                ),
                "totals": svg.bar_chart(
                    found.totals,
                    chart_id=f"ctr-{dimension}-total",
                    label=f"CTR per {dimension} over the window",
                    value_format="percent",
                    label_width=200,
                ),
            }
        )
    return charts


def trending_chart(lst: Any, chart_id: str, label: str, with_site: bool) -> Markup | None:
    bars = [
        svg.Bar(
            f"{item.title} ({item.site_name})" if with_site else item.title,
            float(item.trend),
            f"{item.title} ({item.site_name}, {item.site}): trend {item.trend:.3f}, "
            f"score {item.score:.3f}",
            data={"article": item.article_id, "site": item.site},
        )
        for item in lst.items
    ]
    if not bars:
        return None
    return svg.bar_chart(bars, chart_id=chart_id, label=label, max_value=1.0)


def build_page(
    service: Service, now: datetime | None = None, page_sites: PageSites | None = None
) -> str:
    """The dashboard's HTML, from the spool, the served run and the run records."""
    from recommender.store import open_store

    settings = service.settings
    now = now or datetime.now(UTC)
    store: Any = None
    runs: list[Any] = []
    store_error = ""
    try:
        store = open_store(settings.store_url, read_only=True)
        runs = store.runs()
    except Exception as error:  # the page shows the rest; the error is the store's
        store_error = f"{type(error).__name__}: {error}"
        _log.error("dashboard: cannot read the store: %s", store_error)
    try:
        spool = spool_files(settings.events_dir)
        events, events_error = load_events(spool)
        ctr = []
        if len(events):
            sites = (page_sites or PageSites()).sites(
                store, service.recs.run_id, events["source_article_id"]
            )
            events = events.assign(
                site=events["source_article_id"].astype("string").map(sites).fillna(UNKNOWN_PAGE),
                placement=events["placement"].astype("string").fillna(NO_PLACEMENT),
            )
            ctr = ctr_charts(events, settings.sites)
    finally:
        if store is not None:
            store.close()
    network = trending_chart(
        service.recs.network_page(TRENDING_ITEMS), "trending-network", "Trending now", True
    )
    site_keys = list(settings.sites) or sorted(
        {item.site for item in service.recs.network_page(TRENDING_ITEMS).items}
    )
    site_trending = []
    for key in site_keys[:MAX_SITES]:
        lst = service.recs.site_page(key, SITE_TRENDING_ITEMS)
        if lst.fallback:
            continue
        chart = trending_chart(lst, f"trending-{key}", f"Trending on {key}", True)
        if chart is not None:
            site_trending.append((settings.sites.get(key, key), chart))

    kept = [r for r in runs if r.status != "failed" and isinstance(r.summary, dict)]
    with_trending = [r for r in kept if isinstance(r.summary.get("trending"), dict)]
    # The newest refit with a back-test; else the newest run that says why it had none.
    refit = next(
        (r for r in with_trending if r.summary["trending"].get("grid")),
        with_trending[0] if with_trending else None,
    )
    trending: dict[str, Any] = refit.summary["trending"] if refit else {}
    ranked = next((r for r in kept if isinstance(r.summary.get("ranker"), dict)), None)
    ranker = ranked.summary["ranker"] if ranked else None
    window = None
    if len(events):
        window = (f"{events['ts'].min():%Y-%m-%d %H:%M}", f"{events['ts'].max():%Y-%m-%d %H:%M}")
    kinds = events["kind"].astype(str) if len(events) else None
    return _template.render(
        run_id=service.recs.run_id,
        generated=f"{now:%Y-%m-%d %H:%M:%S}",
        cache_seconds=f"{CACHE_SECONDS:g}",
        impressions=int((kinds == "impression").sum()) if kinds is not None else 0,
        clicks=int((kinds == "click").sum()) if kinds is not None else 0,
        window=window,
        files=len(spool.files),
        cut_for_size=spool.cut_for_size,
        max_spool_mb=MAX_SPOOL_BYTES // 2**20,
        events_dir=str(settings.events_dir),
        events_error=events_error,
        ctr=ctr,
        network=network,
        site_trending=site_trending,
        runs=run_charts(runs),
        status_legend=svg.legend(list(STATUS_COLOURS.items())),
        store_error=store_error,
        refit_run=refit.run_id if refit else "",
        tuned=bool(trending.get("tuned")),
        reason=str(trending.get("reason", "")),
        backtest=backtest_chart(trending),
        comparison=comparison_chart(trending),
        ranker_run=ranked.run_id if ranked else "",
        ranker=figures_chart(ranker, "ranker", "Ranker figures") if ranker else None,
    )


class DashboardPage:
    """The page, computed in a thread at most once per ``ttl`` seconds."""

    def __init__(
        self,
        service: Service,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.ttl = ttl
        self.clock = clock
        self._page: tuple[float, str] | None = None
        self._lock = asyncio.Lock()
        self._sites = PageSites()

    async def html(self) -> str:
        async with self._lock:  # one computation at a time; the others wait for it
            if self._page is None or self.clock() - self._page[0] >= self.ttl:
                text = await asyncio.to_thread(build_page, self.service, None, self._sites)
                self._page = (self.clock(), text)
            return self._page[1]


def dashboard_router(service: Service, page: DashboardPage | None = None) -> APIRouter:
    """``GET /dashboard`` of ``service`` (register it only when a token is set)."""
    router = APIRouter()
    dashboard = page or DashboardPage(service)
    expected = service.settings.dashboard_token

    @router.get("/dashboard", include_in_schema=False)
    async def show(request: Request) -> Response:
        presented = _presented_token(request)
        _forget_query_token(request)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        if not _token_matches(presented, expected):
            return Response(
                "the dashboard needs its token: Authorization: Bearer <token>\n",
                status_code=401,
                media_type="text/plain; charset=utf-8",
                headers={**headers, "WWW-Authenticate": 'Bearer realm="dashboard"'},
            )
        body = await dashboard.html()
        return Response(
            body,
            media_type="text/html; charset=utf-8",
            headers={
                **headers,
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
            },
        )

    return router
