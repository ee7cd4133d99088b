"""The model file: its loading runs no code, and it holds exactly the fitted model.

A model file is written by the batch and read back by the next run, as the
batch's user. Whoever can replace it must not get to run code that way: the
SHA-256 in its header is a checksum (anyone can recompute it), not a
signature, so the format itself must be one whose loading runs nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import artifact
from recommender.errors import ArtifactError
from recommender.model import Recommender
from recommender.schema import validate_articles, validate_events
from tests.conftest import tiny_articles, tiny_config, tiny_events

REPO = Path(__file__).resolve().parents[1]


class RunsCode:
    """Unpickling this writes ``marker``: what a crafted model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",))


def forge(path: Path, header: dict, body: bytes) -> Path:
    """A file of the model file's layout with ``body`` as its payload and the
    size and checksum recomputed, as anyone who can write the file can."""
    header = {
        "versions": artifact._library_versions(),
        "metadata": {"kind": "recommender.model.Recommender"},
        **header,
        "payload_bytes": len(body),
        "payload_sha256": hashlib.sha256(body).hexdigest(),
    }
    path.write_bytes(artifact.MAGIC + json.dumps(header).encode() + b"\n" + body)
    return path


def forge_pickle_model(path: Path, marker: Path) -> Path:
    """A model file of the first format (a joblib pickle, as the recommender
    wrote until format 2) whose loading runs code, its checksum recomputed."""
    buffer = io.BytesIO()
    joblib.dump(RunsCode(marker), buffer, compress=3)
    return forge(path, {"format_version": 1}, buffer.getvalue())


def split(path: Path) -> tuple[dict, bytes]:
    _, header, body = path.read_bytes().split(b"\n", 2)
    return json.loads(header), body


def with_members(path: Path, replace: dict[str, bytes]) -> Path:
    """The model file at ``path`` with some payload members replaced (and
    its checksum recomputed)."""
    header, body = split(path)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.get(info.filename, old.read(info.filename)))
    return forge(path, {k: header[k] for k in ("format_version", "metadata")}, out.getvalue())


def object_npy(value: object) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.array([value], dtype=object), allow_pickle=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def model() -> Recommender:
    return Recommender(tiny_config()).fit(
        validate_articles(tiny_articles()).valid, validate_events(tiny_events()).valid
    )


def test_a_pickle_model_file_with_its_hash_recomputed_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = forge_pickle_model(tmp_path / "model.rec", marker)
    # The file is live: unpickled, as the first format was, it runs the code.
    joblib.load(io.BytesIO(split(path)[1]))
    assert marker.read_text() == "ran"
    marker.unlink()

    with pytest.raises(ArtifactError) as info:
        Recommender.load(path)
    assert not marker.exists()  # refused before anything of it was read
    assert "model file format 1 " in str(info.value) and "reads format 2; refit" in str(info.value)


@pytest.mark.parametrize("where", ["payload", "state", "array"])
def test_a_pickle_anywhere_in_a_current_format_file_is_refused_unrun(
    model: Recommender, tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "ran"
    path = model.save(tmp_path / "model.rec")
    if where == "payload":  # the whole payload a pickle
        forge(path, {"format_version": 2}, pickle.dumps(RunsCode(marker)))
        message = "cannot read model payload"
    elif where == "state":  # the JSON member a pickle
        with_members(path, {"state.json": pickle.dumps(RunsCode(marker))})
        message = "state.json is not JSON"
    else:  # one array an object array: a pickle inside a .npy member
        with_members(path, {"eligible_.npy": object_npy(RunsCode(marker))})
        message = "array 'eligible_' unreadable"
    with pytest.raises(ArtifactError, match=message) as info:
        Recommender.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.slow
def test_loading_a_model_unpickles_nothing(model: Recommender, tmp_path: Path) -> None:
    """No pickle is read, not even of harmless types: an audit hook sees
    every class a pickle names, and pickle's and joblib's loaders fail."""
    path = model.save(tmp_path / "model.rec")
    script = """
import sys, pickle, joblib
from recommender.model import Recommender
def refuse(*args, **kwargs):
    raise AssertionError("unpickled")
pickle.load = pickle.loads = joblib.load = refuse
named = []
sys.addaudithook(lambda event, args: named.append(args) if event == "pickle.find_class" else None)
model = Recommender.load(sys.argv[1])
assert not named, named
print(len(model.lists_))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(model.lists_)


def test_fields_the_format_does_not_know_are_refused(model: Recommender, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.rec")
    with zipfile.ZipFile(io.BytesIO(split(path)[1])) as payload:
        state = json.loads(payload.read("state.json"))
    state["loader"] = {"class": "os.system", "args": ["touch pwned"]}
    with_members(path, {"state.json": json.dumps(state).encode()})
    with pytest.raises(ArtifactError, match=r"fields \['loader'\] unknown"):
        Recommender.load(path)

    state.pop("loader")
    state["title_links_"]["vectorizer"]["params"]["tokenizer"] = "os.system"
    with_members(path, {"state.json": json.dumps(state).encode()})
    with pytest.raises(ArtifactError, match="a tokenizer cannot come from a model file"):
        Recommender.load(path)


def test_parts_that_do_not_fit_together_are_refused(model: Recommender, tmp_path: Path) -> None:
    """A file that passes the checksum but does not fit together fails with
    a clear message, not an IndexError (or worse) later."""
    path = model.save(tmp_path / "model.rec")
    far = io.BytesIO()
    items = model.lists_.items.copy()
    items[0, 0] = len(model.articles_) + 5
    np.lib.format.write_array(far, items)
    with_members(path, {"lists_.items.npy": far.getvalue()})
    with pytest.raises(ArtifactError, match=r"lists_\.items points past the 9 articles"):
        Recommender.load(path)

    path = model.save(tmp_path / "model.rec")
    bad = io.BytesIO()
    np.lib.format.write_array(bad, model.X_.indices + 10_000)
    with_members(path, {"X_.indices.npy": bad.getvalue()})
    with pytest.raises(ArtifactError, match="column indices out of range"):
        Recommender.load(path)


def test_every_fitted_attribute_is_saved_and_read_back_exactly(
    model: Recommender, tmp_path
) -> None:
    updated = model.update(
        validate_articles(tiny_articles().iloc[1:]).valid, validate_events(tiny_events()).valid
    )
    updated.published_run_id_ = "run-1"
    for original in (model, updated):
        loaded = Recommender.load(original.save(tmp_path / "model.rec"))
        fitted = {k for k in vars(original) if not k.startswith("_")}
        assert {k for k in vars(loaded) if not k.startswith("_")} == fitted
        for name in sorted(fitted):
            assert_same(getattr(loaded, name), getattr(original, name), name)


def assert_same(got, expected, name: str) -> None:
    """Equal values of the same types (and dtypes), field by field."""
    import scipy.sparse as sp

    assert type(got) is type(expected), name
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected)
    elif sp.issparse(expected):
        for part in ("data", "indices", "indptr"):
            assert_same(getattr(got, part), getattr(expected, part), f"{name}.{part}")
        assert got.shape == expected.shape, name
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert got.attrs == expected.attrs
    elif isinstance(expected, pd.Timestamp):
        assert got == expected and got.unit == expected.unit and str(got.tz) == str(expected.tz)
    elif hasattr(expected, "__dataclass_fields__"):
        for field in expected.__dataclass_fields__:
            assert_same(getattr(got, field), getattr(expected, field), f"{name}.{field}")
    elif hasattr(expected, "get_params"):  # a fitted vectorizer
        assert got.get_params() == expected.get_params(), name
        fitted = {k: v for k, v in vars(expected).items() if k.endswith("_")}
        assert {k for k in vars(got) if k.endswith("_")} == set(fitted), name
        for key, value in fitted.items():
            if key == "counter_":
                assert got.counter_.get_params() == value.get_params()
            else:
                assert_same(getattr(got, key), value, f"{name}.{key}")
        probe = ["Sake from Kobe", "Mount Fuji trails", ""]
        if hasattr(expected, "categories_"):
            frame = pd.DataFrame({"title": probe, "body": probe, "category_key": "alpha/Food"})
            assert (got.transform(frame) != expected.transform(frame)).nnz == 0
        else:
            assert (got.transform(probe) != expected.transform(probe)).nnz == 0
    elif hasattr(expected, "model_dump"):  # the config
        assert got.model_dump() == expected.model_dump(), name
    elif isinstance(expected, float):
        assert got == expected or (np.isnan(got) and np.isnan(expected)), name
    else:
        assert got == expected, name


def test_an_attribute_the_format_does_not_know_is_not_dropped_silently(
    model: Recommender, tmp_path: Path
) -> None:
    model.surprise_ = np.zeros(3)
    try:
        with pytest.raises(
            TypeError, match=r"does not know the fitted attribute\(s\) \['surprise_'\]"
        ):
            model.save(tmp_path / "model.rec")
    finally:
        del model.surprise_
    assert not list(tmp_path.iterdir())  # no file, not even a temporary one


text = st.one_of(st.none(), st.text(max_size=8))


@given(st.lists(text, max_size=20), st.sampled_from(["python", "pyarrow"]))
@settings(max_examples=60, deadline=None)
def test_string_columns_come_back_as_they_were(values, storage) -> None:
    index = pd.Index([f"id-{i}" for i in range(len(values))], dtype="string", name="id")
    frame = pd.DataFrame(
        {
            "s": pd.array(values, dtype=pd.StringDtype(storage)),
            "o": pd.Series(values, dtype=object, index=index),
            "n": np.arange(len(values), dtype=np.int32),
            "t": pd.to_datetime(np.arange(len(values)) * 10**9, utc=True),
        },
        index=index,
    )
    assert frame["o"].dtype == object
    writer = artifact.ArtifactWriter()
    state = {"frame": writer.frame("frame", frame)}
    path = Path(__import__("tempfile").mkdtemp()) / "f.rec"
    artifact.save_artifact(state, path, arrays=writer.arrays)
    with artifact.open_artifact(path) as reader:
        back = reader.frame("frame", reader.state["frame"])
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back["o"].tolist() == values


def test_columns_of_other_dtypes_are_refused_when_saving() -> None:
    writer = artifact.ArtifactWriter()
    with pytest.raises(TypeError, match="dtype category"):
        writer.frame("f", pd.DataFrame({"c": pd.Categorical(["a"])}))
    with pytest.raises(TypeError, match="expected strings"):
        writer.frame("f", pd.DataFrame({"o": pd.Series([{"not": "a string"}], dtype=object)}))
    with pytest.raises(TypeError, match="cannot save an array of dtype object"):
        writer.array("a", np.array([object()], dtype=object))


def test_a_model_saved_under_other_list_rules_is_refused(
    model: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose recorded model hash differs from what this version computes
    for its settings (the rules that turn settings into lists changed) is
    refused: updating it would mix rows of both rules."""
    import recommender.config

    path = model.save(tmp_path / "model.rec")
    assert Recommender.load(path).version == model.version
    monkeypatch.setattr(recommender.config, "LIST_RULES", recommender.config.LIST_RULES + 1)
    with pytest.raises(ArtifactError, match="other list rules"):
        Recommender.load(path)
