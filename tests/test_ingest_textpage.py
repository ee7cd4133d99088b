"""The text page form: the seed page's article and its "A mix of what's trending" block."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.ingest.documents import Document
from recommender.ingest.textpage import read_text_page
from tests.test_ingest_sources import sample_config, site_context

SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "seed-page.txt"
NOW = pd.Timestamp("2021-03-08T00:00:00Z")

SEED_BLOCK = [
    ("Families", "Five Of Our Favorite Japanese Baby Products", "Savvy Tokyo"),
    ("", "2021 Top Jobs in Japan Week 9", "GaijinPot Blog"),
    ("Families", "Is A Japanese School Best for Your Child?", "Savvy Tokyo"),
    ("", "Everything You Need to Know About Hinamatsuri", "GaijinPot Blog"),
    ("Shrines & Temples", "Kinkaku-ji Temple (Golden Pavilion)", "GaijinPot Travel"),
    ("Food & Drink", "Recipe: Sakura Mochi", "Savvy Tokyo"),
    ("", "Mie", "GaijinPot Travel"),
    ("", "Kyoto", "GaijinPot Travel"),
    ("Shrines & Temples", "Ise", "GaijinPot Travel"),
    ("Travel", "Truth by the Barrel: In Search of Kobe’s Finest Sake", "GaijinPot Blog"),
    (
        "",
        "Tweet of The Week 120: Is ‘Police Tantrum’ The Latest Japanese Internet Slang?",
        "GaijinPot Blog",
    ),
    ("What's Happening", "This Week: At Home And Around Tokyo For March 1-7", "Savvy Tokyo"),
]


def site_names() -> dict[str, str]:
    return {site.display_name: key for key, site in sample_config().sites.items()}


def read(text: str | bytes, **kwargs: str) -> object:
    content = text.encode() if isinstance(text, str) else text
    return read_text_page(
        Document(source="seed-page.txt", content=content),
        site_context("japantoday"),
        site_names=site_names(),
        now=NOW,
        **kwargs,
    )


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="../shared/seed-page.txt is not here")
def test_the_seed_page_block_has_its_12_items() -> None:
    page = read(SEED_PAGE.read_bytes())
    block = page.block  # type: ignore[attr-defined]
    assert list(zip(block["category"], block["title"], block["site_name"], strict=True)) == (
        SEED_BLOCK
    )
    assert block["position"].tolist() == list(range(1, 13))
    assert set(block["site"]) == {"savvytokyo", "gaijinpot-blog", "gaijinpot-travel"}


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="../shared/seed-page.txt is not here")
def test_the_seed_page_article_is_read_with_the_url_and_date_given() -> None:
    page = read(
        SEED_PAGE.read_bytes(),
        url="https://japantoday.com/category/politics/blinken-austin-to-visit-japan-from-march-15",
        published_at="2021-03-04T11:30:00+09:00",
    )
    article = page.article.valid.iloc[0]  # type: ignore[attr-defined]
    assert article["title"] == "Blinken, Austin to visit Japan from March 15"
    assert article["category"] == "Politics"  # "politics" in the config's spelling
    assert article["body"].startswith("U.S. Secretary of State Antony Blinken")
    assert article["body"].endswith('a stable and open international system."')
    assert "TOKYO" not in article["body"] and "Reuters 2021" not in article["body"]
    assert article["body"].count("\n\n") == 4  # five paragraphs
    assert article["published_at"] == pd.Timestamp("2021-03-04T02:30:00Z")


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="../shared/seed-page.txt is not here")
def test_without_url_and_date_the_article_is_rejected_and_the_block_kept() -> None:
    page = read(SEED_PAGE.read_bytes())
    result = page.article  # type: ignore[attr-defined]
    assert len(result.valid) == 0
    reasons = result.rejected.set_index("field")["reason"]
    assert "carries no URL" in reasons["url"] and "carries no date" in reasons["published_at"]
    assert len(page.block) == 12  # type: ignore[attr-defined]


def test_a_broken_block_reports_the_lines_and_keeps_the_good_items() -> None:
    text = "\n\n".join(
        [
            "politics",
            "A title",
            "3 Comments",
            "Body.",
            "A mix of what's trending on our other sites",
            "Families",
            "Five Of Our Favorite Japanese Baby Products",
            "Savvy Tokyo",
            "Savvy Tokyo",
            "one",
            "two",
            "three",
            "GaijinPot Blog",
            "Mie",
            "GaijinPot Travel",
            "a trailing line",
        ]
    )
    page = read(text, url="https://japantoday.com/a", published_at="2021-03-01")
    block = page.block  # type: ignore[attr-defined]
    assert block["title"].tolist() == ["Five Of Our Favorite Japanese Baby Products", "Mie"]
    problems = page.article.problems  # type: ignore[attr-defined]
    assert problems["row"].tolist() == [17, 19, 31]
    assert "found none" in problems["reason"].iat[0]
    assert "found 3 lines" in problems["reason"].iat[1]
    assert "no site name" in problems["reason"].iat[2]
    assert len(page.article.valid) == 1  # type: ignore[attr-defined]


def test_text_without_the_form_is_rejected_as_such() -> None:
    page = read("just some words\nand more")
    assert "not the text page form" in page.article.rejected["reason"].iat[0]  # type: ignore[attr-defined]
    assert len(page.block) == 0  # type: ignore[attr-defined]
