"""Off-policy CTR estimates (IPS, SNIPS) on logs whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.evaluate.offpolicy import off_policy_ctr


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    e = np.exp((x - x.max(axis=1, keepdims=True)) / temperature)
    return e / e.sum(axis=1, keepdims=True)


def simulated(seed: int, n: int = 4000, k: int = 6) -> tuple[pd.DataFrame, float, float]:
    """A one-slot log: each page view shows one of ``k`` candidates drawn from
    a soft, exploring policy; the target policy is a sharper one that favours
    a noisy estimate of appeal. Returns the log, the target policy's true CTR
    (exact expectation) and the logging policy's."""
    rng = np.random.default_rng(seed)
    ctr = rng.beta(2, 30, size=(n, k))
    estimate = np.log(ctr) + rng.normal(0, 0.3, size=(n, k))
    logging = softmax(estimate, 2.0)
    target = softmax(estimate, 0.3)
    chosen = (logging.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    rows = np.arange(n)
    clicks = (rng.random(n) < ctr[rows, chosen]).astype(int)
    log = pd.DataFrame(
        {
            "impression_id": rows,
            "click": clicks,
            "propensity": logging[rows, chosen],
            "target": target[rows, chosen],
        }
    )
    return log, float((target * ctr).sum(axis=1).mean()), float((logging * ctr).sum(axis=1).mean())


def test_ips_recovers_a_known_policys_ctr_within_its_interval() -> None:
    covered = {"ips": 0, "snips": 0}
    seeds = range(20)
    for seed in seeds:
        log, truth, logged = simulated(seed)
        found = off_policy_ctr(log, n_boot=400, seed=seed)
        for name, estimate in found.items():
            covered[name] += estimate.low <= truth <= estimate.high
        assert truth > logged * 1.15  # the target policy is clearly better: not a trivial check
    # A 95% interval covers the truth in about 19 of 20 logs (at least 16 here).
    assert covered["ips"] >= 16 and covered["snips"] >= 16


def test_the_logging_policy_is_estimated_by_its_own_mean() -> None:
    log, _, _ = simulated(1)
    same = log.assign(target=log["propensity"])
    found = off_policy_ctr(same, n_boot=100)
    assert found["ips"].estimate == pytest.approx(log["click"].mean())
    assert found["snips"].estimate == pytest.approx(log["click"].mean())
    assert found["ips"].effective_rows == pytest.approx(len(log))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.floats(0.01, 1.0), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 5),
)
def test_snips_is_a_rate_and_blocks_do_not_change_the_estimates(rows, n_blocks) -> None:
    log = pd.DataFrame(rows, columns=["click", "propensity", "target"])
    log["impression_id"] = np.arange(len(log)) % (n_blocks + 1)
    by_block = off_policy_ctr(log, n_boot=50)
    alone = off_policy_ctr(log, block=None, n_boot=50)
    for name in ("ips", "snips"):
        assert by_block[name].estimate == pytest.approx(alone[name].estimate, nan_ok=True)
    if log["target"].sum() > 0:
        assert 0.0 <= by_block["snips"].estimate <= 1.0
        assert by_block["snips"].low <= by_block["snips"].high


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("propensity", 0.0, "propensity"), ("target", 1.5, "target"), ("click", 2, "click")],
)
def test_bad_rows_are_named(column: str, value: float, message: str) -> None:
    log, _, _ = simulated(2, n=10)
    log.loc[3, column] = value
    with pytest.raises(ValueError, match=f"row 3: {message}"):
        off_policy_ctr(log)
