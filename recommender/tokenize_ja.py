"""Japanese word analyzers for :class:`recommender.features.ArticleVectorizer`.

Each analyzer is a small picklable object (it holds only its settings); the
tokeniser itself (fugashi + unidic-lite, or SudachiPy + sudachidict-core) is
built lazily once per process and kept at module level, so a fitted model
file never contains a tagger. Tokens are the surface forms, NFKC-normalised
and lowercased, with punctuation and whitespace-only tokens dropped, so the
vocabulary is deterministic for a given dictionary version.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_TAGGERS: dict[str, Any] = {}

BACKENDS = ("fugashi", "sudachi")


def _tagger(backend: str) -> Any:
    if backend not in _TAGGERS:
        try:
            if backend == "fugashi":
                import fugashi

                _TAGGERS[backend] = fugashi.Tagger()
            elif backend == "sudachi":
                from sudachipy import Dictionary, SplitMode

                _TAGGERS[backend] = (Dictionary(dict="core").tokenizer(), SplitMode.C)
            else:
                raise ValueError(f"unknown Japanese analyzer {backend!r}; use one of {BACKENDS}")
        except ImportError as error:
            raise ImportError(
                f"the Japanese word analyzer {backend!r} needs the 'ja' extra "
                "(pip install 'recommender[ja]'); or set features.ja_analyzer = \"char\""
            ) from error
    return _TAGGERS[backend]


def available(backend: str) -> bool:
    """True when ``backend``'s tokeniser and dictionary can be loaded."""
    try:
        _tagger(backend)
    except ImportError:
        return False
    return True


def _keep(token: str) -> bool:
    return bool(token.strip()) and not all(unicodedata.category(ch)[0] in "PZS" for ch in token)


class JapaneseWordAnalyzer:
    """Callable analyzer: text -> list of word tokens (see the module docstring)."""

    def __init__(self, backend: str = "fugashi") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown Japanese analyzer {backend!r}; use one of {BACKENDS}")
        self.backend = backend

    def __repr__(self) -> str:
        return f"JapaneseWordAnalyzer({self.backend!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JapaneseWordAnalyzer) and other.backend == self.backend

    def __hash__(self) -> int:
        return hash(("JapaneseWordAnalyzer", self.backend))

    def __call__(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        tagger = _tagger(self.backend)
        if self.backend == "fugashi":
            tokens = [word.surface for word in tagger(text)]
        else:
            tok, mode = tagger
            tokens = [m.surface() for m in tok.tokenize(text, mode)]
        return [t for t in tokens if _keep(t)]
