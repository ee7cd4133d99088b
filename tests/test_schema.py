from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.errors import SchemaError
from recommender.ingest import read_articles, read_events
from recommender.schema import ARTICLE_DTYPES, EVENT_DTYPES, validate_articles
from tests.conftest import tiny_articles, tiny_events

SITES = ["alpha", "beta", "gamma"]


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("name", ["a.csv", "a.csv.gz", "a.jsonl", "a.parquet"])
def test_every_format_loads_the_same_typed_frame(tmp_path: Path, name: str) -> None:
    result = read_articles(write(tiny_articles(), tmp_path / name), sites=SITES)
    assert result.n_read == 9 and result.n_rejected == 0
    assert dict(result.valid.dtypes.astype(str)) == ARTICLE_DTYPES
    assert list(result.valid["article_id"]) == list(tiny_articles()["article_id"])
    assert str(result.valid["published_at"].dt.tz) == "UTC"


def test_offsets_become_utc_and_naive_times_are_utc() -> None:
    raw = tiny_articles().head(2)
    raw.loc[0, "published_at"] = "2021-03-01T09:00:00+09:00"
    raw.loc[1, "published_at"] = "2021-03-01 09:00:00"
    valid = validate_articles(raw).valid
    assert valid["published_at"][0] == pd.Timestamp("2021-03-01T00:00:00Z")
    assert valid["published_at"][1] == pd.Timestamp("2021-03-01T09:00:00Z")


def test_ids_stay_text(tmp_path: Path) -> None:
    raw = tiny_articles().head(1).assign(article_id="007")
    assert read_articles(write(raw, tmp_path / "a.csv")).valid["article_id"][0] == "007"


def test_bad_rows_are_rejected_with_file_row_field_and_the_rest_go_on(tmp_path: Path) -> None:
    raw = tiny_articles()
    # Rows are lines, the header being line 1: record i is on line i + 2.
    raw.loc[1, "title"] = ""  # row 3: missing title
    raw.loc[2, "url"] = "javascript:alert(1)"  # row 4: bad URL
    raw.loc[3, "site"] = "delta"  # row 5: unknown site
    raw.loc[4, "published_at"] = "next tuesday"  # row 6: unparsable date
    raw.loc[5, "article_id"] = "a-sake"  # row 7: duplicate of row 2
    path = write(raw, tmp_path / "articles.csv")

    result = read_articles(path, sites=SITES)

    assert result.n_read == 9 and result.n_rejected == 5 and len(result.valid) == 4
    found = {(p.row, p.field, p.reason.split(":")[0]) for p in result.rejected.itertuples()}
    assert found == {
        (3, "title", "missing"),
        (4, "url", "bad URL"),
        (5, "site", "unknown site"),
        (6, "published_at", "unparsable date"),
        (7, "article_id", "duplicate article_id"),
    }
    assert set(result.rejected["file"]) == {str(path)}
    duplicate = result.rejected[result.rejected["field"] == "article_id"]["reason"].iloc[0]
    assert f"first seen at {path} row 2" in duplicate
    assert result.reasons().sum() == 5


def test_bad_image_url_is_cleared_and_the_article_kept() -> None:
    raw = tiny_articles().head(2).assign(image_url=["ftp://x/y.png", "https://img.example/1.jpg"])
    result = validate_articles(raw)
    assert len(result.valid) == 2 and result.n_rejected == 0
    assert result.valid["image_url"].isna()[0]
    assert result.valid["image_url"][1] == "https://img.example/1.jpg"
    assert list(result.problems["action"]) == ["cleared"]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first = write(tiny_articles().head(3), tmp_path / "one.csv")
    second = write(tiny_articles().head(2), tmp_path / "two.jsonl")
    result = read_articles([first, second], sites=SITES)
    assert len(result.valid) == 3
    assert set(result.rejected["file"]) == {str(second)}
    assert set(result.rejected["row"]) == {1, 2}


def test_duplicate_of_a_rejected_row_is_kept() -> None:
    raw = tiny_articles().head(2)
    raw.loc[0, "title"] = None
    raw.loc[1, "article_id"] = raw.loc[0, "article_id"]
    result = validate_articles(raw)
    assert list(result.valid["title"]) == [tiny_articles()["title"][1]]


def test_invalid_json_lines_are_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(r) for r in tiny_articles().head(3).to_dict("records")]
    lines.insert(1, "{not json")
    lines.insert(2, "")
    lines.insert(3, "[1, 2]")
    path.write_text("\n".join(lines) + "\n")
    result = read_articles(path)
    assert len(result.valid) == 3
    assert sorted(result.rejected["row"]) == [2, 4]
    assert all(result.rejected["reason"].str.startswith("invalid JSON"))
    assert list(result.valid["article_id"]) == list(tiny_articles()["article_id"][:3])


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(tiny_articles().drop(columns=["url"]), tmp_path / "a.csv")
    with pytest.raises(SchemaError, match=r"a\.csv: missing required column\(s\) url"):
        read_articles(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "file not found"),
        ("", "empty file"),
        (b"\xff\xfe", "empty file"),  # a UTF-16 byte-order mark and nothing else
        (
            b"article_id\ncaf\xe9\n",
            r"not UTF-8 text \(1 invalid sequence\(s\), the first at line 2",
        ),
    ],
)
def test_unusable_files_raise_naming_the_file(tmp_path: Path, content, message) -> None:
    path = tmp_path / "broken.csv"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SchemaError, match=message) as info:
        read_articles(path)
    assert str(path) in str(info.value)


def test_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="unknown file type"):
        read_articles(tmp_path / "a.xlsx")


def test_events_load_with_defaults_and_rejections(tmp_path: Path) -> None:
    events = tiny_events({"a-sake": 3}).drop(columns=["kind"])
    events.loc[1, "ts"] = "yesterday"
    path = write(events, tmp_path / "views.csv")
    result = read_events(path)
    assert dict(result.valid.dtypes.astype(str)) == EVENT_DTYPES
    assert list(result.valid["kind"]) == ["view", "view"]
    assert list(result.rejected["row"]) == [3] and list(result.rejected["field"]) == ["ts"]


def test_events_need_known_kind_and_a_target(tmp_path: Path) -> None:
    events = pd.DataFrame(
        {
            "ts": ["2021-03-01T00:00:00Z"] * 4,
            "article_id": ["a", None, "b", None],
            "url": [None, "https://x.example/a", None, None],
            "kind": ["view", "Click", "purchase", "view"],
        }
    )
    result = read_events(write(events, tmp_path / "e.jsonl"))
    assert list(result.valid["kind"]) == ["view", "click"]
    assert {(p.row, p.field) for p in result.rejected.itertuples()} == {
        (3, "kind"),
        (4, "article_id"),
    }


ROW_FIELDS = ["article_id", "site", "url", "title", "published_at"]
any_row = st.fixed_dictionaries(
    {
        "article_id": st.sampled_from(["a", "b", "c", "d", "e"]),
        "site": st.sampled_from([*SITES, "zeta", ""]),
        "url": st.sampled_from(["https://x.example/1", "http://y.example/2?q=1", "mailto:x", ""]),
        "title": st.text(max_size=5),
        "published_at": st.sampled_from(["2021-01-01", "2021-01-01T10:00:00+09:00", "soon", ""]),
    }
)


@given(st.lists(any_row, max_size=25))
@settings(max_examples=60, deadline=None)
def test_every_row_is_either_valid_or_rejected(rows: list[dict]) -> None:
    raw = pd.DataFrame(rows, columns=ROW_FIELDS)
    result = validate_articles(raw, sites=SITES)
    assert len(result.valid) + result.n_rejected == len(rows)
    assert result.valid["article_id"].is_unique
    assert result.valid["title"].str.strip().str.len().gt(0).all()
    assert result.valid["site"].isin(SITES).all()


def test_globs_expand_in_order_and_may_match_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    write(tiny_events({"a-sake": 2}), spool / "b.csv")
    write(tiny_events({"b-fuji": 3}), spool / "a.csv")
    result = read_events([spool / "*.csv", tmp_path / "none" / "*.csv"])
    assert list(result.valid["article_id"]) == ["b-fuji"] * 3 + ["a-sake"] * 2
    assert read_events([tmp_path / "empty-*.csv"]).n_read == 0


def test_dates_no_timestamp_holds_are_rejected_not_crashing() -> None:
    raw = tiny_articles().head(3)
    raw.loc[0, "published_at"] = "0001-01-01T00:00:00Z"
    raw.loc[1, "published_at"] = "9999-12-31"
    result = validate_articles(raw)
    assert len(result.valid) == 1
    assert set(result.rejected["row"]) == {1, 2}


def test_modified_at_is_optional_and_cleared_when_unreadable() -> None:
    raw = tiny_articles().head(2).assign(modified_at=["2021-03-02T00:00:00Z", "whenever"])
    result = validate_articles(raw)
    assert len(result.valid) == 2 and result.n_rejected == 0
    assert result.valid["modified_at"][0] == pd.Timestamp("2021-03-02T00:00:00Z")
    assert result.valid["modified_at"].isna()[1]


@pytest.mark.parametrize(
    ("article_id", "why"),
    [
        ("a\x00b", "U+0000"),
        ("a\x07b", "U+0007"),
        ("a\x85b", "U+0085"),
        ("a\u2028b", "U+2028"),
        ("x" * 300, "longer than 256 characters"),
    ],
)
def test_an_id_with_control_characters_is_a_rejected_row(article_id: str, why: str) -> None:
    raw = tiny_articles().head(3)
    raw.loc[1, "article_id"] = article_id
    result = validate_articles(raw, sites=SITES, source="a.csv")
    assert list(result.valid["article_id"]) == ["a-sake", "a-baby"]
    rejected = result.rejected
    assert rejected[["file", "row", "field"]].values.tolist() == [["a.csv", 2, "article_id"]]
    assert rejected["reason"].iat[0].startswith("bad id: ") and why in rejected["reason"].iat[0]


def test_ids_are_checked_in_files_too_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    records = tiny_articles().head(3).to_dict("records")
    records[2]["article_id"] = "a\u0000baby"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = read_articles(path, sites=SITES)
    assert result.rejected[["file", "row", "field"]].values.tolist() == [
        [str(path), 3, "article_id"]
    ]
    assert "U+0000" in result.rejected["reason"].iat[0]


def test_event_ids_with_control_characters_are_rejected_rows(tmp_path: Path) -> None:
    events = pd.DataFrame(
        {
            "ts": ["2021-03-01T00:00:00Z"] * 4,
            "article_id": ["a-sake", "a\x00sake", "a-sake", "a-fuji"],
            "kind": ["click"] * 4,
            "source_article_id": ["b-sake", "b-sake", "b\x1bsake", None],
        }
    )
    result = read_events(write(events, tmp_path / "e.jsonl"))
    assert list(result.valid["article_id"]) == ["a-sake", "a-fuji"]
    assert result.rejected[["row", "field"]].values.tolist() == [
        [2, "article_id"],
        [3, "source_article_id"],
    ]
    assert result.rejected["reason"].str.startswith("bad id: ").all()


def test_a_lone_surrogate_rejects_an_id_and_is_replaced_in_text(tmp_path: Path) -> None:
    """JSON's \\ud800 escape decodes to a string no UTF-8 (nor Arrow) can hold."""
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(r) for r in tiny_articles().head(3).to_dict("records")]
    lines[0] = lines[0].replace('"a-sake"', '"a-\\ud800sake"')
    lines[1] = lines[1].replace("Climbing", "Climbing \\udfff")
    path.write_text("\n".join(lines) + "\n")
    result = read_articles(path, sites=SITES)
    assert result.rejected[["row", "field"]].values.tolist() == [[1, "article_id"]]
    assert "U+D800" in result.rejected["reason"].iat[0]
    assert list(result.valid["article_id"]) == ["a-fuji", "a-baby"]
    assert result.valid["title"].iat[0].startswith("Climbing \ufffd")
    repaired = result.problems[result.problems["action"] == "repaired"]
    assert repaired[["row", "field"]].values.tolist() == [[2, "title"]]


def test_a_date_no_timestamp_holds_is_out_of_range_not_unparsable() -> None:
    raw = tiny_articles().head(4)
    raw.loc[0, "published_at"] = "9999-12-31T00:00:00Z"
    raw.loc[1, "published_at"] = "0001-01-01"
    raw.loc[2, "published_at"] = "next tuesday"
    result = validate_articles(raw)
    reasons = result.rejected.set_index("row")["reason"]
    for row in (1, 2):
        assert reasons[row].startswith("out of range: "), reasons[row]
        assert "1677-09-22" in reasons[row] and "2262-04-11" in reasons[row]
    assert reasons[3].startswith("unparsable date")


def test_an_event_time_out_of_range_says_so() -> None:
    from recommender.schema import validate_events

    raw = pd.DataFrame({"ts": ["9999-01-01T00:00:00Z", "2021-03-01"], "article_id": ["a", "b"]})
    result = validate_events(raw)
    assert result.rejected["reason"].iat[0].startswith("out of range: ")
    assert list(result.valid["article_id"]) == ["b"]
