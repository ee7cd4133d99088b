from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import artifact
from recommender.errors import ArtifactError, InputError, NotFittedError, UnknownArticleError
from recommender.model import Recommender, category_keys
from recommender.schema import validate_articles, validate_events
from tests.conftest import tiny_articles, tiny_config, tiny_events


@pytest.fixture(scope="module")
def model() -> Recommender:
    return Recommender(tiny_config()).fit(
        validate_articles(tiny_articles()).valid, validate_events(tiny_events()).valid
    )


def test_save_and_load_give_the_same_lists(model: Recommender, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.rec")
    loaded = Recommender.load(path)
    assert loaded.version == model.version
    assert list(loaded.recommendation_lists("r", "t")) == list(model.recommendation_lists("r", "t"))
    header = artifact.read_header(path)
    assert header["metadata"]["config_hash"] == model.config.config_hash()
    assert header["versions"]["scikit-learn"]


def test_recommend_one_article(model: Recommender) -> None:
    block = model.recommend("a-sake", k=2)
    assert block.source_id == "a-sake" and len(block.items) == 2
    with pytest.raises(UnknownArticleError, match="unknown article id") as raised:
        model.recommend("nope")
    assert isinstance(raised.value, KeyError)  # what callers caught before
    assert str(raised.value) == "unknown article id 'nope'"


def _rewrite(path: Path, transform) -> None:
    data = path.read_bytes()
    path.write_bytes(transform(data))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) - 100], "truncated model file"),
        (lambda b: b[:-50] + bytes([b[-50] ^ 0xFF]) + b[-49:], "checksum mismatch"),
        (lambda b: b"PK\x03\x04" + b[4:], "not a recommender model file"),
        (lambda b: b[:30], "damaged model file|truncated"),
    ],
)
def test_damaged_files_fail_with_a_clear_message(model, tmp_path: Path, damage, message) -> None:
    path = model.save(tmp_path / "model.rec")
    _rewrite(path, damage)
    with pytest.raises(ArtifactError, match=message) as info:
        Recommender.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("format_version", 3, "model file format 3 .* reads format 2"),
        ("format_version", 1, "model file format 1 .* reads format 2"),  # the pickle one
        ("versions", {"recommender": "0.0.1", "scikit-learn": "1.9.1"}, "written with recommender"),
    ],
)
def test_files_from_another_version_are_refused(
    model, tmp_path: Path, field, value, message
) -> None:
    path = model.save(tmp_path / "model.rec")
    magic, header, body = path.read_bytes().split(b"\n", 2)
    fields = json.loads(header)
    fields[field] = value
    path.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + body)
    with pytest.raises(ArtifactError, match=message):
        Recommender.load(path)


def test_a_save_that_fails_midway_leaves_the_previous_file_whole(
    model: Recommender, tmp_path: Path, monkeypatch
) -> None:
    path = model.save(tmp_path / "model.rec")
    before = path.read_bytes()
    written = []

    def full_disk(out, array, **kwargs):
        if written:
            raise OSError(28, "No space left on device")
        written.append(array)
        return write_array(out, array, **kwargs)

    write_array = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.save(path)
    assert path.read_bytes() == before  # never a half-written file under that name
    assert [p.name for p in tmp_path.iterdir()] == ["model.rec"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        Recommender.load(tmp_path / "none.rec")


def test_an_artifact_of_something_else_is_not_a_model(tmp_path: Path) -> None:
    path = artifact.save_artifact({"x": 1}, tmp_path / "other.rec", {"kind": "other"})
    with pytest.raises(ArtifactError, match="not a Recommender model"):
        Recommender.load(path)


def test_unfitted_and_empty_input() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        Recommender(tiny_config()).recommend("a-sake")
    empty = validate_articles(tiny_articles().iloc[:0]).valid
    with pytest.raises(InputError, match="no valid articles"):
        Recommender(tiny_config()).fit(empty, validate_events(tiny_events()).valid)


def test_category_keys_map_labels_across_sites() -> None:
    config = tiny_config(
        sites={
            "alpha": {"display_name": "A", "category_map": {"Food": "food"}},
            "gamma": {"display_name": "G", "category_map": {"Food": "food"}},
        }
    )
    articles = validate_articles(tiny_articles()).valid
    keys = dict(zip(articles["article_id"], category_keys(articles, config), strict=True))
    assert keys["a-sake"] == keys["c-sake"] == "food"
    assert keys["b-sake"] == "beta/Drinks"
    articles.loc[0, "category"] = ""
    assert category_keys(articles, config)[0] == ""


def test_bulk_json_decodes_to_the_same_lists(model: Recommender) -> None:
    slow = list(model.recommendation_lists("r", "2021-03-08T00:00:00+00:00"))
    fast = list(model.list_payloads("r", "2021-03-08T00:00:00+00:00", chunk=4))
    assert [f.source_id for f in fast] == [s.source_id for s in slow]
    assert [f.decode() for f in fast] == slow


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
@settings(max_examples=100, deadline=None)
def test_bulk_numbers_read_back_as_the_same_floats(values) -> None:
    from recommender.model.payloads import json_numbers, rounded

    published = rounded(np.array(values, dtype=np.float64))
    texts = json_numbers(published).to_pylist()
    decoded = [json.loads(text) for text in texts]
    assert all(isinstance(value, float) for value in decoded)
    assert decoded == published.tolist()
