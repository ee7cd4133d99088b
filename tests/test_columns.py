"""recommender.columns: Arrow views, id lookups and row takes, against pandas and plain Python."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.columns import as_arrow, rows_of, take_rows

STRING_DTYPES = ["str", "string[python]", "string[pyarrow]", object]


def chunked_series(chunks: list[list[str | None]], dtype: str = "string[pyarrow]") -> pd.Series:
    """An Arrow-backed string column laid out in exactly these chunks (empty ones included)."""
    array = pa.chunked_array(chunks, type=pa.large_string())
    return pd.Series(pd.array(array, dtype=dtype))


# -- as_arrow ---------------------------------------------------------------------------------


def test_arrow_strings_are_handed_over_without_a_copy() -> None:
    """An Arrow-backed string column comes back as its own chunks: same
    layout, same data buffers (no copy)."""
    source = pa.chunked_array([["a", "bb"], [], ["東京"]], type=pa.large_string())
    column = pd.Series(pd.array(source, dtype="string[pyarrow]"))
    got = as_arrow(column)
    assert isinstance(got, pa.ChunkedArray)
    assert [len(chunk) for chunk in got.chunks] == [2, 0, 1]
    assert got.chunk(0).buffers()[2].address == source.chunk(0).buffers()[2].address
    assert got.to_pylist() == ["a", "bb", "東京"]


@pytest.mark.parametrize("dtype", STRING_DTYPES)
def test_missing_strings_become_nulls(dtype: Any) -> None:
    """None/NA/NaN in any string column become Arrow nulls; the other
    values, unicode included, are kept as they are."""
    column = pd.Series(["a", None, "été", "😀", ""], dtype=dtype)
    got = as_arrow(column)
    assert isinstance(got, pa.ChunkedArray)
    assert pa.types.is_string(got.type) or pa.types.is_large_string(got.type)
    assert got.to_pylist() == ["a", None, "été", "😀", ""]


@pytest.mark.parametrize(
    "column", [pd.Series([], dtype=object), pd.Series([None, None], dtype=object)]
)
def test_an_empty_or_all_missing_object_column_is_typed_as_strings(column: pd.Series) -> None:
    """A column with no value to infer a type from is a string column
    (never Arrow's null type, which string ids could not be compared with)."""
    got = as_arrow(column)
    assert got.type == pa.string()
    assert got.to_pylist() == [None] * len(column)


def test_numbers_keep_their_type_and_nan_is_null() -> None:
    """Numeric columns keep an Arrow numeric type; a float NaN is a null."""
    assert as_arrow(pd.Series([3, 1], dtype="int64")).type == pa.int64()
    floats = as_arrow(pd.Series([1.5, np.nan]))
    assert floats.type == pa.float64()
    assert floats.to_pylist() == [1.5, None]
    assert as_arrow(pd.Series([1, None], dtype="Int64")).to_pylist() == [1, None]


# -- rows_of ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ids_dtype", STRING_DTYPES)
@pytest.mark.parametrize("among_dtype", STRING_DTYPES)
def test_rows_of_finds_each_id_across_string_dtypes(ids_dtype: Any, among_dtype: Any) -> None:
    """Each id's row in ``among``, -1 for an id not there or missing,
    whichever pandas string dtypes the two columns have."""
    among = pd.Series(["a1", "b2", "é3"], dtype=among_dtype)
    ids = pd.Series(["é3", "zz", None, "a1", "a1"], dtype=ids_dtype)
    got = rows_of(ids, among)
    assert got.dtype == np.int64
    assert got.tolist() == [2, -1, -1, 0, 0]


def test_rows_of_empty_inputs() -> None:
    """No ids: an empty int64 array; nothing to look in: every id is -1."""
    empty = rows_of(pd.Series([], dtype="str"), pd.Series(["a"], dtype="str"))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    assert rows_of(pd.Series(["a", "b"], dtype="str"), pd.Series([], dtype="str")).tolist() == [
        -1,
        -1,
    ]
    assert rows_of(pd.Series(["a"], dtype=object), pd.Series([], dtype=object)).tolist() == [-1]
    assert rows_of(pd.Series([None], dtype=object), pd.Series(["a"], dtype="str")).tolist() == [-1]


def test_rows_of_compares_unicode_exactly() -> None:
    """Ids match code point for code point: the composed and decomposed
    forms of "é" are two different ids."""
    among = pd.Series(["caf\u00e9", "cafe\u0301", "東京", "🍜"], dtype="str")
    ids = pd.Series(["cafe\u0301", "🍜", "caf\u00e9", "東京", "cafe"], dtype="str")
    assert rows_of(ids, among).tolist() == [1, 3, 0, 2, -1]


def test_rows_of_looks_through_every_chunk() -> None:
    """Ids in any chunk of a chunked column (as after a concat) are found
    at their row in the whole column."""
    among = chunked_series([["a", "b"], [], ["c"], ["d", "e"]])
    ids = chunked_series([["e"], ["c", "a"], [], ["x"]])
    assert rows_of(ids, among).tolist() == [4, 2, 0, -1]


def test_rows_of_integer_ids() -> None:
    """Integer ids are looked up as integers."""
    assert rows_of(pd.Series([30, 5, 10]), pd.Series([10, 20, 30])).tolist() == [2, -1, 0]


ID_TEXT = st.sampled_from(["a", "b", "ab", "é", "e\u0301", "東", "😀", ""])


@settings(max_examples=60, deadline=None)
@given(
    among=st.lists(ID_TEXT, unique=True, max_size=8),
    ids=st.lists(st.one_of(st.none(), ID_TEXT), max_size=12),
    dtypes=st.tuples(st.sampled_from(STRING_DTYPES), st.sampled_from(STRING_DTYPES)),
)
def test_rows_of_equals_a_dict_lookup(
    among: list[str], ids: list[str | None], dtypes: tuple[Any, Any]
) -> None:
    """For unique ``among`` ids, rows_of is a plain dict lookup (missing
    ids -> -1)."""
    position = {value: row for row, value in enumerate(among)}
    expected = [-1 if value is None else position.get(value, -1) for value in ids]
    got = rows_of(pd.Series(ids, dtype=dtypes[0]), pd.Series(among, dtype=dtypes[1]))
    assert got.tolist() == expected


# -- take_rows --------------------------------------------------------------------------------


def mixed_frame(cuts: list[int]) -> pd.DataFrame:
    """Six rows of the column kinds an articles frame has, missing values
    included, with the Arrow columns split in chunks at ``cuts``."""
    frame = pd.DataFrame(
        {
            "article_id": pd.array(["a0", "a1", "a2", "a3", "a4", "a5"], dtype="str"),
            "title": pd.array(["t", None, "été", "", "東京", "😀"], dtype="string[pyarrow]"),
            "body": pd.array(["x", "y", None, "z", "w", "v"], dtype="string[python]"),
            "site": pd.Categorical(["alpha", "beta", None, "alpha", "beta", "alpha"]),
            "published_at": pd.date_range("2021-01-01", periods=6, tz="UTC"),
            "views": np.arange(6, dtype=np.int64),
            "clicks": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "score": [0.5, np.nan, 1.0, 0.0, 0.25, 2.0],
            "raw": pd.array([1, 2, None, 4, 5, 6], dtype="int64[pyarrow]"),
        }
    )
    bounds = [0, *sorted(cuts), len(frame)]
    return pd.concat([frame.iloc[a:b] for a, b in itertools.pairwise(bounds)], ignore_index=True)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.integers(0, 5), max_size=10),
    cuts=st.lists(st.integers(0, 6), max_size=3),
)
def test_take_rows_equals_iloc(rows: list[int], cuts: list[int]) -> None:
    """take_rows is ``frame.iloc[rows].reset_index(drop=True)`` for any
    rows (repeated, out of order, none) and any chunk layout of the Arrow
    columns (empty chunks included): values, missing values and dtypes."""
    frame = mixed_frame(cuts)
    taken = take_rows(frame, np.asarray(rows, dtype=np.int64))
    pd.testing.assert_frame_equal(taken, frame.iloc[rows].reset_index(drop=True))


def test_take_rows_across_chunks_keeps_the_order_asked() -> None:
    """Rows drawn alternately from different chunks come out in the order
    asked, not grouped by chunk."""
    frame = pd.DataFrame({"id": chunked_series([["a", "b"], [], ["c"], ["d", "e"]])})
    taken = take_rows(frame, np.array([4, 0, 2, 1, 4, 3]))
    assert taken["id"].tolist() == ["e", "a", "c", "b", "e", "d"]
    assert taken["id"].dtype == frame["id"].dtype


def test_take_rows_resets_the_index_and_keeps_column_order() -> None:
    """The result has a fresh 0..n-1 index and the frame's columns in order."""
    frame = pd.DataFrame(
        {"b": pd.array(["x", "y", "z"], dtype="str"), "a": [1, 2, 3]}, index=[10, 20, 30]
    )
    taken = take_rows(frame, np.array([2, 0]))
    assert list(taken.columns) == ["b", "a"]
    pd.testing.assert_index_equal(taken.index, pd.RangeIndex(2))
    assert taken["b"].tolist() == ["z", "x"] and taken["a"].tolist() == [3, 1]


def test_take_rows_of_an_empty_frame() -> None:
    """No rows from a frame with no rows: an empty frame with the same
    columns and dtypes."""
    frame = mixed_frame([]).iloc[:0]
    taken = take_rows(frame, np.array([], dtype=np.int64))
    pd.testing.assert_frame_equal(taken, frame.reset_index(drop=True))


def test_take_rows_accepts_int32_rows() -> None:
    """Row numbers in an int32 array (as neighbour indices are) take the
    same rows as int64 ones."""
    frame = mixed_frame([2, 4])
    rows = np.array([5, 1, 3], dtype=np.int32)
    pd.testing.assert_frame_equal(
        take_rows(frame, rows), frame.iloc[rows.astype(np.int64)].reset_index(drop=True)
    )


def test_take_rows_past_the_end_raises() -> None:
    """A row past the end is an IndexError, as with iloc."""
    frame = mixed_frame([3])
    with pytest.raises(IndexError):
        frame.iloc[[6]]
    with pytest.raises(IndexError):
        take_rows(frame, np.array([6]))


def test_take_rows_keeps_an_object_column_of_strings_as_object() -> None:
    """An object-dtype column of strings stays object (None stays None), as
    ``frame.iloc[rows]`` keeps it."""
    frame = pd.DataFrame({"key": pd.Series(["a", None, "é"], dtype=object)})
    taken = take_rows(frame, np.array([1, 2]))
    pd.testing.assert_frame_equal(taken, frame.iloc[[1, 2]].reset_index(drop=True))


def test_take_rows_counts_negative_rows_from_the_end() -> None:
    """A negative row counts from the end, as with ``frame.iloc``."""
    frame = mixed_frame([2])
    pd.testing.assert_frame_equal(
        take_rows(frame, np.array([-1, 0])), frame.iloc[[-1, 0]].reset_index(drop=True)
    )
