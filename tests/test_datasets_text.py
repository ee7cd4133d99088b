"""HuffPost and livedoor loaders: project-written fixtures, plus the real files when present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.datasets import LIVEDOOR_SITES, read_huffpost, read_livedoor
from recommender.datasets.huffpost import huffpost_site
from recommender.errors import SchemaError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HUFFPOST = SHARED / "huffpost" / "news_category_v3_newest10k.jsonl"
LIVEDOOR = SHARED / "livedoor"


def _huffpost_line(link: str, headline: str, category: str, date: str = "2022-09-23") -> str:
    return json.dumps(
        {
            "link": link,
            "headline": headline,
            "category": category,
            "short_description": f"About {headline.lower()}.",
            "authors": "A. Writer",
            "date": date,
        }
    )


def test_huffpost_fixture(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    lines = [
        _huffpost_line("https://www.huffpost.com/entry/a_n_1", "Senate votes", "POLITICS"),
        _huffpost_line("https://www.huffpost.com/entry/b_n_2", "Soup recipe", "FOOD & DRINK"),
        _huffpost_line("https://www.huffpost.com/entry/a_n_1", "Senate votes again", "POLITICS"),
        "not json",
    ]
    path.write_text("\n".join(lines) + "\n")
    loaded = read_huffpost(path, n_sites=3)
    a = loaded.valid
    assert len(a) == 2 and loaded.n_rejected == 2  # the duplicate link and the broken line
    first = a.iloc[0]
    assert first["title"] == "Senate votes" and first["body"] == "About senate votes."
    assert first["category"] == "POLITICS" and first["language"] == "en"
    assert str(first["published_at"]) == "2022-09-23 00:00:00+00:00"
    assert first["site"] == huffpost_site("https://www.huffpost.com/entry/a_n_1", 3)
    assert first["article_id"].startswith("hp-") and len(first["article_id"]) == 15
    # The site rule is deterministic and spreads links over every site.
    links = [f"https://www.huffpost.com/entry/x_n_{i}" for i in range(200)]
    assert {huffpost_site(link, 4) for link in links} == {"hp0", "hp1", "hp2", "hp3"}
    with pytest.raises(ValueError):
        read_huffpost(path, n_sites=1)
    with pytest.raises(SchemaError, match="not found"):
        read_huffpost(tmp_path / "missing.jsonl")


def test_livedoor_fixture(tmp_path: Path) -> None:
    for site, number, title in (("smax", 1, "新型スマホ発表"), ("peachy", 2, "春のコスメ特集")):
        folder = tmp_path / site
        folder.mkdir()
        (folder / "LICENSE.txt").write_text("license text")
        (folder / f"{site}-{number}.txt").write_text(
            f"http://news.livedoor.com/article/detail/{number}/\n"
            "2012-05-01T10:00:00+0900\n"
            f"{title}\n本文の一行目。\n\n本文の二行目。\n",
            encoding="utf-8",
        )
    (tmp_path / "peachy" / "peachy-3.txt").write_text("http://x.example/3\n", encoding="utf-8")
    loaded = read_livedoor(tmp_path)
    a = loaded.valid.set_index("article_id")
    assert list(a.index) == ["peachy-2", "smax-1"]
    assert loaded.n_rejected == 1  # peachy-3 has no date and no title
    assert a.loc["smax-1", "site"] == "smax" and a.loc["smax-1", "language"] == "ja"
    assert a.loc["smax-1", "title"] == "新型スマホ発表"
    assert a.loc["smax-1", "body"] == "本文の一行目。\n\n本文の二行目。"
    assert str(a.loc["smax-1", "published_at"]) == "2012-05-01 01:00:00+00:00"
    assert a.loc["smax-1", "category"] == ""
    only = read_livedoor(tmp_path, sites=["smax"]).valid
    assert list(only["site"]) == ["smax"]
    with pytest.raises(SchemaError):
        read_livedoor(tmp_path / "missing")


@pytest.mark.skipif(not HUFFPOST.exists(), reason="real data in ../shared/data is absent")
def test_real_huffpost() -> None:
    loaded = read_huffpost(HUFFPOST)
    a = loaded.valid
    assert len(a) == 9998 and loaded.n_rejected == 2  # 2 duplicate links in the file
    assert a["category"].nunique() == 29
    assert a["category"].value_counts().index[0] == "POLITICS"
    assert a["site"].value_counts().min() > 2000  # the hash spreads articles evenly


@pytest.mark.skipif(not LIVEDOOR.exists(), reason="real data in ../shared/data is absent")
def test_real_livedoor() -> None:
    loaded = read_livedoor(LIVEDOOR)
    a = loaded.valid
    assert len(a) == 7367 and loaded.n_rejected == 0
    assert set(a["site"]) == set(LIVEDOOR_SITES)
    assert a["site"].value_counts()["sports-watch"] == 900
