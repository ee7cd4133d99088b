"""What every traffic source shares: bots, pseudonymous sessions, absurd times,
validation into the Event frame, and URLs mapped to article ids.

Bots are recognised by user agent with the crawler-user-agents patterns
(a maintained list of some 600 crawlers, scrapers and monitors), evaluated
once per distinct user agent; an empty user agent counts as a bot, as no
browser sends none. Client addresses are never stored: a session is a hash
of address and user agent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import crawleruseragents  # type: ignore[import-untyped]
import pandas as pd

from recommender.ingest.documents import IngestLimits, Problem, problems_frame, problems_where
from recommender.ingest.matching import article_ids_for_urls
from recommender.ingest.records import parse_dates
from recommender.schema import LoadResult, validate_events


@dataclass
class Traffic:
    """Events of one traffic source and what was left out on purpose.

    ``events``: the validated Event frame (``article_id`` filled from the URL
    when articles were given; events of pages that are no known article are
    left out and counted in ``unmatched``). ``bots``: hits by crawlers.
    ``skipped``: hits that are no page view (assets, errors, other methods).
    """

    events: LoadResult
    bots: int = 0
    skipped: int = 0
    unmatched: int = 0


def bot_mask(user_agents: pd.Series) -> pd.Series:
    """True where the user agent is a known crawler or empty (see module docs)."""
    agents = user_agents.astype("string").fillna("").str.strip()
    unique = pd.Series(agents.unique())
    verdict = unique.map(lambda ua: ua in ("", "-") or bool(crawleruseragents.is_crawler(ua)))
    return agents.map(pd.Series(verdict.to_numpy(), index=unique.to_numpy())).astype(bool)


def session_ids(clients: pd.Series, user_agents: pd.Series) -> pd.Series:
    """A 16-hex-digit pseudonymous session per (client address, user agent)."""
    pairs = clients.astype("string").fillna("") + "\x00" + user_agents.astype("string").fillna("")
    unique = pd.Series(pairs.unique())
    hashed = unique.map(lambda p: hashlib.sha256(p.encode("utf-8", "replace")).hexdigest()[:16])
    return pairs.map(pd.Series(hashed.to_numpy(), index=unique.to_numpy())).astype("string")


def finish_events(
    raw: pd.DataFrame,
    *,
    source: str,
    limits: IngestLimits,
    now: pd.Timestamp,
    articles: pd.DataFrame | None = None,
    problems: Iterable[Problem] = (),
    n_unparsed: int = 0,
    bots: int = 0,
    skipped: int = 0,
) -> Traffic:
    """Validate raw events (``_row`` set, unique per record) into :class:`Traffic`.

    An integer ``count`` column makes each valid row stand for that many
    events (an aggregated export); it is applied after validation, so a bad
    row is reported once. Times before ``limits.earliest`` or after ``now`` plus
    ``limits.max_future_hours`` are rejected as absurd. With ``articles``
    (an Article frame), each event's ``article_id`` is filled from its URL
    and events of other pages are dropped and counted.
    """
    found = list(problems)
    raw = raw.assign(_file=source)
    n_absurd = 0
    if len(raw):
        if "ts" in raw and isinstance(raw["ts"].dtype, pd.DatetimeTZDtype):
            ts, outside = raw["ts"], pd.Series(False, index=raw.index)  # parsed by the reader
        else:
            text = raw["ts"] if "ts" in raw else pd.Series(pd.NA, index=raw.index)
            ts, outside = parse_dates(text.astype("string"))
        latest = now + pd.Timedelta(hours=limits.max_future_hours)
        absurd = ((ts < limits.earliest) | (ts > latest)).fillna(False) | outside
        found += problems_where(
            absurd,
            raw,
            source=source,
            field="ts",
            values=raw["ts"],
            reason=f"absurd time: expected between {limits.earliest:%Y-%m-%d} and "
            f"{latest:%Y-%m-%d %H:%M} UTC",
        )
        raw = raw[~absurd]
        n_absurd = int(absurd.sum())
    counts = raw.pop("count") if "count" in raw else None
    result = validate_events(raw, source=source)
    if counts is not None and len(result.valid):
        # validate_events keeps the order of the rows it does not reject.
        rejected = set(result.rejected["row"].astype(int))
        kept = counts[~raw["_row"].isin(rejected)].to_numpy()
        result.valid = result.valid.loc[result.valid.index.repeat(kept)].reset_index(drop=True)
    result.problems = pd.concat([problems_frame(found), result.problems], ignore_index=True)
    result.n_read += n_unparsed + n_absurd
    unmatched = 0
    if articles is not None and len(result.valid):
        events = result.valid
        known = set(articles["article_id"].astype(str))
        given = events["article_id"]
        by_url = article_ids_for_urls(events["url"], articles)
        article_id = given.where(given.isin(known).fillna(False), by_url)
        matched = article_id.notna().to_numpy()
        unmatched = int((~matched).sum())
        result.valid = events.assign(article_id=article_id)[matched].reset_index(drop=True)
    return Traffic(result, bots=bots, skipped=skipped, unmatched=unmatched)
