"""The pieces an incremental update is built from, against plain references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.columns import rows_of, take_rows
from recommender.model.rows import assemble_rows, same_content
from recommender.similarity import Neighbors, top_k_per_row


def ranked(indices: np.ndarray, scores: np.ndarray, width: int) -> Neighbors:
    """Each row's ``width`` best (score descending, then index), -1 pads: the
    plain reference, one Python sort per row."""
    out_idx = np.full((len(indices), width), -1, dtype=np.int32)
    out_val = np.zeros((len(indices), width), dtype=np.float32)
    for row, (idx, val) in enumerate(zip(indices, scores, strict=True)):
        best = sorted((-v, i) for i, v in zip(idx, val, strict=True) if i >= 0)[:width]
        out_idx[row, : len(best)] = [i for _, i in best]
        out_val[row, : len(best)] = [-v for v, _ in best]
    return Neighbors(out_idx, out_val)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 8),
)
def test_a_floor_keeps_exactly_the_top_entries_that_reach_it(seed, rows, cols, k) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.choice(np.float32([0, 0.1, 0.3, 0.6, 0.9]), size=(rows, cols))
    floor = rng.choice(np.float32([0, 0.1, 0.3, 0.6, 1.0]), size=rows)
    idx, val = top_k_per_row(scores, k, floor=floor)
    passing = np.where(scores >= floor[:, None], scores, 0)
    columns = np.broadcast_to(np.arange(cols), scores.shape)
    expected = ranked(np.where(passing > 0, columns, -1), passing, min(k, cols))
    np.testing.assert_array_equal(idx[:, : min(k, cols)], expected.indices)
    np.testing.assert_array_equal(val[:, : min(k, cols)], expected.scores)


texts = st.one_of(st.none(), st.sampled_from(["", "a", "b", "ab", "été"]))


@st.composite
def two_corpora(draw):
    """An old and a new frame of articles, the new one with rows dropped,
    added, reordered and edited (missing values included)."""
    n = draw(st.integers(0, 12))
    columns = ("site", "title", "body", "category_key")
    old = pd.DataFrame(
        {c: pd.array([draw(texts) for _ in range(n)], dtype="string") for c in columns}
    )
    old["article_id"] = [f"a{i}" for i in range(n)]
    keep = [i for i in range(n) if draw(st.booleans())]
    if draw(st.booleans()):
        keep = draw(st.permutations(keep))
    new = old.iloc[keep].reset_index(drop=True)
    for _ in range(draw(st.integers(0, 3))):
        if len(new):
            row, column = draw(st.integers(0, len(new) - 1)), draw(st.sampled_from(columns))
            new.loc[row, column] = draw(texts)
    added = draw(st.integers(0, 3))
    extra = pd.DataFrame({c: pd.array(["x"] * added, dtype="string") for c in columns})
    extra["article_id"] = [f"new{i}" for i in range(added)]
    return old, pd.concat([new, extra], ignore_index=True)


@settings(max_examples=200, deadline=None)
@given(two_corpora())
def test_same_content_compares_every_content_field_with_missing_equal_to_missing(case) -> None:
    old, new = case
    previous = rows_of(new["article_id"], old["article_id"])
    old_rows = {a: i for i, a in enumerate(old["article_id"])}
    np.testing.assert_array_equal(previous, [old_rows.get(a, -1) for a in new["article_id"]])

    def value(frame, row, column):
        v = frame[column].iloc[row]
        return None if pd.isna(v) else v

    expected = [
        p >= 0
        and all(
            value(old, p, c) == value(new, i, c) for c in ("site", "title", "body", "category_key")
        )
        for i, p in enumerate(previous)
    ]
    np.testing.assert_array_equal(same_content(old, previous, new), expected)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 15), st.integers(0, 15))
def test_assembled_rows_are_the_kept_old_rows_and_the_transformed_ones(seed, n_old, n) -> None:
    rng = np.random.default_rng(seed)
    old = sp.random(n_old, 9, density=0.4, format="csr", dtype=np.float32, random_state=rng)
    previous = np.where(rng.random(n) < 0.7, rng.integers(0, n_old, n), -1)
    same = (previous >= 0) & (rng.random(n) < 0.8)
    fresh = sp.random(n, 9, density=0.4, format="csr", dtype=np.float32, random_state=rng)

    built = assemble_rows(old, previous, same, lambda rows: fresh[rows])

    expected = np.where(same[:, None], old.toarray()[np.maximum(previous, 0)], fresh.toarray())
    assert built.shape == (n, 9)
    np.testing.assert_array_equal(built.toarray(), expected)
    built.check_format(full_check=True)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=8))
def test_taking_rows_equals_iloc(rows) -> None:
    frame = pd.DataFrame(
        {
            "body": pd.array(["a", None, "é", "", "b", "c"], dtype="string[pyarrow]"),
            "title": pd.array(["t", "u", None, "v", "w", "x"], dtype="string"),
            "published_at": pd.date_range("2021-01-01", periods=6, tz="UTC"),
            "category_key": np.array(["x", None, "y", "z", "x", "y"], dtype=object),
            "views": np.arange(6),
        }
    )
    # Two Arrow chunks, as after a concat.
    frame = pd.concat([frame.iloc[:4], frame.iloc[4:]], ignore_index=True)
    taken = take_rows(frame, np.asarray(rows, dtype=np.int64))
    pd.testing.assert_frame_equal(taken, frame.iloc[rows].reset_index(drop=True))
