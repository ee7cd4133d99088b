"""The batch's input files (CSV, JSON Lines, Parquet) under bad input: malformed
rows, one numbering of rows, encodings, nesting, and files that decode to far
more than they weigh (decompression bombs)."""

from __future__ import annotations

import bz2
import codecs
import gzip
import json
import lzma
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from recommender.cli import cli
from recommender.errors import SchemaError
from recommender.ingest import read_articles, read_events
from tests.conftest import TINY_SITES, tiny_articles

SITES = ["alpha", "beta", "gamma"]
COLUMNS = [
    "article_id",
    "site",
    "url",
    "title",
    "body",
    "category",
    "published_at",
    "image_url",
    "tags",
    "language",
]


def csv_lines() -> list[str]:
    """The tiny network as CSV lines with the 10 Article columns (header first)."""
    frame = tiny_articles().assign(image_url="", tags="a|b", language="en")[COLUMNS]
    return frame.to_csv(index=False).splitlines()


def write_lines(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


# ---------------------------------------------------------------------------
# malformed CSV rows and the numbering of rows


def test_a_row_with_an_extra_field_is_rejected_alone(tmp_path: Path) -> None:
    lines = csv_lines()
    lines[5] += ",surplus"  # line 6: 11 fields
    result = read_articles(write_lines(tmp_path / "a.csv", lines), sites=SITES)
    assert result.n_read == 9 and len(result.valid) == 8
    assert result.rejected[["row", "field", "reason"]].values.tolist() == [
        [6, "(record)", "expected 10 fields, saw 11"]
    ]
    assert list(result.valid["title"]) == [
        t for i, t in enumerate(tiny_articles()["title"]) if i != 4
    ]


def test_an_extra_field_in_the_first_row_shifts_no_column(tmp_path: Path) -> None:
    """pandas would take the first column for an index (or drop the surplus) silently."""
    lines = csv_lines()
    lines[1] += ",surplus"
    result = read_articles(write_lines(tmp_path / "a.csv", lines), sites=SITES)
    assert result.rejected[["row", "reason"]].values.tolist() == [[2, "expected 10 fields, saw 11"]]
    assert list(result.valid["article_id"]) == list(tiny_articles()["article_id"][1:])
    assert list(result.valid["title"]) == list(tiny_articles()["title"][1:])


def test_rows_are_the_physical_line_where_the_record_starts(tmp_path: Path) -> None:
    lines = csv_lines()
    first = lines[1].split(",")
    first[4] = '"Paragraph one.\nParagraph two."'  # the body spans lines 2-3
    bad_url = lines[2].split(",")
    bad_url[2] = "not a url"
    lines = [lines[0], ",".join(first), "", ",".join(bad_url), *lines[3:]]
    path = write_lines(tmp_path / "a.csv", lines)
    result = read_articles(path, sites=SITES)
    # header = line 1, the first record lines 2-3, a blank line 4, the bad record line 5.
    assert result.rejected[["row", "field"]].values.tolist() == [[5, "url"]]
    assert result.valid["body"].iat[0] == "Paragraph one.\nParagraph two."
    assert result.n_read == 9


def test_an_unclosed_quote_rejects_its_row_at_the_line_it_opened(tmp_path: Path) -> None:
    lines = csv_lines()
    fields = lines[3].split(",")
    fields[3] = '"' + fields[3]  # line 4: a title whose quote never closes
    lines[3] = ",".join(fields)
    result = read_articles(write_lines(tmp_path / "a.csv", lines), sites=SITES)
    rejected = result.rejected
    assert rejected["row"].tolist() == [4]
    assert "unclosed quote" in rejected["reason"].iat[0]
    assert "line 4, column" in rejected["reason"].iat[0]
    # The rows after it are read as rows, not swallowed into the open field.
    assert list(result.valid["article_id"]) == [
        a for i, a in enumerate(tiny_articles()["article_id"]) if i != 2
    ]


def test_tsv_rows_get_the_same_treatment(tmp_path: Path) -> None:
    frame = tiny_articles().head(3)
    text = frame.to_csv(index=False, sep="\t").splitlines()
    text[2] += "\tsurplus"
    result = read_articles(write_lines(tmp_path / "a.tsv", text), sites=SITES)
    assert result.rejected[["row", "reason"]].values.tolist() == [[3, "expected 7 fields, saw 8"]]
    assert len(result.valid) == 2


# ---------------------------------------------------------------------------
# encodings


def utf16_be(text: str) -> bytes:
    return codecs.BOM_UTF16_BE + text.encode("utf-16-be")


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-16"),  # little-endian, with its BOM
        utf16_be,
        lambda t: t.encode("utf-32"),
    ],
    ids=["utf-8-sig", "utf-16-le", "utf-16-be", "utf-32"],
)
@pytest.mark.parametrize("name", ["a.csv", "a.jsonl"])
def test_a_byte_order_mark_tells_the_encoding(tmp_path: Path, encode, name: str) -> None:
    frame = tiny_articles().assign(title=lambda f: f["title"] + " 東京")
    text = (
        frame.to_csv(index=False)
        if name.endswith(".csv")
        else frame.to_json(orient="records", lines=True, force_ascii=False)
    )
    (tmp_path / name).write_bytes(encode(text))
    result = read_articles(tmp_path / name, sites=SITES)
    assert result.n_rejected == 0 and len(result.problems) == 0
    assert list(result.valid["title"]) == list(frame["title"])


def test_a_bad_byte_is_replaced_and_reported_by_line_and_column(tmp_path: Path) -> None:
    title = "東京の桜" * 30  # 120 characters, valid UTF-8
    lines = tiny_articles().assign(title=title).to_csv(index=False).splitlines()
    # Line 4, column 130: the title of "a-baby,alpha,https://alpha.example/a-baby,<title>".
    assert lines[3].index(title) < 129 < lines[3].index(title) + len(title)
    data = "\n".join(lines[:3]).encode() + b"\n"
    data += lines[3][:129].encode() + b"\xff" + lines[3][129:].encode() + b"\n"
    data += "\n".join(lines[4:]).encode() + b"\n"
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    result = read_articles(path, sites=SITES)
    assert len(result.valid) == 9 and result.n_rejected == 0
    titles = result.valid["title"]
    assert (titles.drop(2) == title).all()  # no mojibake anywhere else
    at = 129 - lines[3].index(title)
    assert titles[2] == title[:at] + "\ufffd" + title[at:]
    assert len(result.problems) == 1
    problem = result.problems.iloc[0]
    assert (problem["row"], problem["action"]) == (4, "repaired")
    assert "line 4, column 130 (0xff)" in problem["reason"]


def test_a_file_in_another_encoding_is_refused_naming_line_and_column(tmp_path: Path) -> None:
    lines = csv_lines()
    lines[2] = lines[2].replace("Climbing", "Clímbing")
    path = tmp_path / "a.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    with pytest.raises(SchemaError, match=r"a\.csv: not UTF-8 text") as info:
        read_articles(path, sites=SITES)
    column = lines[2].index("í") + 1
    assert f"line 3, column {column} (0xed)" in str(info.value)


# ---------------------------------------------------------------------------
# JSON Lines nested too deep


def test_a_json_line_nested_too_deep_is_rejected_and_the_others_kept(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in tiny_articles().head(3).to_dict("records")]
    lines.insert(2, '{"article_id": "deep", "body": ' + "[" * 100_000 + "]" * 100_000 + "}")
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = read_articles(path, sites=SITES)
    assert list(result.valid["article_id"]) == list(tiny_articles()["article_id"][:3])
    assert result.rejected["row"].tolist() == [3]
    assert "nested more than 256 levels deep" in result.rejected["reason"].iat[0]


# ---------------------------------------------------------------------------
# decompression bombs


def parquet_bomb(path: Path, rows: int, title_bytes: int, *, site: str = "alpha") -> Path:
    """``rows`` articles sharing one title of ``title_bytes`` bytes: a dictionary page
    with the title once and run-length indices, a few KB on disk."""
    title = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["T" * title_bytes])
    )
    table = pa.table(
        {
            "article_id": [f"bomb-{i}" for i in range(rows)],
            "site": [site] * rows,
            "url": [f"https://{site}.example/bomb-{i}" for i in range(rows)],
            "title": title,
            "published_at": ["2021-03-01T00:00:00Z"] * rows,
        }
    )
    # Without the Arrow schema a reader decodes the title to plain strings.
    pq.write_table(table, path, compression="zstd", store_schema=False)
    return path


def test_a_parquet_bomb_is_refused_naming_the_file_and_the_limit(tmp_path: Path) -> None:
    path = parquet_bomb(tmp_path / "bomb.parquet", rows=200, title_bytes=64 * 2**10)
    assert path.stat().st_size < 20_000  # 12.8 MB of titles
    with pytest.raises(SchemaError, match="decompression bomb") as info:
        read_articles(path, sites=SITES, max_decoded_bytes=4 * 2**20)
    assert str(path) in str(info.value) and "4,194,304 bytes" in str(info.value)


def test_a_parquet_file_under_the_limit_reads_as_pandas_reads_it(tmp_path: Path) -> None:
    frame = tiny_articles().assign(
        category=lambda f: f["category"].astype("category"),
        tags=[["a", "b"]] * 9,
    )
    path = tmp_path / "a.parquet"
    frame.to_parquet(path, row_group_size=2)  # 5 row groups, a dictionary column, a list
    result = read_articles(path, sites=SITES, max_decoded_bytes=4 * 2**20)
    assert result.n_rejected == 0
    assert list(result.valid["category"]) == list(tiny_articles()["category"])
    assert list(result.valid["tags"]) == ["a|b"] * 9


def test_a_parquet_bomb_in_a_delta_encoded_column_is_refused(tmp_path: Path) -> None:
    """DELTA_BYTE_ARRAY shares prefixes between values: one long title repeated is tiny."""
    rows = 100
    table = pa.table(
        {
            "article_id": [f"d-{i}" for i in range(rows)],
            "site": ["alpha"] * rows,
            "url": [f"https://alpha.example/d-{i}" for i in range(rows)],
            "title": ["T" * 2**17] * rows,
            "published_at": ["2021-03-01T00:00:00Z"] * rows,
        }
    )
    path = tmp_path / "delta.parquet"
    pq.write_table(table, path, use_dictionary=False, column_encoding={"title": "DELTA_BYTE_ARRAY"})
    assert path.stat().st_size < 2**17 * 2  # 12.8 MB of titles
    with pytest.raises(SchemaError, match="decompression bomb"):
        read_articles(path, sites=SITES, max_decoded_bytes=4 * 2**20)


def bomb_csv_text(rows: int, title_bytes: int) -> bytes:
    header = "article_id,site,url,title,published_at\n"
    body = "".join(
        f"b{i},alpha,https://alpha.example/b{i},{'T' * title_bytes},2021-03-01T00:00:00Z\n"
        for i in range(rows)
    )
    return (header + body).encode()


def bomb_jsonl_text(rows: int, title_bytes: int) -> bytes:
    return "".join(
        json.dumps(
            {
                "article_id": f"b{i}",
                "site": "alpha",
                "url": f"https://alpha.example/b{i}",
                "title": "T" * title_bytes,
                "published_at": "2021-03-01T00:00:00Z",
            }
        )
        + "\n"
        for i in range(rows)
    ).encode()


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)],
)
@pytest.mark.parametrize(("kind", "make"), [("csv", bomb_csv_text), ("jsonl", bomb_jsonl_text)])
def test_a_compressed_bomb_is_refused_without_inflating_it(
    tmp_path: Path, suffix: str, compress, kind: str, make
) -> None:
    path = tmp_path / f"bomb.{kind}{suffix}"
    path.write_bytes(compress(make(rows=40, title_bytes=2**18)))  # 10 MB inflated
    assert path.stat().st_size < 200_000
    with pytest.raises(SchemaError, match="decompression bomb") as info:
        read_articles(path, sites=SITES, max_decoded_bytes=2**20)
    assert str(path) in str(info.value) and "1,048,576 bytes" in str(info.value)


def test_a_gzip_bomb_at_real_size_is_refused_by_the_default_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb") as handle:  # 80 MB inflated from about 80 KB
        handle.write(b"article_id,site,url,title,published_at\n")
        for i in range(80):
            handle.write(f"b{i},alpha,https://alpha.example/b{i},".encode())
            handle.write(b"T" * 2**20 + b",2021-03-01T00:00:00Z\n")
    assert path.stat().st_size < 200_000
    with pytest.raises(SchemaError, match="decompression bomb"):
        read_articles(path, sites=SITES)


MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    import pyarrow.parquet  # loaded before the measurement starts
    from recommender.errors import SchemaError
    from recommender.ingest import read_articles

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        result = read_articles(sys.argv[1], sites=["alpha"])
        outcome = f"read {len(result.valid)} articles"
    except SchemaError as error:
        outcome = str(error)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcome": outcome, "seconds": seconds, "mb": (peak - before) / 1024}))
    """
)


def test_a_real_size_parquet_bomb_is_refused_fast_in_bounded_memory(tmp_path: Path) -> None:
    """A file of a few KB that decodes to 500 MB of titles, with the batch's own limit."""
    path = parquet_bomb(tmp_path / "bomb.parquet", rows=500, title_bytes=2**20)
    assert path.stat().st_size < 20_000
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.splitlines()[-1])
    assert "decompression bomb" in measured["outcome"], measured
    assert measured["mb"] < 200, measured
    assert measured["seconds"] < 5, measured


def test_the_batch_exits_3_on_a_bomb(tmp_path: Path) -> None:
    # Titles decoding to 96 MB; site "zeta" makes the rows bad should they ever be read.
    parquet_bomb(tmp_path / "bomb.parquet", rows=96, title_bytes=2**20, site="zeta")
    sites = "\n".join(
        f'[sites.{key}]\ndisplay_name = "{site["display_name"]}"\nurl = "{site["url"]}"\n'
        for key, site in TINY_SITES.items()
    )
    config = tmp_path / "network.toml"
    config.write_text(
        f'{sites}\n[data]\narticles = ["bomb.parquet"]\n\n[store]\nurl = "sqlite:///store.sqlite"\n'
    )
    done = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert done.exit_code == 3, done.output
    assert "bomb.parquet" in done.output and "decompression bomb" in done.output


def test_events_files_are_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    rows = "".join(f"2021-03-01T00:00:{i % 60:02d}Z,a-sake,view\n" for i in range(100_000))
    path.write_bytes(gzip.compress(("ts,article_id,kind\n" + rows).encode()))
    assert len(read_events(path).valid) == 100_000
    with pytest.raises(SchemaError, match="decompression bomb"):
        read_events(path, max_decoded_bytes=2**20)


def test_the_default_limit_grows_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads corpora of a million articles, far more than ingest's 64 MB a
    document: its limit is the larger of that and 100 times the file's size."""
    from recommender.ingest import tables

    monkeypatch.setattr(tables, "MIN_DECODED_BYTES", 2**20)
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(5000)])
    n = 2000
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "site": "alpha",
            "url": [f"https://alpha.example/{i}" for i in range(n)],
            "title": [" ".join(rng.choice(words, 8)) for _ in range(n)],
            "body": [" ".join(rng.choice(words, 250)) for _ in range(n)],
            "published_at": "2021-03-01T00:00:00Z",
        }
    )
    corpus = tmp_path / "corpus.parquet"
    frame.to_parquet(corpus)
    assert frame["body"].str.len().sum() > 2 * 2**20 > corpus.stat().st_size
    assert len(read_articles(corpus, sites=SITES).valid) == n
    bomb = parquet_bomb(tmp_path / "bomb.parquet", rows=40, title_bytes=2**16)
    with pytest.raises(SchemaError, match="decompression bomb"):
        read_articles(bomb, sites=SITES)
