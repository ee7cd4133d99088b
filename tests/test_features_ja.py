"""Japanese word analyzers (recommender.tokenize_ja)."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from recommender.features import ArticleVectorizer
from recommender.tokenize_ja import BACKENDS, JapaneseWordAnalyzer, available


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
