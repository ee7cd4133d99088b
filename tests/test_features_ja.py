"""Japanese word analyzers (recommender.tokenize_ja)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from recommender import tokenize_ja
from recommender.errors import ArtifactError, ConfigError
from recommender.features import ArticleVectorizer
from recommender.model import Recommender
from recommender.tokenize_ja import BACKENDS, JapaneseWordAnalyzer, available
from tests.test_features_mixed import fit_mixed, mixed_config


def test_unknown_backend_is_named() -> None:
    with pytest.raises(ValueError, match="mecab"):
        JapaneseWordAnalyzer("mecab")


@pytest.mark.parametrize("backend", BACKENDS)
def test_analyzer_pickles_without_tagger(backend: str) -> None:
    analyzer = JapaneseWordAnalyzer(backend)
    blob = pickle.dumps(analyzer)
    assert pickle.loads(blob) == analyzer
    assert len(blob) < 200  # settings only, never the dictionary


@pytest.mark.parametrize("backend", BACKENDS)
def test_words_and_fitted_vectorizer(backend: str) -> None:
    if not available(backend):
        pytest.skip(f"{backend} (the 'ja' extra) is not installed")
    analyzer = JapaneseWordAnalyzer(backend)
    tokens = analyzer("東京都で野球の試合があった。")
    assert "野球" in tokens and "試合" in tokens
    assert "。" not in tokens
    assert analyzer("ＡＢＣ") == analyzer("abc")  # NFKC + lowercase
    frame = pd.DataFrame(
        {"title": ["野球の試合", "サッカーの試合", "映画の公開"], "body": ["", "", ""]}
    )
    vectorizer = ArticleVectorizer(analyzer=analyzer, max_df=1.0, stop_words=None)
    X = vectorizer.fit_transform(frame)
    again = pickle.loads(pickle.dumps(vectorizer))
    assert (again.transform(frame) != X).nnz == 0
    assert "試合" in vectorizer.vocabulary_


# -- features.ja_analyzer: the config key, the model file ----------------------------
def test_the_config_key_defaults_to_char_and_names_a_missing_tokenizer(monkeypatch) -> None:
    assert mixed_config().features.ja_analyzer == "char"
    with pytest.raises(ConfigError, match=r"features\.ja_analyzer"):
        mixed_config(ja_analyzer="mecab")
    monkeypatch.setattr(tokenize_ja, "available", lambda backend: False)
    for backend in BACKENDS:
        with pytest.raises(ConfigError) as raised:
            mixed_config(ja_analyzer=backend)
        message = str(raised.value)
        assert "features.ja_analyzer" in message and backend in message
        assert "install the ja extra: pip install 'recommender[ja]'" in message
    assert mixed_config(ja_analyzer="char").features.ja_analyzer == "char"  # needs nothing


def test_a_model_read_with_a_word_tokenizer_saves_and_loads(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("fugashi")
    if not available("fugashi"):
        pytest.skip("fugashi's dictionary (unidic-lite) is not installed")
    model = fit_mixed(ja_analyzer="fugashi")
    assert model.vectorizer_.ja_counter_.analyzer == JapaneseWordAnalyzer("fugashi")
    assert "ja:野球" in model.vectorizer_.get_feature_names_out()
    path = model.save(tmp_path / "model.rec")
    loaded = Recommender.load(path)
    assert list(loaded.recommendation_lists("r", "t")) == list(model.recommendation_lists("r", "t"))
    assert loaded.vectorizer_.ja_counter_.analyzer == JapaneseWordAnalyzer("fugashi")
    assert (loaded.vectorizer_.transform(model.articles_) != model.X_).nnz == 0
    # The word lists differ from the char n-grams' (the analyzer is used).
    assert model.vectorizer_.ja_vocabulary_ != fit_mixed().vectorizer_.ja_vocabulary_
    # On a machine without the tokenizer: the file and the field, and the fix.
    monkeypatch.setattr(tokenize_ja, "available", lambda backend: False)
    with pytest.raises(ArtifactError) as raised:
        Recommender.load(path)
    message = str(raised.value)
    assert str(path) in message and "vectorizer_.params.ja_analyzer = 'fugashi'" in message
    assert "pip install 'recommender[ja]'" in message and "damaged" not in message
