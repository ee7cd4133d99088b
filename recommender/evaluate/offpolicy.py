"""Off-policy estimates: what a new setting's click-through rate would be,
judged from impressions a randomised policy logged.

Each logged impression row shows an item with the probability
``propensity`` under the policy that was live (the logging policy, which
the widget records with every impression when it randomises, e.g. the
exploration slots); ``target`` is the probability with which the policy
being judged would have shown the same item in the same place. With weights
``w = target / propensity``:

- **IPS** (inverse propensity scoring): ``mean(click * w)``. Unbiased when
  every item the target policy could show had a propensity above 0.
- **SNIPS** (self-normalised IPS): ``sum(click * w) / sum(w)``. A little
  biased, much less variable when weights are large; 0 <= SNIPS <= 1.

Intervals are percentile bootstraps over *blocks* (all rows of one logged
impression resampled together, since a page view's rows are not
independent). The effective sample size ``(sum w) ** 2 / sum(w ** 2)`` says
how many logged rows the estimate is worth: far below the row count, the
target policy strays from what was logged and the estimate is weak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class OffPolicyEstimate:
    """An estimated CTR with its 95% bootstrap interval."""

    method: str
    estimate: float
    low: float
    high: float
    rows: int
    effective_rows: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "rows": self.rows,
            "effective_rows": self.effective_rows,
        }


def _check(clicks: np.ndarray, propensity: np.ndarray, target: np.ndarray) -> None:
    if not (len(clicks) == len(propensity) == len(target)):
        raise ValueError("clicks, propensity and target differ in length")
    if len(clicks) == 0:
        raise ValueError("no logged rows to estimate from")
    bad = np.flatnonzero(~((propensity > 0) & (propensity <= 1)))
    if len(bad):
        raise ValueError(f"row {bad[0]}: propensity must be in (0, 1], got {propensity[bad[0]]!r}")
    bad = np.flatnonzero(~((target >= 0) & (target <= 1)))
    if len(bad):
        raise ValueError(f"row {bad[0]}: target must be in [0, 1], got {target[bad[0]]!r}")
    bad = np.flatnonzero(~np.isin(clicks, (0.0, 1.0)))
    if len(bad):
        raise ValueError(f"row {bad[0]}: click must be 0 or 1, got {clicks[bad[0]]!r}")


def off_policy_ctr(
    logged: pd.DataFrame,
    *,
    click: str = "click",
    propensity: str = "propensity",
    target: str = "target",
    block: str | None = "impression_id",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, OffPolicyEstimate]:
    """IPS and SNIPS estimates of the target policy's CTR per shown row.

    ``logged``: one row per logged impression row, with its ``click`` (0/1),
    the logging ``propensity`` and the ``target`` policy's probability of
    the same row; ``block``: the column grouping rows resampled together
    (None: each row alone). Deterministic for a given ``seed``.
    """
    r = logged[click].to_numpy(dtype=np.float64)
    p = logged[propensity].to_numpy(dtype=np.float64)
    t = logged[target].to_numpy(dtype=np.float64)
    _check(r, p, t)
    w = t / p
    whole = block is None
    codes = np.arange(len(logged)) if whole else pd.factorize(logged[block], sort=True)[0]
    n_blocks = int(codes.max()) + 1
    # Per block sums, so that a bootstrap draw of blocks is a weighted sum.
    rw = np.bincount(codes, weights=r * w, minlength=n_blocks)
    ws = np.bincount(codes, weights=w, minlength=n_blocks)
    ns = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        ips_draws = (counts @ rw) / (counts @ ns)
        snips_draws = (counts @ rw) / (counts @ ws)
    tail = (1.0 - confidence) / 2.0
    effective = float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0

    def estimate(name: str, value: float, draws: np.ndarray) -> OffPolicyEstimate:
        finite = draws[np.isfinite(draws)]
        low, high = np.quantile(finite, [tail, 1 - tail]) if len(finite) else (np.nan, np.nan)
        return OffPolicyEstimate(name, float(value), float(low), float(high), len(r), effective)

    total_w = float(w.sum())
    return {
        "ips": estimate("ips", float((r * w).mean()), ips_draws),
        "snips": estimate(
            "snips", float((r * w).sum() / total_w) if total_w > 0 else float("nan"), snips_draws
        ),
    }


__all__ = ["OffPolicyEstimate", "off_policy_ctr"]
