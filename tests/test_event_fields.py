"""Events that can teach (issue 16, point 2): run_id, variant, position and
propensity, from the widget's fragment and the events endpoint through the
spool, analytics exports and the MIND loader into the Event frame."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recommender.datasets import read_mind, read_mind_behaviors
from recommender.ids import is_valid_id
from recommender.ingest import read_events
from recommender.ingest.analytics import read_analytics
from recommender.ingest.documents import Document
from recommender.ingest.records import SiteContext
from recommender.schema import EVENT_DTYPES, validate_events
from recommender.spool import LEGACY_SPOOL_COLUMNS, MAX_POSITION, SPOOL_COLUMNS, TOKEN_PATTERN
from recommender.web import settings as web_settings
from recommender.web.events import EventBatch, EventSpool, read_spool, spool_rows
from recommender.web.widget import render_widget
from tests.web.conftest import SEED_BLOCK, page

RECEIVED = datetime(2021, 3, 8, 9, 30, tzinfo=UTC)
NEW_FIELDS = ["run_id", "variant", "position", "propensity"]
FIXTURE = Path(__file__).parent / "fixtures" / "mind"


def events_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# -- the Event contract ---------------------------------------------------------------


def test_the_new_columns_are_typed_and_optional() -> None:
    assert {name: EVENT_DTYPES[name] for name in NEW_FIELDS} == {
        "run_id": "string",
        "variant": "string",
        "position": "Int64",
        "propensity": "Float64",
    }
    assert TOKEN_PATTERN == web_settings.TOKEN_PATTERN  # a variant is a token like a placement


def test_good_values_load_with_their_types(tmp_path: Path) -> None:
    path = events_csv(
        tmp_path / "events.csv",
        "ts,kind,article_id,run_id,variant,position,propensity",
        "2021-03-08T09:00:00Z,impression,a,20210308T090000Z-ab12cd,B,1,1",
        "2021-03-08T09:00:00Z,impression,b,20210308T090000Z-ab12cd,ctr-prior.20,2,0.0833",
        "2021-03-08T09:00:00Z,click,c,,,12,",
        f"2021-03-08T09:00:00Z,click,d,r,A:1,{MAX_POSITION}, 1e-6 ",
    )
    loaded = read_events(path)
    assert loaded.problems.empty
    frame = loaded.valid
    assert frame["run_id"].tolist() == ["20210308T090000Z-ab12cd"] * 2 + [pd.NA, "r"]
    assert frame["variant"].tolist() == ["B", "ctr-prior.20", pd.NA, "A:1"]
    assert frame["position"].tolist() == [1, 2, 12, MAX_POSITION]
    assert frame["propensity"].tolist() == [1.0, 0.0833, pd.NA, 1e-6]
    assert {c: str(t) for c, t in frame.dtypes.items()} == EVENT_DTYPES


BAD_VALUES = [
    ("run_id", "run\x01id", "bad id: control or separator character U+0001"),
    ("run_id", "r" * 257, "bad id: longer than 256 characters"),
    ("variant", "B two", "bad variant"),
    ("variant", "<b>", "bad variant"),
    ("variant", "v" * 65, "bad variant"),
    ("position", "0", "bad position"),
    ("position", "-1", "bad position"),
    ("position", "1.5", "bad position"),
    ("position", "first", "bad position"),
    ("position", str(MAX_POSITION + 1), "bad position"),
    ("position", "99999999999999999999999", "bad position"),
    ("propensity", "0", "bad propensity"),
    ("propensity", "-0.5", "bad propensity"),
    ("propensity", "1.0001", "bad propensity"),
    ("propensity", "nan", "bad propensity"),
    ("propensity", "inf", "bad propensity"),
    ("propensity", "half", "bad propensity"),
]


@pytest.mark.parametrize("field, value, reason", BAD_VALUES)
def test_each_bad_value_rejects_its_row_naming_file_row_and_field(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    good = {"run_id": "run-1", "variant": "A", "position": "3", "propensity": "0.5"}
    header = "ts,kind,article_id," + ",".join(NEW_FIELDS)

    def row(article_id: str, values: dict[str, str]) -> str:
        cells = [f'"{values[name]}"' for name in NEW_FIELDS]
        return ",".join(["2021-03-08T09:00:00Z", "click", article_id, *cells])

    path = events_csv(
        tmp_path / "events.csv",
        header,
        row("before", good),
        row("bad", {**good, field: value}),
        row("after", good),
    )
    loaded = read_events(path)
    assert loaded.valid["article_id"].tolist() == ["before", "after"]  # the good rows go on
    problems = loaded.problems
    assert problems[["file", "row", "field", "action"]].values.tolist() == [
        [str(path), 3, field, "rejected"]
    ]
    assert problems["reason"].iat[0].startswith(reason)
    described = loaded.describe_problems()[0]
    assert str(path) in described and "row 3" in described and f"field {field!r}" in described


def test_files_without_the_new_columns_load_unchanged(tmp_path: Path) -> None:
    old = events_csv(
        tmp_path / "pageviews.csv",
        "ts,kind,article_id,source_article_id,placement,session",
        "2021-03-08T09:00:00Z,view,a,,,s1",
        "2021-03-08T09:01:00Z,click,b,a,below,s1",
    )
    loaded = read_events(old)
    assert loaded.problems.empty and len(loaded.valid) == 2
    frame = loaded.valid
    assert frame[NEW_FIELDS].isna().all().all()
    assert frame[["article_id", "source_article_id", "placement"]].values.tolist() == [
        ["a", pd.NA, pd.NA],
        ["b", "a", "below"],
    ]
    assert {c: str(t) for c, t in frame.dtypes.items()} == EVENT_DTYPES
    # A plain frame without them (no kind column either) too.
    bare = validate_events(pd.DataFrame({"ts": ["2021-03-08"], "url": ["https://x.example/a"]}))
    assert bare.valid[NEW_FIELDS].isna().all().all() and bare.valid["kind"].tolist() == ["view"]


def test_a_legacy_spool_file_is_still_read_and_unescaped(tmp_path: Path) -> None:
    """Spool files written before the new columns existed (six columns)."""
    legacy = tmp_path / "events-20210308T090000000000Z-1-000001.csv"
    legacy.write_text(
        ",".join(LEGACY_SPOOL_COLUMNS)
        + "\n2021-03-08T09:30:00.000+00:00,click,'=1+1,jt-1,below,s1\n",
        encoding="utf-8",
    )
    assert read_spool(legacy) == [
        ("2021-03-08T09:30:00.000+00:00", "click", "=1+1", "jt-1", "below", "s1", "", "", "", "")
    ]
    new = tmp_path / "events-20210308T093000000000Z-1-000002.csv"
    spool = EventSpool(tmp_path)
    batch = EventBatch.model_validate(
        {"events": [{"kind": "click", "article_id": "b", "run_id": "run-1", "position": 2}]}
    )
    spool.add(spool_rows(batch, RECEIVED))
    written = spool.flush()
    assert written is not None
    written.rename(new)
    loaded = read_events(tmp_path / "*.csv")  # both kinds of file in one read
    assert loaded.problems.empty
    frame = loaded.valid
    assert frame["article_id"].tolist() == ["=1+1", "b"]
    assert frame["run_id"].tolist() == [pd.NA, "run-1"]
    assert frame["position"].tolist() == [pd.NA, 2]


# -- the events endpoint's body and the spool -----------------------------------------


@pytest.mark.parametrize(
    "extra, problem",
    [
        ({"run_id": ""}, "at least 1 character"),
        ({"run_id": "r\nx"}, "character U\\+000A"),
        ({"variant": "a b"}, "pattern"),
        ({"variant": "v" * 65}, "at most 64"),
        ({"position": 0}, "greater than or equal to 1"),
        ({"position": MAX_POSITION + 1}, f"less than or equal to {MAX_POSITION}"),
        ({"position": 1.5}, "valid integer"),
        ({"position": "2"}, "valid integer"),
        ({"position": True}, "valid integer"),
        ({"propensity": 0}, "greater than 0"),
        ({"propensity": 1.5}, "less than or equal to 1"),
        ({"propensity": "0.5"}, "valid number"),
        ({"propensity": float("nan")}, "finite number"),
    ],
)
def test_the_endpoint_refuses_bad_new_fields(extra: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        EventBatch.model_validate({"events": [{"kind": "click", "article_id": "a", **extra}]})


def test_a_whole_position_written_as_a_float_is_that_number() -> None:
    """JSON Schema's integers include 3.0 (what the OpenAPI spec promises)."""
    body = '{"events": [{"kind": "click", "article_id": "a", "position": 3.0}]}'
    assert EventBatch.model_validate_json(body).events[0].position == 3
    schema = EventBatch.model_json_schema()["$defs"]["WidgetEvent"]["properties"]
    assert {"type": "integer", "minimum": 1, "maximum": MAX_POSITION} in schema["position"]["anyOf"]
    assert {"type": "number", "exclusiveMinimum": 0, "maximum": 1} in schema["propensity"]["anyOf"]


_token = st.from_regex(re.compile(TOKEN_PATTERN.replace("$", r"\Z")))
_id = st.text(min_size=1, max_size=30).filter(is_valid_id)
_event = st.fixed_dictionaries(
    {"kind": st.sampled_from(["impression", "click"]), "article_id": _id},
    optional={
        "source_article_id": _id,
        "placement": _token,
        "session": _token,
        "run_id": _id,
        "variant": _token,
        "position": st.integers(1, MAX_POSITION),
        "propensity": st.floats(0, 1, exclude_min=True) | st.integers(1, 1),
    },
)


@settings(max_examples=150, deadline=None)
@given(events=st.lists(_event, min_size=1, max_size=6))
def test_any_valid_batch_comes_back_from_the_spool_with_its_fields(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict]
) -> None:
    folder = tmp_path_factory.mktemp("spool")
    spool = EventSpool(folder)
    rows = spool_rows(EventBatch.model_validate({"events": events}), RECEIVED)
    assert spool.add(rows)
    written = spool.flush()
    assert written is not None
    assert read_spool(written) == rows
    loaded = read_events(written)
    assert loaded.problems.empty, loaded.describe_problems()
    frame = loaded.valid
    assert len(frame) == len(events)
    for event, got in zip(events, frame.to_dict("records"), strict=True):
        for name in ("run_id", "variant", "position"):
            assert (got[name] if not pd.isna(got[name]) else None) == event.get(name)
        sent = event.get("propensity")
        if sent is None:
            assert pd.isna(got["propensity"])
        else:
            assert got["propensity"] == float(sent)  # exactly: repr round-trips a float


# -- analytics exports and MIND ------------------------------------------------------


def test_an_analytics_export_carries_the_new_fields() -> None:
    site = SiteContext(
        key="japantoday",
        display_name="Japan Today",
        url="https://japantoday.example",
        language="en",
        labels={},
    )
    export = (
        "Event name,Date hour,Page path,Session ID,customEvent:run_id,"
        "customEvent:variant,customEvent:position,customEvent:propensity\n"
        "impressions,2021030809,/a/,s1,run-1,B,1,0.25\n"
        "clicks,2021030809,/a/,s1,run-1,B,1,0.25\n"
        "impressions,2021030809,/b/,s1,run-1,B,0,0.25\n"
        "page_view,2021030809,/c/,s2,,,,\n"
    )
    traffic = read_analytics(
        Document(source="ga4.csv", content=export.encode()),
        site,
        now=pd.Timestamp("2021-03-09T00:00:00Z"),
    )
    frame = traffic.events.valid
    assert frame["kind"].tolist() == ["impression", "click", "view"]
    assert frame["run_id"].tolist() == ["run-1", "run-1", pd.NA]
    assert frame["variant"].tolist() == ["B", "B", pd.NA]
    assert frame["position"].tolist() == [1, 1, pd.NA]
    assert frame["propensity"].tolist() == [0.25, 0.25, pd.NA]
    assert traffic.events.problems[["file", "row", "field"]].values.tolist() == [
        ["ga4.csv", 4, "position"]
    ]


def test_mind_positions_are_the_candidates_order_from_1() -> None:
    mind = read_mind(FIXTURE)
    events = mind.events()
    _, candidates, _ = read_mind_behaviors(FIXTURE / "behaviors.tsv")
    lines = [
        line.split("\t") for line in (FIXTURE / "behaviors.tsv").read_text().splitlines() if line
    ]
    shown = events[events["kind"] == "impression"]
    assert len(shown) == sum(len(line[4].split()) for line in lines)
    for impression_id, _, _, _, tokens in lines:
        in_line = [token.rsplit("-", 1)[0] for token in tokens.split()]
        ours = shown[shown["placement"] == impression_id]
        assert ours["article_id"].tolist() == in_line
        assert ours["position"].tolist() == list(range(1, len(in_line) + 1))
        clicks = events[(events["kind"] == "click") & (events["placement"] == impression_id)]
        clicked = [n for n, t in enumerate(tokens.split(), start=1) if t.endswith("-1")]
        assert clicks["position"].tolist() == clicked  # a click keeps its candidate's slot
    assert events[["run_id", "variant", "propensity"]].isna().all().all()
    assert {c: str(t) for c, t in events.dtypes.items()} == EVENT_DTYPES
    assert len(candidates) == len(shown)


# -- the fragment ---------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.block: dict[str, str | None] = {}
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.block = dict(attrs)
        elif tag == "a":
            self.links.append(dict(attrs))


def parsed(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def test_each_link_names_its_slot_and_the_block_its_run() -> None:
    block = page("jt-1", "run-01", SEED_BLOCK, "japantoday")
    links = parsed(render_widget(block, placement="below"))
    assert links.block["data-rec-run"] == "run-01"
    assert links.block["data-rec-placement"] == "below"
    assert "data-rec-variant" not in links.block  # no experiment, no variant
    assert [a["data-rec-position"] for a in links.links] == [
        str(n) for n in range(1, len(SEED_BLOCK) + 1)
    ]
    assert not [a for a in links.links if "data-rec-propensity" in a]


def test_variant_and_propensities_are_written_when_given() -> None:
    block = page("jt-1", "run-01", SEED_BLOCK, "japantoday")
    # The second item cannot be linked: positions count the items shown.
    items = list(block.items)
    items[1] = dataclasses.replace(items[1], url="javascript:alert(1)")
    block = dataclasses.replace(block, items=tuple(items))
    chances = [1.0, 0.5, *[1 / 12] * (len(items) - 2)]
    links = parsed(render_widget(block, variant="explore.1", propensities=chances))
    assert links.block["data-rec-variant"] == "explore.1"
    assert [a["data-rec-article"] for a in links.links] == [
        item.article_id for n, item in enumerate(items) if n != 1
    ]
    assert [a["data-rec-position"] for a in links.links] == [str(n) for n in range(1, len(items))]
    got = [float(a["data-rec-propensity"] or "nan") for a in links.links]
    assert got == [1.0, *[1 / 12] * (len(items) - 2)]


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"variant": "a b"}, "variant must be"),
        ({"variant": ""}, "variant must be"),
        ({"propensities": [0.5]}, "1 given for the block's"),
        ({"propensities": [0.0] * len(SEED_BLOCK)}, "item 1's 0.0"),
        ({"propensities": [1.0, math.nan] + [1.0] * (len(SEED_BLOCK) - 2)}, "item 2's nan"),
        ({"propensities": [1.0] * (len(SEED_BLOCK) - 1) + [1.5]}, "not a probability"),
    ],
)
def test_render_widget_refuses_what_the_endpoint_would_refuse(options: dict, problem: str) -> None:
    block = page("jt-1", "run-01", SEED_BLOCK, "japantoday")
    with pytest.raises(ValueError, match=problem):
        render_widget(block, **options)


def test_spool_columns_keep_the_legacy_ones_first() -> None:
    assert SPOOL_COLUMNS[: len(LEGACY_SPOOL_COLUMNS)] == LEGACY_SPOOL_COLUMNS
    assert SPOOL_COLUMNS[len(LEGACY_SPOOL_COLUMNS) :] == tuple(NEW_FIELDS)


def test_an_events_file_of_old_columns_takes_new_events_and_drops_repeats(
    tmp_path: Path,
) -> None:
    """The ingest's events file (Parquet), written before the new columns existed."""
    from recommender.ingest.corpus import EventLog

    raw = pd.DataFrame(
        {
            "ts": ["2021-03-08T09:00:00Z"] * 2,
            "kind": "impression",
            "article_id": ["a", "b"],
            "run_id": ["run-1", None],
            "position": ["1", None],
            "propensity": ["0.5", None],
        }
    )
    events = validate_events(raw).valid
    old = tmp_path / "events.parquet"
    events.drop(columns=NEW_FIELDS).iloc[[1]].to_parquet(old)  # "b", as stored before
    log = EventLog.load(old)
    assert {c: str(t) for c, t in log.events.dtypes.items()} == EVENT_DTYPES
    assert log.append(events) == (1, 1)  # "a" is new; "b" is the stored event again
    log.save(tmp_path / "saved.parquet")
    again = read_events(tmp_path / "saved.parquet").valid
    assert again["article_id"].tolist() == ["b", "a"]
    assert again["position"].tolist() == [pd.NA, 1]
    assert again["propensity"].tolist() == [pd.NA, 0.5]
