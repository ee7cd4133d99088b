"""The one scoring rule: a candidate's score from its named parts.

Every place that ranks candidates asks a :class:`Scorer`: the mix filling a
list, the update deciding whether a list can be copied, evaluation's blend
and the tuning grid. A scorer names the parts it reads (each an array over
candidates, in [0, 1]) and returns one score per candidate; the caller
supplies those parts. Today's scorer is :class:`WeightedBlend`::

    score = w_relevance * relevance + w_trend * trend + w_freshness * freshness

A learned scorer (a ranker over more parts: click-through rate, age, ...)
takes its place through the same two members, :attr:`Scorer.parts` and
:meth:`Scorer.score`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from recommender.config import MixConfig

#: The parts the mix knows for every candidate: its cosine with the page
#: (clipped to [0, 1]), its trend and its freshness.
CANDIDATE_PARTS: tuple[str, ...] = ("relevance", "trend", "freshness")


class Scorer(Protocol):
    """Scores candidates from their named parts.

    ``parts``: the names of the arrays :meth:`score` reads (a subset of what
    its caller supplies, e.g. :data:`CANDIDATE_PARTS`). ``score`` returns an
    array of the parts' shape; higher ranks first. It must be deterministic
    and element-wise (a candidate's score depends on its own parts only), so
    that a block of pages and one page score alike.
    """

    @property
    def parts(self) -> tuple[str, ...]: ...

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class WeightedBlend:
    """The hand-set blend: a weighted sum of relevance, trend and freshness.

    Computed in the dtype of the parts and always in the same order (the
    mix's float32 scores are published, so a reordering would change them).
    """

    relevance: float = 0.45
    trend: float = 0.4
    freshness: float = 0.15

    parts: ClassVar[tuple[str, ...]] = CANDIDATE_PARTS

    @classmethod
    def from_config(cls, mix: MixConfig) -> WeightedBlend:
        """The blend of a config's ``[mix.weights]``."""
        weights = mix.weights
        return cls(weights.relevance, weights.trend, weights.freshness)

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        return (
            self.relevance * parts["relevance"]
            + self.trend * parts["trend"]
            + self.freshness * parts["freshness"]
        )


@dataclass(frozen=True)
class RelevanceOnly:
    """Relevance alone, for related-only lists: a candidate less relevant
    than ``floor`` may not be shown (-inf)."""

    floor: float = 0.0

    parts: ClassVar[tuple[str, ...]] = ("relevance",)

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        relevance = parts["relevance"]
        return np.where(relevance >= self.floor, relevance, -np.inf).astype(relevance.dtype)


def scorer_from_config(mix: MixConfig) -> Scorer:
    """The scorer a config's ``[mix]`` section describes."""
    return WeightedBlend.from_config(mix)


def check_parts(scorer: Scorer, available: tuple[str, ...] = CANDIDATE_PARTS) -> None:
    """Raise :class:`ValueError` when ``scorer`` reads a part not ``available``."""
    missing = [name for name in scorer.parts if name not in available]
    if missing:
        raise ValueError(
            f"the scorer reads part(s) {missing} that are not computed; available: "
            f"{list(available)}"
        )


__all__ = [
    "CANDIDATE_PARTS",
    "RelevanceOnly",
    "Scorer",
    "WeightedBlend",
    "check_parts",
    "scorer_from_config",
]
