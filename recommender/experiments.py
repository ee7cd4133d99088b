"""A/B tests per placement: deterministic assignment and the report.

**Assignment.** A page view belongs to a variant by a hash of the
experiment's name and the page view's session (the widget's random id per
page view, or the salted hash the service stores): no cookie, no storage,
no personal data. The same session always gets the same variant of one
experiment, and assignments of different experiments are independent. Each
variant's share of page views is its configured ``share``.

**Report.** From the impressions and clicks the widget logged with their
``variant``, per variant: page views, impressions, clicks and CTR (clicks
per impression) with a 95% interval, and the difference to the control with
its interval. Rows of one page view are not independent (they share a
reader), so the intervals are cluster-robust: the CTR is a ratio of sums
over page views, its variance by the delta method over page views
(``var(c - R i) / (n mean(i) ** 2)``), and a difference's variance the sum
of both variants'. The report warns:

- when a variant has fewer impressions than the experiment's
  ``planned_impressions``: the planned size is not reached, so this is a
  *peek*, and acting on a difference seen before it inflates false
  positives (each look is another chance for noise to cross the line);
- on a **sample-ratio mismatch**: page views split across variants unlike
  the configured shares (chi-square test, p < 0.001), which means the
  assignment or the logging is broken and no difference can be trusted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report needs them; assigning a variant (the service) does not
    import numpy as np
    import pandas as pd

#: z of a two-sided 95% interval.
Z95 = 1.959963984540054
#: A sample-ratio mismatch is reported below this chi-square p-value.
SRM_P = 0.001


@dataclass(frozen=True)
class Experiment:
    """One experiment on one placement.

    ``variants``: name -> share of page views (positive; normalised), the
    first one the control unless ``control`` names another.
    ``planned_impressions``: impressions per variant the test was sized for.
    """

    name: str
    placement: str
    variants: Mapping[str, float]
    planned_impressions: int = 10_000
    control: str | None = None

    def __post_init__(self) -> None:
        if len(self.variants) < 2:
            raise ValueError(f"experiment {self.name!r}: needs at least 2 variants")
        bad = [v for v, share in self.variants.items() if not share > 0]
        if bad:
            raise ValueError(f"experiment {self.name!r}: variant {bad[0]!r} needs a share > 0")
        if self.control is not None and self.control not in self.variants:
            raise ValueError(
                f"experiment {self.name!r}: control {self.control!r} is not one of its variants"
            )
        if self.planned_impressions < 1:
            raise ValueError(f"experiment {self.name!r}: planned_impressions must be >= 1")

    @property
    def control_variant(self) -> str:
        return self.control if self.control is not None else next(iter(self.variants))

    def shares(self) -> dict[str, float]:
        total = sum(self.variants.values())
        return {name: share / total for name, share in self.variants.items()}

    def assign(self, session: str) -> str:
        """The variant of the page view ``session`` (deterministic)."""
        digest = hashlib.sha256(f"{self.name}\x1f{session}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        edge = 0.0
        shares = self.shares()
        for name, share in shares.items():
            edge += share
            if u < edge:
                return name
        return next(reversed(shares))  # u within rounding of 1.0


@dataclass(frozen=True)
class VariantFigures:
    variant: str
    page_views: int
    impressions: int
    clicks: int
    ctr: float
    low: float
    high: float
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None


@dataclass
class ExperimentReport:
    experiment: Experiment
    variants: list[VariantFigures]
    warnings: list[str] = field(default_factory=list)
    srm_p: float = 1.0

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([vars(v) for v in self.variants])

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.name,
            "placement": self.experiment.placement,
            "control": self.experiment.control_variant,
            "planned_impressions": self.experiment.planned_impressions,
            "srm_p": self.srm_p,
            "warnings": list(self.warnings),
            "variants": [vars(v) for v in self.variants],
        }


def _ratio(clicks: np.ndarray, impressions: np.ndarray) -> tuple[float, float]:
    """Clicks per impression over page views, and the delta-method variance."""
    n = len(impressions)
    total = impressions.sum()
    if n == 0 or total == 0:
        return float("nan"), float("nan")
    r = clicks.sum() / total
    if n < 2:
        return float(r), float("nan")
    residual = clicks - r * impressions
    variance = residual.var(ddof=1) / (n * impressions.mean() ** 2)
    return float(r), float(variance)


def experiment_report(events: pd.DataFrame, experiment: Experiment) -> ExperimentReport:
    """The report of ``experiment`` from an event frame (``kind``,
    ``placement``, ``variant``, ``session``); see the module docs."""
    import numpy as np
    import pandas as pd

    missing = [c for c in ("kind", "placement", "variant", "session") if c not in events]
    if missing:
        raise ValueError(f"the events carry no {missing[0]!r} column: no variant was logged")
    mine = events[
        (events["placement"].astype("string") == experiment.placement).fillna(False).to_numpy()
        & events["variant"].notna().to_numpy()
    ]
    kinds = mine["kind"].astype("string")
    warnings: list[str] = []
    unknown = sorted(set(mine["variant"].astype(str)) - set(experiment.variants))
    if unknown:
        warnings.append(f"events of unknown variant(s) {unknown} are left out")
    figures = {}
    per_view = {}
    for variant in experiment.variants:
        rows = mine[(mine["variant"].astype(str) == variant).to_numpy()]
        kind = kinds[rows.index]
        session = rows["session"].astype("string").fillna("")
        views = pd.DataFrame(
            {
                "session": session.to_numpy(),
                "impression": (kind == "impression").to_numpy().astype(np.int64),
                "click": (kind == "click").to_numpy().astype(np.int64),
            }
        )
        grouped = views.groupby("session", sort=True)[["impression", "click"]].sum()
        grouped = grouped[grouped["impression"] > 0]  # a click without its impression is dropped
        i = grouped["impression"].to_numpy(dtype=np.float64)
        c = np.minimum(grouped["click"].to_numpy(dtype=np.float64), i)
        per_view[variant] = (c, i)
        ctr, var = _ratio(c, i)
        half = Z95 * math.sqrt(var) if var == var else float("nan")
        figures[variant] = VariantFigures(
            variant, len(i), int(i.sum()), int(c.sum()), ctr, ctr - half, ctr + half
        )
    control = experiment.control_variant
    c_ctr, c_var = _ratio(*per_view[control])
    out = []
    for variant, fig in figures.items():
        if variant != control:
            ctr, var = _ratio(*per_view[variant])
            half = Z95 * math.sqrt(var + c_var) if (var + c_var) == (var + c_var) else float("nan")
            fig = VariantFigures(
                **{
                    **vars(fig),
                    "diff": ctr - c_ctr,
                    "diff_low": ctr - c_ctr - half,
                    "diff_high": ctr - c_ctr + half,
                }
            )
        out.append(fig)
        if fig.impressions < experiment.planned_impressions:
            warnings.append(
                f"{variant}: {fig.impressions:,} of the {experiment.planned_impressions:,} planned "
                "impressions: the planned size is not reached, so this is a peek; a difference "
                "seen now is not a result (each early look is another chance for noise)"
            )
    from scipy import stats

    counts = np.array([fig.page_views for fig in out], dtype=np.float64)
    srm_p = 1.0
    if counts.sum() > 0:
        expected = np.array([experiment.shares()[f.variant] for f in out]) * counts.sum()
        srm_p = float(stats.chisquare(counts, expected).pvalue)
        if srm_p < SRM_P:
            split = {f.variant: f.page_views for f in out}
            warnings.append(
                f"sample-ratio mismatch: page views {split} "
                f"differ from the configured shares (chi-square p = {srm_p:.2g}); the assignment "
                "or the logging is broken, and no difference here can be trusted"
            )
    return ExperimentReport(experiment, out, warnings, srm_p)


__all__ = ["Experiment", "ExperimentReport", "VariantFigures", "experiment_report"]
