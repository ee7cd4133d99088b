"""A blend learned from clicks: logistic regression over a candidate's parts.

The first piece of issue 16's learned blend (not yet used by the batch): from
logged (page, candidate) impressions with their click, it fits regularised
logistic regression on the parts the mix computes for every candidate
(relevance, trend, freshness) and scores candidates as the mix does, through
the :class:`~recommender.scoring.Scorer` seam.

**Position bias.** Readers click the first slots more, whatever is there,
and the lists put the best-scored candidates first: so clicks credit the
features that put an item high twice. The item's slot is a *training-only*
feature (one indicator per slot): the model learns the slot's effect apart,
and scoring leaves it out (every candidate is scored as if in the same
slot), so the other coefficients measure appeal rather than exposure.

**Explanations.** :meth:`LearnedBlend.contributions` gives each part's share
of a candidate's score (coefficient times part); they sum to the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: The parts a learned blend reads: those the mix computes for every candidate.
RANKER_PARTS: tuple[str, ...] = ("relevance", "trend", "freshness")
#: Slots past this one share the last slot's indicator in training.
MAX_SLOT = 12


@dataclass(frozen=True)
class LearnedBlend:
    """A fitted blend: ``score = sum(coef[part] * part)`` (the logit of a
    click without the intercept and the slot's effect, which are the same
    for every candidate of a slot and do not change an order)."""

    coef: Mapping[str, float]
    intercept: float = 0.0
    slot_effects: Sequence[float] = ()
    n_impressions: int = 0
    n_clicks: int = 0
    figures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.coef)

    def score(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        total = None
        for name, weight in self.coef.items():  # always in this order: same float sums
            term = np.asarray(parts[name]) * np.asarray(weight, dtype=np.asarray(parts[name]).dtype)
            total = term if total is None else total + term
        assert total is not None
        return total

    def contributions(self, parts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each part's contribution to the score (they sum to :meth:`score`)."""
        return {name: np.asarray(parts[name]) * weight for name, weight in self.coef.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": {k: float(v) for k, v in self.coef.items()},
            "intercept": float(self.intercept),
            "slot_effects": [float(v) for v in self.slot_effects],
            "n_impressions": int(self.n_impressions),
            "n_clicks": int(self.n_clicks),
            "figures": dict(self.figures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedBlend:
        return cls(
            coef={str(k): float(v) for k, v in dict(data["coef"]).items()},
            intercept=float(data.get("intercept", 0.0)),
            slot_effects=tuple(float(v) for v in data.get("slot_effects", ())),
            n_impressions=int(data.get("n_impressions", 0)),
            n_clicks=int(data.get("n_clicks", 0)),
            figures=dict(data.get("figures", {})),
        )


def fit_ranker(
    pairs: pd.DataFrame,
    *,
    parts: Sequence[str] = RANKER_PARTS,
    label: str = "label",
    position: str | None = "position",
    C: float = 1.0,
    min_clicks: int = 200,
) -> LearnedBlend | None:
    """Logistic regression of ``label`` (0/1) on ``parts`` of logged pairs,
    with the 1-based ``position`` as a training-only feature (None: not
    used); None with fewer than ``min_clicks`` clicks (too little to learn
    from: keep the hand-set blend). ``C``: inverse L2 strength (on the parts,
    which lie in [0, 1]). Deterministic (lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    y = pairs[label].to_numpy(dtype=np.int8)
    n_clicks = int(y.sum())
    if n_clicks < min_clicks or n_clicks == len(y):
        return None
    X = pairs[list(parts)].to_numpy(dtype=np.float64)
    slots = 0
    if position is not None:
        slot = np.clip(pairs[position].to_numpy(dtype=np.int64), 1, MAX_SLOT)
        slots = int(slot.max())
        # Slot 1 is the reference; one indicator for each later slot.
        X = np.hstack([X, (slot[:, None] == np.arange(2, slots + 1)[None, :]).astype(np.float64)])
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit(X, y)
    coef = model.coef_[0]
    return LearnedBlend(
        coef={name: float(coef[i]) for i, name in enumerate(parts)},
        intercept=float(model.intercept_[0]),
        slot_effects=(0.0, *(float(c) for c in coef[len(parts) :])) if slots else (),
        n_impressions=len(y),
        n_clicks=n_clicks,
    )


__all__ = ["MAX_SLOT", "RANKER_PARTS", "LearnedBlend", "fit_ranker"]
