"""The learned blend (recommender.ranker): known coefficients recovered,
position bias taken apart, and the Scorer contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.ranker import LearnedBlend, fit_ranker
from recommender.scoring import check_parts

TRUE = {"relevance": 2.0, "trend": 1.0, "freshness": 0.5}


def logged_pairs(n_blocks: int = 8000, seed: int = 0, slot_effect: float = 0.6) -> pd.DataFrame:
    """Blocks of 6 candidates listed by a noisy estimate of relevance (so the
    relevant ones sit high), clicked with the logit
    -3 + 2 relevance + trend + 0.5 freshness - slot_effect * log(position)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_blocks):
        parts = rng.random((6, 3))
        order = np.argsort(-(parts[:, 0] + rng.normal(0, 0.2, 6)))
        for position, i in enumerate(order, start=1):
            r, t, f = parts[i]
            logit = -3 + 2 * r + t + 0.5 * f - slot_effect * np.log(position)
            rows.append((r, t, f, position, int(rng.random() < 1 / (1 + np.exp(-logit)))))
    return pd.DataFrame(rows, columns=["relevance", "trend", "freshness", "position", "label"])


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return logged_pairs()


def test_the_fit_recovers_known_coefficients_with_the_slot_taken_apart(pairs) -> None:
    blend = fit_ranker(pairs, C=100.0)
    assert blend is not None
    for name, value in TRUE.items():
        assert blend.coef[name] == pytest.approx(value, abs=0.25), name
    # The slots' effects: log(position) below the first slot.
    expected = -0.6 * np.log(np.arange(1, 7))
    np.testing.assert_allclose(blend.slot_effects, expected, atol=0.2)


def test_without_the_slot_the_relevance_is_overcredited(pairs) -> None:
    # Relevant items sit high, and high slots are clicked more: relevance gets their credit.
    naive = fit_ranker(pairs, position=None, C=100.0)
    aware = fit_ranker(pairs, C=100.0)
    assert naive is not None and aware is not None
    assert naive.coef["relevance"] - TRUE["relevance"] > 0.4
    assert abs(aware.coef["relevance"] - TRUE["relevance"]) < 0.25


def test_too_few_clicks_keep_the_hand_set_blend() -> None:
    few = logged_pairs(n_blocks=50, seed=1)
    assert fit_ranker(few, min_clicks=10_000) is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(0, 1, width=32)] * 3), min_size=1, max_size=30),
    st.dictionaries(st.sampled_from(list(TRUE)), st.floats(-5, 5), min_size=3),
)
def test_a_learned_blend_is_a_scorer_whose_contributions_sum_to_its_score(rows, coef) -> None:
    blend = LearnedBlend(coef=coef)
    check_parts(blend)
    arrays = {name: np.array([r[i] for r in rows], dtype=np.float32) for i, name in enumerate(TRUE)}
    score = blend.score(arrays)
    assert score.dtype == np.float32 and score.shape == (len(rows),)
    total = sum(blend.contributions(arrays).values())
    np.testing.assert_allclose(score, total, rtol=1e-5, atol=1e-5)
    # Element-wise: one candidate scores the same alone as in a block.
    alone = blend.score({name: values[:1] for name, values in arrays.items()})
    assert alone[0] == score[0]
    assert LearnedBlend.from_dict(blend.to_dict()) == blend
