"""The MIND format: ``news.tsv`` and ``behaviors.tsv`` into Article and Event frames.

MIND (Microsoft News Dataset, Wu et al., ACL 2020) ships each split (train,
dev, test; small or large) as a folder of two tab-separated files without a
header. Its licence forbids redistribution, so the project never ships it:
a user points the evaluation at the folder(s) they downloaded, and the tests
use small files in the same format that the project writes itself.

``news.tsv`` columns
    news_id, category, subcategory, title, abstract, url, title_entities,
    abstract_entities (the entity columns are JSON and are not used).
``behaviors.tsv`` columns
    impression_id, user_id, time (``MM/DD/YYYY hh:mm:ss AM``), history (the
    user's clicked news ids before the log, space-separated, may be empty),
    impressions (space-separated ``news_id-label`` tokens, label 1 = clicked,
    0 = shown and not clicked; the test split has bare ``news_id`` tokens,
    read with an unknown label). News ids contain no ``-``, as in MIND.

How MIND becomes the project's frames
    Articles: ``article_id`` = news_id, ``title``, ``body`` = abstract,
    ``category`` = MIND category (the site's own label), ``tags`` =
    subcategory, ``language`` = ``en``. MIND has no publication time:
    ``published_at`` is the time the article is *first shown* in any
    impression of the log (an upper bound of the real time), and the log's
    first impression time for articles that only appear in histories. Times
    in MIND carry no zone and are read as UTC.

    Sites: MIND is one portal; the network is made of its sections by
    :data:`MIND_SITES`, a fixed category -> site table (news, sports,
    finance, weather, autos, video and regional news form the ``news`` site;
    lifestyle/kids, travel, food and drink, health and the entertainment
    sections are partner sites). A category not in the table goes to the
    ``news`` site.

    Events (:func:`mind_events`): every candidate of every impression is an
    ``impression`` event at the impression's time; every clicked candidate
    is also a ``click`` event. ``session`` holds the user id,
    ``placement`` the impression id and ``position`` the candidate's place
    in its impression line (1 = the first). ``run_id``, ``variant`` and
    ``propensity`` are missing: MIND does not record them.

    Candidates without metadata: a candidate whose news id has no row in
    any ``news.tsv`` (or only a rejected one) is still an impression that
    was shown and clicked or not. It is kept, and its article is added
    without text: empty title, body, category and tags, site
    :data:`MIND_UNKNOWN_SITE`, URL ``https://mind.invalid/<id>``,
    ``published_at`` its first-shown time like any other. Its traffic counts
    for trending like any other article's; having no text, its content
    relevance is 0. :attr:`MindData.articles_without_news` lists them and
    :meth:`MindData.summary` counts them. History ids without a news row add
    nothing to a user's profile (counted in
    :attr:`MindData.history_without_news`).

Rows that cannot be read (wrong number of fields, bad time, a malformed
impression token, a news row without a title or with a bad URL) are
rejected and reported with file, line, field and reason, as for every other
input; the good rows go on. A missing news row is not a rejection (see
above).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.errors import SchemaError
from recommender.schema import (
    EVENT_DTYPES,
    PROBLEM_COLUMNS,
    LoadResult,
    empty_problems,
    validate_articles,
)

_log = logging.getLogger(__name__)

NEWS_COLUMNS = (
    "news_id",
    "category",
    "subcategory",
    "title",
    "abstract",
    "url",
    "title_entities",
    "abstract_entities",
)
BEHAVIOR_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
MIND_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"

#: MIND category -> site key of the network built from MIND's sections.
MIND_SITES: dict[str, str] = {
    "news": "news",
    "sports": "news",
    "finance": "news",
    "weather": "news",
    "autos": "news",
    "video": "news",
    "northamerica": "news",
    "middleeast": "news",
    "lifestyle": "lifestyle",
    "kids": "lifestyle",
    "travel": "travel",
    "foodanddrink": "foodanddrink",
    "health": "health",
    "entertainment": "entertainment",
    "tv": "entertainment",
    "movies": "entertainment",
    "music": "entertainment",
    "games": "entertainment",
}
MIND_DEFAULT_SITE = "news"
#: Site of an article known only from the log (no news.tsv row): no site can be told.
MIND_UNKNOWN_SITE = "unknown"
#: Display names of the sites of :data:`MIND_SITES`.
MIND_SITE_NAMES: dict[str, str] = {
    "news": "MSN News",
    "lifestyle": "MSN Lifestyle",
    "travel": "MSN Travel",
    "foodanddrink": "MSN Food & Drink",
    "health": "MSN Health",
    "entertainment": "MSN Entertainment",
}

CANDIDATE_COLUMNS = ("impression_id", "user_id", "ts", "article_id", "position", "label")
_TOKEN = r"^(?P<article_id>[^\s-]+)(?:-(?P<label>[01]))?$"


def mind_site(categories: pd.Series) -> pd.Series:
    """Site key of each MIND category by :data:`MIND_SITES` (unknown -> ``news``)."""
    lowered = categories.astype("string").str.strip().str.lower()
    return lowered.map(MIND_SITES).fillna(MIND_DEFAULT_SITE).astype("string")


@dataclass(frozen=True)
class MindData:
    """One or more MIND folders read into the project's frames.

    Attributes
    ----------
    articles : Article frame (site by :data:`MIND_SITES`, ``published_at`` =
        first shown).
    behaviors : one row per impression: impression_id (str), user_id (str),
        ts (datetime64 UTC), history (space-separated news ids, may be
        empty), n_candidates (int).
    candidates : one row per shown candidate, in impression order:
        impression_id, user_id, ts, article_id, position (0-based place in
        the impression), label (Int8: 1 clicked, 0 not clicked, <NA> unknown).
    problems : rejected rows (file, row, field, value, reason, action).
    articles_without_news : ids of the articles of ``articles`` that have no
        (valid) news.tsv row: shown in the log, kept without text (see the
        module docs).
    history_without_news : distinct news ids named in histories that have
        no (valid) news.tsv row.
    """

    articles: pd.DataFrame
    behaviors: pd.DataFrame
    candidates: pd.DataFrame
    problems: pd.DataFrame = field(default_factory=empty_problems)
    articles_without_news: pd.Index = field(
        default_factory=lambda: pd.Index([], dtype="string", name="article_id")
    )
    history_without_news: int = 0

    def events(self) -> pd.DataFrame:
        """Impression and click events of every candidate (see :func:`mind_events`)."""
        return mind_events(self.candidates)

    @property
    def candidates_without_news(self) -> int:
        """Candidates whose article has no news.tsv row (kept, without text)."""
        if not len(self.articles_without_news):
            return 0
        return int(self.candidates["article_id"].isin(self.articles_without_news).sum())

    @property
    def articles_with_text(self) -> pd.DataFrame:
        """The articles that have a news.tsv row (title, body, category)."""
        if not len(self.articles_without_news):
            return self.articles
        keep = ~self.articles["article_id"].isin(self.articles_without_news)
        return self.articles[keep.to_numpy()].reset_index(drop=True)

    def summary(self) -> str:
        """One line: impressions, candidates, and how many have no news.tsv row."""
        n = len(self.candidates)
        line = (
            f"{len(self.behaviors):,} impressions, {n:,} candidates, "
            f"{len(self.articles):,} articles"
        )
        missing = self.candidates_without_news
        if missing:
            line += (
                f"; {missing:,} of {n:,} candidates ({missing / n:.0%}) name "
                f"{len(self.articles_without_news):,} news ids with no news.tsv row: "
                "kept as impressions of articles without text"
            )
        if self.history_without_news:
            line += (
                f"; {self.history_without_news:,} news ids of user histories have no "
                "news.tsv row (no text for the profiles)"
            )
        return line

    @property
    def start(self) -> pd.Timestamp:
        """Time of the first impression of the log."""
        return pd.Timestamp(self.behaviors["ts"].min())

    @property
    def end(self) -> pd.Timestamp:
        """Time of the last impression of the log."""
        return pd.Timestamp(self.behaviors["ts"].max())


# ---------------------------------------------------------------------------
# reading


def _read_tsv(path: Path, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lines of a header-less TSV as text columns plus ``_file``/``_row``; lines
    with the wrong number of fields are returned as problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found (expected a MIND-format folder)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SchemaError(f"{path}: cannot read: {error}") from None
    lines = text.splitlines()
    rows: list[list[str]] = []
    numbers: list[int] = []
    bad: list[dict[str, object]] = []
    width = len(columns)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        # Entity columns of news.tsv are optional in hand-written files.
        if len(fields) < width and width == len(NEWS_COLUMNS) and len(fields) >= 6:
            fields += [""] * (width - len(fields))
        if len(fields) != width:
            bad.append(
                {
                    "file": str(path),
                    "row": number,
                    "field": "(line)",
                    "value": line[:200],
                    "reason": f"wrong number of fields: expected {width} tab-separated, "
                    f"got {len(fields)}",
                    "action": "rejected",
                }
            )
            continue
        rows.append(fields)
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=list(columns), dtype="string")
    frame["_file"] = str(path)
    frame["_row"] = np.asarray(numbers, dtype=np.int64)
    problems = pd.DataFrame(bad, columns=PROBLEM_COLUMNS) if bad else empty_problems()
    return frame, problems


def _problems(
    frame: pd.DataFrame, mask: pd.Series, column: str, values: pd.Series, reason: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": frame.loc[mask, "_file"].astype(str),
            "row": frame.loc[mask, "_row"].astype("int64"),
            "field": column,
            "value": values[mask].astype("string").fillna("").str.slice(0, 200),
            "reason": reason,
            "action": "rejected",
        }
    )


def read_mind_behaviors(
    path: str | Path, *, prefix: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read one ``behaviors.tsv``.

    Returns ``(behaviors, candidates, problems)`` as described in
    :class:`MindData`. ``prefix`` is put before every impression id (to keep
    ids unique when several splits, whose ids each start at 1, are read
    together).
    """
    path = Path(path)
    raw, problems = _read_tsv(path, BEHAVIOR_COLUMNS)
    parts = [problems]
    ts = pd.to_datetime(raw["time"], format=MIND_TIME_FORMAT, errors="coerce", utc=True)
    bad_time = ts.isna()
    parts.append(
        _problems(
            raw, bad_time, "time", raw["time"], "unparsable time: expected 11/15/2019 9:05:58 AM"
        )
    )
    impressions = raw["impressions"].fillna("").str.strip()
    empty = impressions == ""
    parts.append(_problems(raw, empty & ~bad_time, "impressions", impressions, "no candidates"))
    keep = ~bad_time & ~empty

    tokens = impressions[keep].str.split(r"\s+", regex=True).explode()
    parsed = tokens.str.extract(_TOKEN)
    bad_token = parsed["article_id"].isna()
    if bad_token.any():
        bad_rows = pd.Index(tokens.index[bad_token.to_numpy()]).unique()
        mask = pd.Series(raw.index.isin(bad_rows), index=raw.index)
        parts.append(
            _problems(
                raw, mask, "impressions", impressions, "malformed candidate: expected NEWSID-0/1"
            )
        )
        keep &= ~mask
        parsed = parsed[parsed.index.isin(raw.index[keep])]
    position = parsed.groupby(level=0).cumcount().to_numpy()
    row_of = parsed.index.to_numpy()
    ids = (prefix + raw["impression_id"].str.strip()).astype("string")
    user = raw["user_id"].str.strip().astype("string")
    candidates = pd.DataFrame(
        {
            "impression_id": ids.to_numpy()[row_of],
            "user_id": user.to_numpy()[row_of],
            "ts": ts.to_numpy()[row_of],
            "article_id": parsed["article_id"].astype("string").to_numpy(),
            "position": position.astype(np.int32),
            "label": pd.to_numeric(parsed["label"], errors="coerce").astype("Int8").to_numpy(),
        }
    )
    candidates["ts"] = pd.to_datetime(candidates["ts"], utc=True)
    for name in ("impression_id", "user_id", "article_id"):
        candidates[name] = candidates[name].astype("string")
    kept = raw[keep]
    behaviors = pd.DataFrame(
        {
            "impression_id": ids[keep].to_numpy(),
            "user_id": user[keep].to_numpy(),
            "ts": ts[keep].to_numpy(),
            "history": kept["history"].fillna("").str.strip().to_numpy(),
            "n_candidates": candidates.groupby("impression_id", sort=False)
            .size()
            .reindex(ids[keep].to_numpy())
            .to_numpy(),
        }
    )
    behaviors["ts"] = pd.to_datetime(behaviors["ts"], utc=True)
    for name in ("impression_id", "user_id", "history"):
        behaviors[name] = behaviors[name].astype("string")
    found = [p for p in parts if len(p)]
    problems = pd.concat(found, ignore_index=True) if found else empty_problems()
    return behaviors, candidates, problems


def read_mind_news(
    path: str | Path,
    *,
    first_seen: pd.Series | None = None,
    default_published_at: pd.Timestamp | None = None,
) -> LoadResult:
    """Read one ``news.tsv`` into a validated Article frame.

    ``first_seen``: a Series news_id -> tz-aware time used as
    ``published_at``; ids without an entry get ``default_published_at``
    (the log's start, see the module docs). Without either, every article
    is dated 2019-11-09 (the first day of MIND's logs).
    """
    path = Path(path)
    raw, problems = _read_tsv(path, NEWS_COLUMNS)
    return _news_frame(raw, problems, first_seen, default_published_at, source=str(path))


def _news_frame(
    raw: pd.DataFrame,
    problems: pd.DataFrame,
    first_seen: pd.Series | None,
    default_published_at: pd.Timestamp | None,
    source: str,
) -> LoadResult:
    default = pd.Timestamp(default_published_at or "2019-11-09T00:00:00Z")
    news_id = raw["news_id"].str.strip()
    published = pd.Series(default, index=raw.index, dtype="datetime64[ns, UTC]")
    if first_seen is not None and len(first_seen):
        mapped = news_id.map(first_seen)
        published = pd.to_datetime(mapped, utc=True).fillna(default).astype("datetime64[ns, UTC]")
    url = raw["url"].str.strip()
    url = url.mask(url == "", "https://mind.invalid/" + news_id)
    frame = pd.DataFrame(
        {
            "article_id": news_id,
            "site": mind_site(raw["category"]),
            "url": url,
            "title": raw["title"],
            "body": raw["abstract"],
            "category": raw["category"].str.strip().str.lower(),
            "tags": raw["subcategory"].str.strip().str.lower(),
            "language": "en",
            "published_at": published,
            "_file": raw["_file"],
            "_row": raw["_row"],
        }
    )
    result = validate_articles(frame, source=source)
    if len(problems):
        result.problems = pd.concat([problems, result.problems], ignore_index=True)
        result.n_read += len(problems)
    return result


def mind_events(candidates: pd.DataFrame) -> pd.DataFrame:
    """Event frame of a candidates frame: one ``impression`` per candidate and
    one ``click`` per clicked candidate, in time order (stable)."""
    shown = pd.DataFrame(
        {
            "ts": candidates["ts"],
            "article_id": candidates["article_id"],
            "kind": "impression",
            "session": candidates["user_id"],
            "placement": candidates["impression_id"],
            "position": candidates["position"].astype("int64") + 1,
        }
    )
    clicked = shown[candidates["label"].fillna(0).to_numpy() == 1].assign(kind="click")
    events = pd.concat([shown, clicked], ignore_index=True)
    events = events.sort_values("ts", kind="stable").reset_index(drop=True)
    out = pd.DataFrame(index=events.index)
    for name, dtype in EVENT_DTYPES.items():
        if name in events:
            out[name] = events[name].astype(dtype)
        else:
            out[name] = pd.Series(pd.NA, index=events.index, dtype=dtype)
    return out


def _mind_folders(folders: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(folders, str | Path):
        folders = [folders]
    paths = [Path(f) for f in folders]
    if not paths:
        raise SchemaError("no MIND folder given")
    for path in paths:
        if not path.is_dir():
            raise SchemaError(f"{path}: not a folder (expected news.tsv and behaviors.tsv in it)")
    return paths


def read_mind(folders: str | Path | Iterable[str | Path]) -> MindData:
    """Read one or more MIND folders (e.g. ``MINDsmall_train`` and
    ``MINDsmall_dev``) into one :class:`MindData`.

    News of all folders are merged (the first row of an id wins: the splits
    repeat articles). With several folders, impression ids are prefixed with
    the folder name (``MINDsmall_dev/17``) since each split numbers from 1.
    A candidate whose news id has no valid row in any ``news.tsv`` is kept,
    and its article added without text (see the module docs).
    """
    paths = _mind_folders(folders)
    behaviors_parts, candidate_parts, problem_parts = [], [], []
    news_parts = []
    for path in paths:
        prefix = f"{path.name}/" if len(paths) > 1 else ""
        b, c, p = read_mind_behaviors(path / "behaviors.tsv", prefix=prefix)
        behaviors_parts.append(b)
        candidate_parts.append(c)
        problem_parts.append(p)
        raw, news_problems = _read_tsv(path / "news.tsv", NEWS_COLUMNS)
        news_parts.append(raw)
        problem_parts.append(news_problems)
    behaviors = pd.concat(behaviors_parts, ignore_index=True)
    candidates = pd.concat(candidate_parts, ignore_index=True)
    raw_news = pd.concat(news_parts, ignore_index=True)
    raw_news = raw_news[~raw_news["news_id"].str.strip().duplicated(keep="first")]

    candidates = candidates.sort_values(["ts", "impression_id", "position"], kind="stable")
    candidates = candidates.reset_index(drop=True)
    behaviors = behaviors.sort_values(["ts", "impression_id"], kind="stable")
    behaviors = behaviors.reset_index(drop=True)
    first_seen = candidates.groupby("article_id", sort=False)["ts"].min()
    start = pd.Timestamp(behaviors["ts"].min()) if len(behaviors) else None
    news = _news_frame(
        raw_news.reset_index(drop=True),
        empty_problems(),
        first_seen,
        start,
        source=str(paths[0] / "news.tsv"),
    )
    problem_parts.append(news.problems)

    with_text = pd.Index(news.valid["article_id"].astype(str))
    shown = pd.Index(candidates["article_id"].astype(str).unique())  # in first-shown order
    without = shown[~shown.isin(with_text)]
    articles = news.valid
    if len(without):
        articles = pd.concat(
            [news.valid, _articles_without_text(without, first_seen, news.valid.columns)],
            ignore_index=True,
        )
        n_missing = int(candidates["article_id"].isin(without).sum())
        _log.info(
            "%d of %d candidates (%d news ids) have no news.tsv row: kept without text",
            n_missing,
            len(candidates),
            len(without),
        )
    found = [p for p in problem_parts if len(p)]
    return MindData(
        articles=articles,
        behaviors=behaviors,
        candidates=candidates,
        problems=pd.concat(found, ignore_index=True) if found else empty_problems(),
        articles_without_news=pd.Index(without, dtype="string", name="article_id"),
        history_without_news=_history_without(behaviors["history"], with_text),
    )


def _articles_without_text(ids: pd.Index, first_seen: pd.Series, columns: pd.Index) -> pd.DataFrame:
    """Article rows for news ids shown in the log without a news.tsv row: no
    text, no category, the unknown site, dated when first shown."""
    article_id = pd.Series(ids, dtype="string")
    empty = pd.Series("", index=article_id.index, dtype="string")
    missing = pd.Series(pd.NA, index=article_id.index, dtype="string")
    return pd.DataFrame(
        {
            "article_id": article_id,
            "site": pd.Series(MIND_UNKNOWN_SITE, index=article_id.index, dtype="string"),
            "url": ("https://mind.invalid/" + article_id).astype("string"),
            "title": empty,
            "body": empty,
            "category": empty,
            "published_at": pd.to_datetime(article_id.map(first_seen), utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            "modified_at": pd.Series(pd.NaT, index=article_id.index, dtype="datetime64[ns, UTC]"),
            "image_url": missing,
            "tags": empty,
            "language": pd.Series("en", index=article_id.index, dtype="string"),
            "status": pd.Series("published", index=article_id.index, dtype="string"),
        }
    )[list(columns)]


def _history_without(histories: pd.Series, with_text: pd.Index) -> int:
    """Distinct news ids named in ``histories`` that are not in ``with_text``."""
    unique = histories.dropna().astype(str).drop_duplicates()
    tokens = unique.str.split().explode().dropna()
    named = pd.Index(tokens.astype(str).unique())
    return int((~named.isin(with_text)).sum())


__all__ = [
    "BEHAVIOR_COLUMNS",
    "CANDIDATE_COLUMNS",
    "MIND_SITES",
    "MIND_SITE_NAMES",
    "MIND_UNKNOWN_SITE",
    "NEWS_COLUMNS",
    "MindData",
    "mind_events",
    "mind_site",
    "read_mind",
    "read_mind_behaviors",
    "read_mind_news",
]
