"""The evaluation report: a metric table for the terminal and an HTML page with plots.

Plots are drawn on figures made without pyplot (rendered by Agg, no display
needed, the process's backend untouched), saved as
PNG files in a folder beside the HTML file (``<name>_files/``) and embedded
in the page, so the page can be mailed on its own. Every text that comes
from data is HTML-escaped. The evaluation's warnings (``facts["warnings"]``:
metrics on too small a sample) open the page, above everything else.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.evaluate.evaluation import Evaluation
from recommender.evaluate.lists import LIST_METRICS

METRIC_NAMES = {"auc": "AUC", "mrr": "MRR", "ndcg@5": "nDCG@5", "ndcg@10": "nDCG@10"}


def _figure(**kwargs: Any) -> Any:
    """A figure made without pyplot: saving it renders with Agg, and drawing it
    never switches the process's backend (inline plots in a notebook stay)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _colors() -> Any:
    import matplotlib

    return matplotlib.colormaps["tab10"]


def format_interval(mean: float, low: float, high: float, digits: int = 4) -> str:
    """``0.6812 [0.6790, 0.6835]``."""
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def metric_frame(table: pd.DataFrame) -> pd.DataFrame:
    """A replay or blend table as one row per (setting, method), one column per metric."""
    if table.empty:
        return pd.DataFrame()
    cells = table.assign(
        cell=[
            format_interval(m, lo, hi)
            for m, lo, hi in zip(table["mean"], table["low"], table["high"], strict=True)
        ]
    )
    wide = cells.pivot_table(
        index=["setting", "label"], columns="metric", values="cell", aggfunc="first", sort=False
    )
    columns = [m for m in METRIC_NAMES if m in wide.columns]
    wide = wide[columns].rename(columns=METRIC_NAMES)
    return wide.rename_axis(index=["setting", "method"], columns=None)


def plot_metric_bars(table: pd.DataFrame, path: Path, title: str) -> Path:
    """One panel per metric; a bar per method and setting with its 95% interval."""
    metrics = [m for m in METRIC_NAMES if m in set(table["metric"])]
    settings = list(dict.fromkeys(table["setting"]))
    labels = list(dict.fromkeys(table["label"]))
    fig = _figure(figsize=(4.2 * len(metrics), 4.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    width = 0.8 / max(1, len(settings))
    colors = _colors()
    for ax, metric in zip(axes[0], metrics, strict=True):
        part = table[table["metric"] == metric]
        for j, setting in enumerate(settings):
            rows = part[part["setting"] == setting].set_index("label").reindex(labels)
            x = np.arange(len(labels)) + (j - (len(settings) - 1) / 2) * width
            err = np.vstack([rows["mean"] - rows["low"], rows["high"] - rows["mean"]])
            ax.bar(x, rows["mean"], width, yerr=err, capsize=2, label=setting, color=colors(j))
        ax.set_title(METRIC_NAMES[metric])
        ax.set_xticks(np.arange(len(labels)))
        ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=8)
        low = float(part["low"].min())
        ax.set_ylim(max(0.0, low - 0.05), min(1.0, float(part["high"].max()) + 0.03))
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(settings), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    return path


def plot_top_ctr(top_ctr: pd.DataFrame, path: Path, labels: dict[str, str]) -> Path:
    """CTR of each method's top articles, per setting, against all shown articles."""
    settings = list(dict.fromkeys(top_ctr["setting"]))
    methods = [m for m in dict.fromkeys(top_ctr["method"]) if m != "all"]
    overall = top_ctr[top_ctr["method"] == "all"]["ctr"].astype(float)
    fig = _figure(figsize=(8, 0.5 + 0.45 * len(methods) * max(1, len(settings)) / 1.5))
    ax = fig.subplots()
    height = 0.8 / max(1, len(settings))
    colors = _colors()
    for j, setting in enumerate(settings):
        part = top_ctr[top_ctr["setting"] == setting].set_index("method")["ctr"].astype(float)
        y = np.arange(len(methods)) + (j - (len(settings) - 1) / 2) * height
        ax.barh(y, part.reindex(methods), height, label=setting, color=colors(j))
    if len(overall):
        ax.axvline(
            float(overall.iloc[0]),
            color="black",
            linestyle="--",
            label=f"all shown articles ({float(overall.iloc[0]):.2%})",
        )
    ax.set_yticks(np.arange(len(methods)))
    ax.set_yticklabels([labels.get(m, m) for m in methods], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("CTR of the method's top 10 until the next refresh")
    ax.set_title("CTR of the recommended vs all articles")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_list_metrics(lists: pd.DataFrame, path: Path) -> Path:
    """Coverage, diversity, cross-site share, age and novelty of each list variant."""
    metrics = [m for m in LIST_METRICS if m in lists.columns]
    fig = _figure(figsize=(12, 6.4))
    axes = fig.subplots(2, 3, squeeze=False)
    colors = _colors()
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        values = lists[metric].astype(float)
        ax.bar(np.arange(len(values)), values, color=[colors(i) for i in range(len(values))])
        ax.set_title(LIST_METRICS[metric], fontsize=10)
        ax.set_xticks(np.arange(len(values)))
        ax.set_xticklabels(list(lists.index), rotation=20, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(metrics) :]:
        ax.axis("off")
    fig.suptitle("The engine's lists: coverage and diversity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _table_html(frame: pd.DataFrame, index: bool = True) -> str:
    if frame.empty:
        return "<p>(none)</p>"
    frame = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image_html(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
.warning { color: #a00; font-weight: bold; border: 2px solid #c00; background: #fee;
           padding: 0.6em 1em; margin: 1em 0; }
"""


def warnings_html(warnings: list[str]) -> str:
    """The warnings as a red box (empty string without any)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
    return f'<div class="warning" role="alert"><p>Warning</p><ul>{items}</ul></div>'


def write_report(evaluation: Evaluation, path: str | Path, *, title: str = "") -> Path:
    """Write the HTML report (and its PNG files) for ``evaluation``; return its path."""
    from recommender.evaluate.replay import METHODS

    path = Path(path)
    figures = path.with_name(path.stem + "_files")
    figures.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title or 'Recommender evaluation')}</h1>"]
    parts.append(warnings_html(list(evaluation.facts.get("warnings") or [])))
    facts = {k: v for k, v in evaluation.facts.items() if k not in ("timings", "warnings")}
    parts.append("<h2>What was evaluated</h2>")
    parts.append(
        _table_html(pd.DataFrame({"fact": list(facts), "value": list(facts.values())}), False)
    )
    if not evaluation.replay.empty:
        parts.append("<h2>Trending replay</h2>")
        parts.append(
            '<p class="note">Impressions of the log\'s last day, ranked by the scores of the '
            "latest refresh (only events before it). Mean over impressions with a click, with "
            "a 95% bootstrap interval over impressions. Ties count as random order.</p>"
        )
        parts.append(_table_html(metric_frame(evaluation.replay)))
        png = plot_metric_bars(evaluation.replay, figures / "replay_metrics.png", "Trending replay")
        parts.append(_image_html(png, "replay metrics with intervals"))
    if not evaluation.top_ctr.empty:
        png = plot_top_ctr(evaluation.top_ctr, figures / "top_ctr.png", METHODS)
        parts.append("<h2>CTR of the recommended vs all articles</h2>")
        parts.append(_image_html(png, "CTR of top articles"))
        ctr = evaluation.top_ctr.assign(
            method=evaluation.top_ctr["method"].map(lambda m: METHODS.get(m, m)),
            ctr=evaluation.top_ctr["ctr"].map(lambda v: f"{v:.2%}"),
        )
        parts.append(_table_html(ctr[["setting", "method", "clicks", "impressions", "ctr"]], False))
    if not evaluation.blend.empty:
        parts.append("<h2>Content, trending and the blend</h2>")
        parts.append(
            '<p class="note">Impressions whose user history names articles with text; '
            "relevance is the cosine with the history profile.</p>"
        )
        parts.append(_table_html(metric_frame(evaluation.blend)))
        png = plot_metric_bars(evaluation.blend, figures / "blend_metrics.png", "Blend")
        parts.append(_image_html(png, "blend metrics with intervals"))
    if not evaluation.lists.empty:
        parts.append("<h2>Coverage and diversity of the lists</h2>")
        shown = evaluation.lists.rename(columns=LIST_METRICS).map(lambda v: f"{v:.3f}")
        parts.append(_table_html(shown.rename_axis("lists")))
        png = plot_list_metrics(evaluation.lists, figures / "list_metrics.png")
        parts.append(_image_html(png, "list metrics"))
    timings = evaluation.facts.get("timings")
    if timings:
        parts.append(
            '<p class="note">Seconds per part (shared machine, noisy): '
            f"{html.escape(str(timings))}</p>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title or 'Recommender evaluation')}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path


__all__ = [
    "format_interval",
    "metric_frame",
    "plot_list_metrics",
    "plot_metric_bars",
    "plot_top_ctr",
    "warnings_html",
    "write_report",
]
