"""recommender.inputs: the config's files, read, validated and tied together."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.errors import InputError, SchemaError
from recommender.inputs import load_inputs
from tests.conftest import tiny_articles, tiny_config, tiny_events


def test_articles_and_events_are_loaded_and_events_tied_to_articles(tiny_network) -> None:
    config, _ = tiny_network
    events = tiny_events()
    articles, loaded, unmatched = load_inputs(config)
    assert articles.n_read == len(tiny_articles()) and articles.n_rejected == 0
    assert len(loaded.valid) == len(events) and unmatched == 0
    assert set(loaded.valid["article_id"]) <= set(articles.valid["article_id"])


def test_events_for_unknown_articles_are_counted_not_kept(tmp_path: Path) -> None:
    tiny_articles().to_csv(tmp_path / "articles.csv", index=False)
    events = tiny_events({"b-baby": 3})
    stray = events.iloc[:2].assign(article_id="no-such-article")
    pd.concat([events, stray]).to_csv(tmp_path / "events.csv", index=False)
    config = tiny_config(tmp_path, data={"articles": ["articles.csv"], "events": ["events.csv"]})
    _, loaded, unmatched = load_inputs(config)
    assert unmatched == 2 and len(loaded.valid) == len(events)


def test_too_many_rejected_rows_stop_the_run_and_the_rejects_file_is_written(
    tmp_path: Path,
) -> None:
    raw = tiny_articles()
    raw["url"] = "not a url"
    raw.to_csv(tmp_path / "articles.csv", index=False)
    config = tiny_config(tmp_path, data={"articles": ["articles.csv"]})
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(InputError, match="max_rejected_fraction"):
        load_inputs(config, rejects_path=rejects)
    assert len(pd.read_csv(rejects)) == len(raw)


def test_a_missing_file_is_named_with_its_config_key(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, data={"articles": ["nope.csv"]})
    with pytest.raises(SchemaError, match=r"data\.articles: .*nope\.csv: file not found"):
        load_inputs(config, config_source="net.toml")
