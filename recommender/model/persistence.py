"""Persistence: a fitted :class:`~recommender.model.Recommender` as the model file holds it:
its fitted attributes as arrays (written with ``allow_pickle=False``) and JSON,
read back only into the fields a model has, each into its own class. Nothing
in the file names a type, and nothing is unpickled: loading a file runs no
code, whoever wrote it (:mod:`recommender.artifact` is the container, with
its version and damage checks).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender import tokenize_ja
from recommender.artifact import (
    ArtifactReader,
    ArtifactWriter,
    PendingArtifact,
    open_artifact,
    write_pending,
)
from recommender.config import Config, TrendingConfig
from recommender.editorial import RulesError, rules_from_json, rules_to_json
from recommender.errors import ArtifactError
from recommender.features import JA_ANALYZERS, ArticleVectorizer
from recommender.mix import MixedLists
from recommender.model.stages import Stages
from recommender.similarity import Neighbors, TitleLinks
from recommender.trending import TrendBaseline

M = TypeVar("M", bound=Stages)

#: The model file's ``kind``: what :func:`load_model` accepts.
ARTIFACT_KIND = "recommender.model.Recommender"

#: Fitted attributes a model file holds: always, and when the model has them.
_REQUIRED_FIELDS = (
    "now_",
    "articles_",
    "vectorizer_",
    "X_",
    "vocabulary_fitted_at_",
    "eligible_",
    "freshness_",
    "neighbors_",
    "trend_",
    "groups_",
    "lists_",
)
_OPTIONAL_FIELDS = (
    "reserve_",
    "depth_",
    "trend_baseline_",
    "title_links_",
    "update_stats_",
    "timings_",
    "changed_lists_",
    "removed_sources_",
    "published_run_id_",
    "editorial_",
    "trending_",
    "tuning_",
)
#: ArticleVectorizer's fitted attributes (its parameters aside).
_VECTORIZER_FITTED = (
    "vocabulary_",
    "counter_",
    "idf_",
    "ja_vocabulary_",
    "ja_counter_",
    "ja_idf_",
    "categories_",
    "n_text_features_",
    "n_features_out_",
)
_FLOAT_TYPES: dict[str, Any] = {"float32": np.float32, "float64": np.float64}
_TIME_UNITS = ("s", "ms", "us", "ns")


def encode_model(model: Stages) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The model's fitted state as JSON and named arrays."""
    fields = vars(model)
    unknown = sorted(
        name
        for name in fields
        if name.endswith("_") and name not in _REQUIRED_FIELDS + _OPTIONAL_FIELDS
    )
    if unknown:
        raise TypeError(
            f"Recommender.save does not know the fitted attribute(s) {unknown}: "
            "add them to the model file's fields (recommender/model/persistence.py)"
        )
    w = ArtifactWriter()
    state: dict[str, Any] = {
        "config": model.config.model_dump(mode="json"),
        "now_": _encode_time(model.now_),
        "vocabulary_fitted_at_": _encode_time(model.vocabulary_fitted_at_),
        "articles_": w.frame("articles_", model.articles_),
        "vectorizer_": _encode_article_vectorizer(w, "vectorizer_", model.vectorizer_),
        "X_": w.csr("X_", model.X_),
        "eligible_": w.array("eligible_", model.eligible_),
        "freshness_": w.array("freshness_", model.freshness_),
        "neighbors_": _encode_neighbors(w, "neighbors_", model.neighbors_),
        "trend_": w.frame("trend_", model.trend_),
        "groups_": w.array("groups_", model.groups_),
        "lists_": _encode_lists(w, "lists_", model.lists_),
    }
    if "reserve_" in fields:
        state["reserve_"] = _encode_neighbors(w, "reserve_", model.reserve_)
    if "depth_" in fields:
        state["depth_"] = w.array("depth_", model.depth_)
    if "trend_baseline_" in fields:
        baseline = model.trend_baseline_
        _check_fields("trend_baseline_", baseline, ("mu", "c0", "curve", "top"))
        state["trend_baseline_"] = {
            "mu": float(baseline.mu),
            "c0": float(baseline.c0),
            "curve": [float(value) for value in baseline.curve],
            "top": float(baseline.top),
        }
    if "title_links_" in fields:
        state["title_links_"] = _encode_title_links(w, "title_links_", model.title_links_)
    for name in ("update_stats_", "timings_"):
        if name in fields:
            state[name] = _plain_dict(name, fields[name])
    if "changed_lists_" in fields:
        state["changed_lists_"] = w.array("changed_lists_", model.changed_lists_)
    if "removed_sources_" in fields:
        state["removed_sources_"] = [str(source) for source in model.removed_sources_]
    if "published_run_id_" in fields:
        run_id = model.published_run_id_
        state["published_run_id_"] = None if run_id is None else str(run_id)
    if "editorial_" in fields:
        state["editorial_"] = rules_to_json(model.editorial_)
    if "trending_" in fields:
        state["trending_"] = model.trending_.model_dump(mode="json")
    if "tuning_" in fields:
        state["tuning_"] = json.loads(json.dumps(model.tuning_, allow_nan=False))
    return state, w.arrays


def decode_model(cls: type[M], r: ArtifactReader) -> M:
    """A model from the fields :func:`encode_model` wrote (checked against
    each other: a file that passes the checksum yet does not fit together
    is refused here, not by an IndexError later)."""
    state = r.state
    known = {"config", *_REQUIRED_FIELDS, *_OPTIONAL_FIELDS}
    unknown = sorted(set(state) - known)
    missing = [name for name in ("config", *_REQUIRED_FIELDS) if name not in state]
    if unknown or missing:
        raise r.error(f"fields {unknown} unknown, {missing} missing")
    _check_tokenizer(r, "vectorizer_", state["vectorizer_"])  # before the config says it
    try:
        config = Config.model_validate(state["config"])
    except ValueError as error:
        raise r.error(f"invalid config: {error}") from None
    model = cls(config)
    model.now_ = _decode_time(r, "now_", state["now_"])
    model.vocabulary_fitted_at_ = _decode_time(
        r, "vocabulary_fitted_at_", state["vocabulary_fitted_at_"]
    )
    model.articles_ = r.frame("articles_", state["articles_"])
    n = len(model.articles_)
    model.vectorizer_ = _decode_article_vectorizer(r, "vectorizer_", state["vectorizer_"])
    model.X_ = r.csr(state["X_"], rows=n)
    if model.X_.shape[1] != model.vectorizer_.n_features_out_:
        raise r.error(
            f"X_ has {model.X_.shape[1]} columns, the vectorizer makes "
            f"{model.vectorizer_.n_features_out_}"
        )
    model.eligible_ = r.array(state["eligible_"], kinds="b", ndim=1, length=n)
    model.freshness_ = r.array(state["freshness_"], kinds="f", ndim=1, length=n)
    model.neighbors_ = _decode_neighbors(r, "neighbors_", state["neighbors_"], n)
    model.trend_ = r.frame("trend_", state["trend_"])
    if len(model.trend_) != n or "trend" not in model.trend_:
        raise r.error("trend_ does not fit the articles")
    model.groups_ = r.array(state["groups_"], kinds="i", ndim=1, length=n)
    model.lists_ = _decode_lists(r, "lists_", state["lists_"], n)
    if "reserve_" in state:
        model.reserve_ = _decode_neighbors(r, "reserve_", state["reserve_"], n)
    if "depth_" in state:
        model.depth_ = r.array(state["depth_"], kinds="i", ndim=1, length=n)
    if "trend_baseline_" in state:
        model.trend_baseline_ = _decode_baseline(r, state["trend_baseline_"])
    if "title_links_" in state:
        model.title_links_ = _decode_title_links(r, "title_links_", state["title_links_"], n)
    for name in ("update_stats_", "timings_"):
        if name in state:
            value = state[name]
            if not isinstance(value, dict):
                raise r.error(f"{name} is not an object")
            setattr(model, name, value)
    if "changed_lists_" in state:
        model.changed_lists_ = r.array(
            state["changed_lists_"], kinds="b", ndim=1, length=len(model.lists_)
        )
    if "removed_sources_" in state:
        model.removed_sources_ = _decode_str_list(r, "removed_sources_", state["removed_sources_"])
    if "published_run_id_" in state:
        run_id = state["published_run_id_"]
        if run_id is not None and not isinstance(run_id, str):
            raise r.error("published_run_id_ is not a string")
        model.published_run_id_ = run_id
    if "editorial_" in state:
        try:
            model.editorial_ = rules_from_json(state["editorial_"], source="editorial_")
        except (RulesError, TypeError, ValueError, AttributeError) as error:
            raise r.error(f"editorial_ is not valid: {error}") from None
    if "trending_" in state:
        try:
            model.trending_ = TrendingConfig.model_validate(state["trending_"])
        except ValidationError as error:
            raise r.error(f"trending_ is not valid: {error}") from None
    if "tuning_" in state:
        if not isinstance(state["tuning_"], dict):
            raise r.error("tuning_ is not valid: expected an object")
        model.tuning_ = state["tuning_"]
    return model


def save_pending(model: Stages, path: str | Path) -> PendingArtifact:
    """The model file written beside ``path`` under a temporary name and
    fsynced; :meth:`~recommender.artifact.PendingArtifact.commit` puts it in
    place."""
    state, arrays = encode_model(model)
    metadata = {
        "kind": ARTIFACT_KIND,
        "config_hash": model.config.config_hash(),
        "model_hash": model.config.model_hash(),
        "model_version": model.version,
        "now": model.now_.isoformat(),
        "n_articles": len(model.articles_),
        "published_run_id": model.published_run_id_,
    }
    return write_pending(state, path, metadata, arrays)


def load_model(cls: type[M], path: str | Path) -> M:
    """A model of class ``cls`` read from a file :func:`save_pending` wrote;
    :class:`ArtifactError` if it is damaged, truncated, not a model or from
    another version, if its fields do not fit together, or if it was written
    under other list rules (:data:`~recommender.config.LIST_RULES`)."""
    with open_artifact(path) as reader:
        if reader.metadata.get("kind") != ARTIFACT_KIND:
            raise ArtifactError(f"{path}: not a Recommender model artifact")
        try:
            model = decode_model(cls, reader)
        except ArtifactError:
            raise
        except Exception as error:  # whatever else a crafted file may provoke
            raise reader.error(f"{type(error).__name__}: {error}") from None
        saved, now = reader.metadata.get("model_hash"), model.config.model_hash()
        if saved != now:
            raise ArtifactError(
                f"{path}: written under other list rules (model hash {saved}, this version "
                f"gives {now} for the same settings): its rows cannot be updated, refit"
            )
        return model


def _plain_dict(name: str, value: Any) -> dict[str, Any]:
    """A dict of JSON scalars (run statistics, timings)."""
    out = {}
    for key, item in dict(value).items():
        if isinstance(item, np.generic):
            item = item.item()
        if not isinstance(key, str) or not (
            item is None or isinstance(item, bool | int | float | str)
        ):
            raise TypeError(f"{name}: cannot save {key!r}: {item!r}")
        out[key] = item
    return out


def _encode_time(stamp: pd.Timestamp) -> dict[str, Any]:
    return {"iso": stamp.isoformat(), "unit": stamp.unit}


def _decode_time(r: ArtifactReader, name: str, value: Any) -> pd.Timestamp:
    if (
        not isinstance(value, dict)
        or value.get("unit") not in _TIME_UNITS
        or not isinstance(value.get("iso"), str)
    ):
        raise r.error(f"{name} is not a time")
    try:
        stamp = pd.Timestamp(value["iso"])
    except (TypeError, ValueError):
        raise r.error(f"{name} is not a time") from None
    if stamp.tzinfo is None:
        raise r.error(f"{name} has no time zone")
    return stamp.tz_convert("UTC").as_unit(value["unit"])


def _decode_str_list(r: ArtifactReader, name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise r.error(f"{name} is not a list of strings")
    return value


def _encode_neighbors(w: ArtifactWriter, name: str, neighbors: Neighbors) -> dict[str, Any]:
    _check_fields(name, neighbors, ("indices", "scores"))
    return {
        "indices": w.array(f"{name}.indices", neighbors.indices),
        "scores": w.array(f"{name}.scores", neighbors.scores),
    }


def _decode_neighbors(r: ArtifactReader, name: str, value: Any, n: int) -> Neighbors:
    if not isinstance(value, dict):
        raise r.error(f"{name} is not an object")
    indices = r.array(value.get("indices"), kinds="i", ndim=2, length=n)
    scores = r.array(value.get("scores"), kinds="f", ndim=2, length=n)
    if indices.shape != scores.shape:
        raise r.error(f"{name}: indices and scores differ in shape")
    _check_rows(r, name, indices, n)
    return Neighbors(indices, scores)


def _check_rows(r: ArtifactReader, name: str, rows: np.ndarray, n: int, pad: int = -1) -> None:
    """Row indices into the articles (``pad`` for none)."""
    if rows.size and (rows.min() < pad or rows.max() >= n):
        raise r.error(f"{name} points past the {n} articles")


_LIST_PARTS = ("items", "score", "relevance", "trend", "freshness")


def _encode_lists(w: ArtifactWriter, name: str, lists: MixedLists) -> dict[str, Any]:
    _check_fields(name, lists, ("source_ids", "source_sites", *_LIST_PARTS))
    return {
        "source_ids": w.strings(f"{name}.source_ids", lists.source_ids),
        "source_sites": w.strings(f"{name}.source_sites", lists.source_sites),
        **{part: w.array(f"{name}.{part}", getattr(lists, part)) for part in _LIST_PARTS},
    }


def _decode_lists(r: ArtifactReader, name: str, value: Any, n: int) -> MixedLists:
    if not isinstance(value, dict):
        raise r.error(f"{name} is not an object")
    source_ids = r.string_list(value.get("source_ids"))
    source_sites = r.string_list(value.get("source_sites"))
    items = r.array(value.get("items"), kinds="i", ndim=2, length=len(source_ids))
    _check_rows(r, f"{name}.items", items, n)
    parts = []
    for part in ("score", "relevance", "trend", "freshness"):
        values = r.array(value.get(part), kinds="f", ndim=2)
        if values.shape != items.shape:
            raise r.error(f"{name}.{part} does not fit the items")
        parts.append(values)
    if len(source_sites) != len(source_ids) or any(s is None for s in source_ids):
        raise r.error(f"{name}: source ids and sites do not fit")
    return MixedLists(source_ids, source_sites, items, *parts)


def _decode_baseline(r: ArtifactReader, value: Any) -> TrendBaseline:
    if not isinstance(value, dict) or set(value) != {"mu", "c0", "curve", "top"}:
        raise r.error("trend_baseline_ is not a baseline")
    numbers = [value["mu"], value["c0"], value["top"], *(value["curve"] or [])]
    if not isinstance(value["curve"], list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in numbers
    ):
        raise r.error("trend_baseline_ is not a baseline")
    return TrendBaseline(
        float(value["mu"]),
        float(value["c0"]),
        tuple(float(x) for x in value["curve"]),
        float(value["top"]),
    )


def _encode_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """An estimator's parameters as JSON (dtypes by name); anything else,
    a callable say, cannot be saved."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "dtype":
            out[key] = np.dtype(value).name
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, tuple | list) and all(
            isinstance(item, int | str) and not isinstance(item, bool) for item in value
        ):
            out[key] = list(value)
        else:
            raise TypeError(f"{name}: cannot save the parameter {key}={value!r}")
    return out


def _decode_params(
    r: ArtifactReader, name: str, value: Any, known: set[str], pairs: tuple[str, ...]
) -> dict[str, Any]:
    """Parameters of a known estimator: known names only, JSON values, a
    float dtype from a short list, ``pairs`` as tuples of two ints."""
    if not isinstance(value, dict) or not set(value) <= known:
        raise r.error(f"{name}: unknown parameters {sorted(set(value or {}) - known)}")
    params: dict[str, Any] = {}
    for key, item in value.items():
        if key == "dtype":
            if item not in _FLOAT_TYPES:
                raise r.error(f"{name}: unknown dtype {item!r}")
            item = _FLOAT_TYPES[item]
        elif key in pairs:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            ):
                raise r.error(f"{name}: {key} is not a pair of integers")
            item = (item[0], item[1])
        elif isinstance(item, list):
            if not all(isinstance(x, str) for x in item):
                raise r.error(f"{name}: {key} is not a list of strings")
        elif isinstance(item, dict):
            raise r.error(f"{name}: {key} is not a plain value")
        params[key] = item
    # What scikit-learn would call, or look up by name: none but these.
    if params.get("analyzer", "word") not in ("word", "char", "char_wb"):
        raise r.error(f"{name}: unknown analyzer {params['analyzer']!r}")
    # The Japanese analyzer is recorded by name and rebuilt from it.
    if params.get("ja_analyzer") not in (None, *JA_ANALYZERS):
        raise r.error(f"{name}: unknown ja_analyzer {params['ja_analyzer']!r}")
    if "ja_sites" in params:
        params["ja_sites"] = tuple(params["ja_sites"])
    for key in ("tokenizer", "preprocessor"):
        if params.get(key) is not None:
            raise r.error(f"{name}: a {key} cannot come from a model file")
    return params


def _terms(name: str, vocabulary: Mapping[str, int]) -> list[str]:
    """A vocabulary's terms in column order."""
    terms: list[str | None] = [None] * len(vocabulary)
    for term, column in vocabulary.items():
        terms[int(column)] = str(term)
    if any(term is None for term in terms):
        raise TypeError(f"{name}: the vocabulary's columns are not 0..{len(terms) - 1}")
    return terms  # type: ignore[return-value]


def _decode_vocabulary(r: ArtifactReader, name: str, terms: Any) -> dict[str, int]:
    if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
        raise r.error(f"{name}: the vocabulary is not a list of terms")
    vocabulary = {term: column for column, term in enumerate(terms)}
    if len(vocabulary) != len(terms):
        raise r.error(f"{name}: the vocabulary repeats a term")
    return vocabulary


def _encode_article_vectorizer(
    w: ArtifactWriter, name: str, vectorizer: ArticleVectorizer
) -> dict[str, Any]:
    if type(vectorizer) is not ArticleVectorizer:
        raise TypeError(f"{name}: cannot save a {type(vectorizer).__name__}")
    params = vectorizer.get_params(deep=False)
    extra = sorted(set(vars(vectorizer)) - set(params) - set(_VECTORIZER_FITTED))
    if extra:
        raise TypeError(f"{name}: the model file does not know the fitted attribute(s) {extra}")

    # The counters are rebuilt from the vocabularies on load: they must be those.
    def rebuilds(counter: Any, rebuilt: Any) -> bool:
        if counter is None or rebuilt is None:
            return counter is rebuilt
        return bool(counter.get_params() == rebuilt.get_params())

    counters = (vectorizer.counter_, vectorizer.ja_counter_)
    for counter, rebuilt in zip(counters, vectorizer._counters(), strict=True):
        if not rebuilds(counter, rebuilt):
            raise TypeError(f"{name}: a counter is not the one its vocabulary makes")
    return {
        "params": _encode_params(name, params),
        "vocabulary": _terms(name, vectorizer.vocabulary_),
        "idf": w.array(f"{name}.idf", vectorizer.idf_),
        "ja_vocabulary": _terms(name, vectorizer.ja_vocabulary_),
        "ja_idf": w.array(f"{name}.ja_idf", vectorizer.ja_idf_),
        "categories": [str(category) for category in vectorizer.categories_],
        "n_text_features": int(vectorizer.n_text_features_),
        "n_features_out": int(vectorizer.n_features_out_),
    }


def _check_tokenizer(r: ArtifactReader, name: str, value: Any) -> None:
    """A model fitted with a Japanese word tokeniser loads only where that
    tokeniser is installed (said before anything else is read)."""
    params = value.get("params") if isinstance(value, dict) else None
    backend = params.get("ja_analyzer") if isinstance(params, dict) else None
    if backend in tokenize_ja.BACKENDS and not tokenize_ja.available(backend):
        raise ArtifactError(
            f"{r.path}: {name}.params.ja_analyzer = {backend!r}: the model was fitted with the "
            f"{backend} tokenizer, which is not installed here: install the ja extra: "
            "pip install 'recommender[ja]'"
        )


def _decode_article_vectorizer(r: ArtifactReader, name: str, value: Any) -> ArticleVectorizer:
    if not isinstance(value, dict):
        raise r.error(f"{name} is not an object")
    known = set(ArticleVectorizer().get_params())
    params = _decode_params(r, name, value.get("params"), known, ("ngram_range",))
    # A file written before ja_analyzer read every article by ``analyzer``.
    params.setdefault("ja_analyzer", None)
    vectorizer = ArticleVectorizer(**params)
    _check_tokenizer(r, name, value)
    vocabulary = _decode_vocabulary(r, name, value.get("vocabulary"))
    idf = r.array(value.get("idf"), kinds="f", ndim=1, length=len(vocabulary))
    # A file written before the Japanese block has none.
    ja_vocabulary: dict[str, int] = {}
    ja_idf = np.zeros(0, dtype=np.float32)
    if "ja_vocabulary" in value:
        ja_vocabulary = _decode_vocabulary(r, f"{name}.ja", value.get("ja_vocabulary"))
        ja_idf = r.array(value.get("ja_idf"), kinds="f", ndim=1, length=len(ja_vocabulary))
    if ja_vocabulary and vectorizer.ja_analyzer is None:
        raise r.error(f"{name}: a Japanese vocabulary without a ja_analyzer")
    categories = _decode_str_list(r, f"{name}.categories", value.get("categories"))
    n_text, n_out = value.get("n_text_features"), value.get("n_features_out")
    n_terms = len(vocabulary) + len(ja_vocabulary)
    if n_text != n_terms or n_out != n_terms + len(categories):
        raise r.error(f"{name}: feature counts do not fit the vocabulary and categories")
    vectorizer.vocabulary_ = vocabulary
    vectorizer.idf_ = idf
    vectorizer.ja_vocabulary_ = ja_vocabulary
    vectorizer.ja_idf_ = ja_idf
    vectorizer.counter_, vectorizer.ja_counter_ = vectorizer._counters()
    vectorizer.categories_ = np.array(categories, dtype=object)
    vectorizer.n_text_features_ = n_text
    vectorizer.n_features_out_ = n_out
    return vectorizer


def _check_fields(name: str, value: Any, known: tuple[str, ...]) -> None:
    """The fields of a dataclass the model file holds are the ones it knows
    (a field added to the class fails the save, instead of being lost)."""
    fields = tuple(field.name for field in dataclasses.fields(value))
    if not set(fields) <= set(known):
        raise TypeError(
            f"{name}: the model file does not know the field(s) "
            f"{sorted(set(fields) - set(known))} of {type(value).__name__}"
        )


#: TitleLinks' fields: the vectorizer, its pairs and threshold, and the
#: compared rows with their vectors and classes (``rep``), when kept.
_TITLE_LINKS_FIELDS = ("vectorizer", "pairs", "threshold", "rows", "matrix", "rep")


def _encode_title_links(w: ArtifactWriter, name: str, links: TitleLinks) -> dict[str, Any]:
    _check_fields(name, links, _TITLE_LINKS_FIELDS)
    vectorizer = links.vectorizer
    encoded_vectorizer = None
    if vectorizer is not None:
        if type(vectorizer) is not TfidfVectorizer:
            raise TypeError(f"{name}: cannot save a {type(vectorizer).__name__}")
        params = vectorizer.get_params(deep=False)
        if params.get("vocabulary") is not None or vectorizer.fixed_vocabulary_:
            raise TypeError(f"{name}: cannot save a title vectorizer with a given vocabulary")
        del params["vocabulary"]  # fitted, not given: saved as the vocabulary below
        encoded_vectorizer = {
            "params": _encode_params(name, params),
            "vocabulary": _terms(name, vectorizer.vocabulary_),
            "idf": w.array(f"{name}.idf", vectorizer.idf_),
        }
    return {
        "vectorizer": encoded_vectorizer,
        "pairs": w.array(f"{name}.pairs", links.pairs),
        "threshold": float(links.threshold),
        "rows": None if links.rows is None else w.array(f"{name}.rows", links.rows),
        "matrix": None if links.matrix is None else w.csr(f"{name}.matrix", links.matrix),
        "rep": None if getattr(links, "rep", None) is None else w.array(f"{name}.rep", links.rep),
    }


def _decode_title_links(r: ArtifactReader, name: str, value: Any, n: int) -> TitleLinks:
    if not isinstance(value, dict) or not isinstance(value.get("threshold"), int | float):
        raise r.error(f"{name} is not an object")
    vectorizer = None
    encoded = value.get("vectorizer")
    if encoded is not None:
        if not isinstance(encoded, dict):
            raise r.error(f"{name}.vectorizer is not an object")
        known = set(TfidfVectorizer().get_params()) - {"vocabulary"}
        params = _decode_params(r, name, encoded.get("params"), known, ("ngram_range",))
        vocabulary = _decode_vocabulary(r, name, encoded.get("vocabulary"))
        idf = r.array(encoded.get("idf"), kinds="f", ndim=1, length=len(vocabulary))
        try:
            vectorizer = TfidfVectorizer(**params)
            vectorizer.vocabulary_ = vocabulary
            vectorizer.fixed_vocabulary_ = False
            vectorizer.idf_ = idf  # scikit-learn's setter: the fitted IDF transformer
        except (TypeError, ValueError) as error:
            raise r.error(f"{name}: {error}") from None
    pairs = r.array(value.get("pairs"), kinds="i", ndim=2)
    if pairs.shape[1:] != (2,):
        raise r.error(f"{name}.pairs is not a list of pairs")
    _check_rows(r, f"{name}.pairs", pairs, n, pad=0)
    rows = None
    if value.get("rows") is not None:
        rows = r.array(value["rows"], kinds="i", ndim=1)
        _check_rows(r, f"{name}.rows", rows, n, pad=0)
    matrix = None
    if value.get("matrix") is not None:
        matrix = r.csr(value["matrix"], rows=None if rows is None else len(rows))
        if vectorizer is not None and matrix.shape[1] != len(vectorizer.vocabulary_):
            raise r.error(f"{name}.matrix does not fit the title vocabulary")
    parts: dict[str, Any] = {"rows": rows, "matrix": matrix}
    if value.get("rep") is not None:
        parts["rep"] = r.array(
            value["rep"], kinds="i", ndim=1, length=0 if rows is None else len(rows)
        )
        _check_rows(r, f"{name}.rep", parts["rep"], n, pad=0)
    known = {field.name for field in dataclasses.fields(TitleLinks)}
    kept = {key: part for key, part in parts.items() if key in known}
    return TitleLinks(vectorizer, pairs, float(value["threshold"]), **kept)


__all__ = ["ARTIFACT_KIND", "decode_model", "encode_model", "load_model", "save_pending"]
