"""Data drift: compare what a service sees now with a reference sample (PSI and the KS test).

PSI, the population stability index, bins the values with the *reference's* quantiles (so every bin holds
about the same share of the reference) and adds up `(cur - ref) * ln(cur / ref)` over the bins' shares.
Usual reading: below 0.1 no drift, 0.1 to 0.25 moderate drift, 0.25 and above significant drift. The
two-sample Kolmogorov-Smirnov test (`ks`) needs no bins: its statistic is the largest gap between the two
empirical CDFs, and a small p-value says the samples are unlikely to come from one distribution.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference, shifted = rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)
>>> psi(reference, reference) < 0.01, psi(reference, shifted) > 0.25
(True, True)
>>> DriftReport.compare({"x": reference}, {"x": shifted}).verdict
'significant drift'

Both measure *data* drift: a change of P(x) (or of the model's outputs, which are a function of x). Neither
can see *concept* drift, a change of P(y|x) with the inputs unchanged (a new labelling policy, a word that
changes meaning): only labelled evaluation does. `drift_by_window` lays the drift measures out per time
window, so they can be read next to the accuracy of the same windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EPSILON",
    "PSI_MODERATE",
    "PSI_SIGNIFICANT",
    "DriftReport",
    "FeatureDrift",
    "KSResult",
    "ReferenceHistogram",
    "drift_by_window",
    "ks",
    "psi",
    "psi_verdict",
    "reference_histogram",
]

#: Smallest bin share used in PSI: an empty bin would make ln(cur / ref) infinite.
EPSILON = 1e-4
#: PSI at or above this is moderate drift ...
PSI_MODERATE = 0.1
#: ... and at or above this significant drift.
PSI_SIGNIFICANT = 0.25


def _sample(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """`values` as a 1-D float array; ValueError naming `name` if it is empty or holds NaN/inf."""
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty: pass at least one value to compare.")
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise ValueError(
            f"{name} holds {bad} NaN or infinite value(s) out of {array.size}: drop or impute them first "
            "(keep values[np.isfinite(values)])."
        )
    return array


@dataclass(frozen=True)
class ReferenceHistogram:
    """Bin edges from a reference sample's quantiles and the reference's share in each bin.

    `edges` are the inner edges (sorted, unique); bin i holds `edges[i-1] <= x < edges[i]`, and the two
    outer bins are open-ended, so any value falls in a bin. A service can store this (a few numbers)
    instead of its training data and compute PSI against live traffic.
    """

    edges: NDArray[np.float64]
    fractions: NDArray[np.float64]
    n: int

    def fractions_of(self, values: ArrayLike, *, name: str = "current") -> NDArray[np.float64]:
        """Share of `values` in each bin of this histogram (sums to 1)."""
        array = _sample(values, name)
        counts = np.bincount(np.searchsorted(self.edges, array, side="right"), minlength=self.edges.size + 1)
        return counts / array.size

    def psi(self, current: ArrayLike) -> float:
        """PSI of `current` against this reference (shares clipped at `EPSILON`)."""
        ref = np.maximum(self.fractions, EPSILON)
        cur = np.maximum(self.fractions_of(current), EPSILON)
        return float(np.sum((cur - ref) * np.log(cur / ref)))


def reference_histogram(values: ArrayLike, bins: int = 10) -> ReferenceHistogram:
    """Quantile bins of `values` (ties merged, so maybe fewer than `bins`) and the share in each.

    >>> h = reference_histogram([1, 2, 3, 4], bins=2)
    >>> h.edges.tolist(), h.fractions.tolist()
    ([2.5], [0.5, 0.5])
    """
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins={bins!r} must be an integer >= 2 (10 is usual).")
    reference = _sample(values, "reference")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, int(bins) + 1))[1:-1])
    counts = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=inner.size + 1)
    return ReferenceHistogram(edges=inner, fractions=counts / reference.size, n=int(reference.size))


def psi(reference: ArrayLike, current: ArrayLike, *, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (0 = same shares in every bin).

    >>> round(psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2), 4)  # shares 0.5/0.5 -> 0.75/0.25
    0.2747
    """
    return reference_histogram(reference, bins).psi(current)


class KSResult(NamedTuple):
    """Two-sample KS test: the largest gap between the empirical CDFs, and its p-value."""

    statistic: float
    p_value: float


def ks(reference: ArrayLike, current: ArrayLike) -> KSResult:
    """Two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`, two-sided).

    >>> ks([1, 2, 3, 4], [1, 2, 3, 4]).statistic
    0.0
    """
    result = stats.ks_2samp(_sample(reference, "reference"), _sample(current, "current"))
    return KSResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def psi_verdict(value: float) -> str:
    """'no drift' below PSI_MODERATE, 'moderate drift' below PSI_SIGNIFICANT, else 'significant drift'.

    >>> psi_verdict(0.05), psi_verdict(0.1), psi_verdict(0.3)
    ('no drift', 'moderate drift', 'significant drift')
    """
    if value < PSI_MODERATE:
        return "no drift"
    return "moderate drift" if value < PSI_SIGNIFICANT else "significant drift"


@dataclass(frozen=True)
class FeatureDrift:
    """PSI and KS of one feature (e.g. "confidence", "length_words")."""

    feature: str
    psi: float
    ks_statistic: float
    ks_p_value: float
    n_reference: int
    n_current: int

    @property
    def verdict(self) -> str:
        return psi_verdict(self.psi)


@dataclass(frozen=True)
class DriftReport:
    """Drift of several features; `verdict` is the worst one, `to_frame()` a table with a row each."""

    features: tuple[FeatureDrift, ...]

    @classmethod
    def compare(
        cls, reference: Mapping[str, ArrayLike], current: Mapping[str, ArrayLike], *, bins: int = 10
    ) -> DriftReport:
        """Compare every feature of `reference` with the feature of the same name in `current`."""
        missing = sorted(set(reference) - set(current))
        if missing or len(reference) == 0:
            raise ValueError(
                f"current lacks features {missing} of reference {sorted(reference)}: "
                "pass the same, non-empty set of feature names in both mappings."
            )
        rows = []
        for name, ref_values in reference.items():
            ref = _sample(ref_values, f"reference[{name!r}]")
            cur = _sample(current[name], f"current[{name!r}]")
            test = ks(ref, cur)
            rows.append(FeatureDrift(name, psi(ref, cur, bins=bins), *test, ref.size, cur.size))
        return cls(tuple(rows))

    @property
    def verdict(self) -> str:
        return psi_verdict(max(f.psi for f in self.features))

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: psi, ks_statistic, ks_p_value, n_reference, n_current, verdict."""
        import pandas as pd

        rows = [{**asdict(f), "verdict": f.verdict} for f in self.features]
        return pd.DataFrame(rows).set_index("feature")


def drift_by_window(
    reference: Mapping[str, ArrayLike], windows: Mapping[str, Mapping[str, ArrayLike]], *, bins: int = 10
) -> pd.DataFrame:
    """One row per window (in the order of `windows`): PSI and KS p-value of each feature, and a verdict.

    `windows` maps a window's name (a week, a day) to its features, named as in `reference`; pandas
    DataFrames work for both. Columns: `PSI <feature>` and `KS p <feature>` per feature, then `verdict`
    (the worst PSI verdict of the window).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = {"x": rng.normal(0, 1, 1000)}
    >>> table = drift_by_window(ref, {"w1": {"x": rng.normal(0, 1, 500)}, "w2": {"x": rng.normal(1, 1, 500)}})
    >>> table["verdict"].tolist()
    ['no drift', 'significant drift']
    """
    import pandas as pd

    if len(windows) == 0:
        raise ValueError("windows is empty: pass at least one window, e.g. {'week 1': frame}.")
    rows = {}
    for name, current in windows.items():
        report = DriftReport.compare(reference, current, bins=bins)
        row: dict[str, object] = {}
        for feature in report.features:
            row[f"PSI {feature.feature}"] = feature.psi
            row[f"KS p {feature.feature}"] = feature.ks_p_value
        row["verdict"] = report.verdict
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "window"
    return table
