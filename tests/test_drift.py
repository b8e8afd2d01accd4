"""PSI, KS and the drift report: known values, same vs shifted samples, and clear errors on bad input."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from course_utils import drift
from course_utils.drift import DriftReport, KSResult, ks, psi, psi_verdict, reference_histogram


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_identical_distributions_have_psi_near_zero_and_large_ks_p(rng: np.random.Generator) -> None:
    reference, current = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, current) < 0.02
    result = ks(reference, current)
    assert isinstance(result, KSResult)
    assert result.statistic < 0.05
    assert result.p_value > 0.05


def test_shifted_distribution_is_significant_drift(rng: np.random.Generator) -> None:
    reference, shifted = rng.normal(0, 1, 5000), rng.normal(1, 1, 5000)
    value = psi(reference, shifted)
    assert value > drift.PSI_SIGNIFICANT
    assert psi_verdict(value) == "significant drift"
    assert ks(reference, shifted).p_value < 1e-6


def test_hand_computed_psi() -> None:
    # Median 2.5 splits the reference 0.5 / 0.5; the current sample falls 0.75 / 0.25.
    expected = 0.25 * math.log(0.75 / 0.5) + (-0.25) * math.log(0.25 / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_empty_bins_use_epsilon_instead_of_infinity() -> None:
    # Every current value lands in the lowest bin: the other bins' shares are 0, clipped to EPSILON.
    value = psi(np.arange(100), np.zeros(50), bins=4)
    ref, eps = 0.25, drift.EPSILON
    expected = (1 - ref) * math.log(1 / ref) + 3 * (eps - ref) * math.log(eps / ref)
    assert value == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(value)


def test_reference_histogram_uses_reference_quantiles() -> None:
    hist = reference_histogram(np.arange(1000), bins=10)
    assert hist.edges.size == 9
    np.testing.assert_allclose(hist.fractions, 0.1)
    assert hist.n == 1000
    np.testing.assert_allclose(hist.fractions_of([-1e9, 1e9]), [0.5] + [0.0] * 8 + [0.5])


def test_ties_merge_bins() -> None:
    hist = reference_histogram([1.0] * 95 + [2.0] * 5, bins=10)
    assert hist.edges.tolist() == [1.0]  # every inner quantile is 1.0: one edge, two bins
    assert hist.fractions.tolist() == [0.0, 1.0]
    assert psi([1.0] * 100, [1.0] * 100) == pytest.approx(0.0)


@pytest.mark.parametrize("argument", ["reference", "current"])
@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, float("inf")]], ids=["empty", "nan", "inf"])
def test_bad_inputs_name_the_argument(argument: str, bad: list[float]) -> None:
    good = [1.0, 2.0, 3.0]
    args = {"reference": good, "current": good, argument: bad}
    for measure in (psi, ks):
        with pytest.raises(ValueError, match=rf"^{argument} "):
            measure(args["reference"], args["current"])


@pytest.mark.parametrize("bins", [0, 1, 2.5, "10"])
def test_bad_bins(bins: object) -> None:
    with pytest.raises(ValueError, match="bins="):
        psi([1, 2, 3], [1, 2, 3], bins=bins)  # type: ignore[arg-type]


def test_verdict_thresholds() -> None:
    assert [psi_verdict(v) for v in (0.0, 0.099, 0.1, 0.249, 0.25, 3.0)] == [
        "no drift",
        "no drift",
        "moderate drift",
        "moderate drift",
        "significant drift",
        "significant drift",
    ]


def test_drift_report(rng: np.random.Generator) -> None:
    reference = {"confidence": rng.uniform(0.5, 1, 800), "length": rng.poisson(12, 800)}
    current = {"confidence": rng.uniform(0.5, 1, 500), "length": rng.poisson(25, 500)}
    report = DriftReport.compare(reference, current)
    frame = report.to_frame()
    assert list(frame.index) == ["confidence", "length"]
    assert list(frame.columns) == ["psi", "ks_statistic", "ks_p_value", "n_reference", "n_current", "verdict"]
    assert frame.loc["confidence", "verdict"] == "no drift"
    assert frame.loc["length", "verdict"] == "significant drift"
    assert report.verdict == "significant drift"  # the worst feature
    assert frame.loc["length", "n_current"] == 500
    assert frame.loc["length", "psi"] == pytest.approx(psi(reference["length"], current["length"]))


def test_drift_report_needs_matching_features() -> None:
    with pytest.raises(ValueError, match="current lacks features \\['length'\\]"):
        DriftReport.compare({"length": [1, 2]}, {"confidence": [1, 2]})
    with pytest.raises(ValueError, match="current\\['x'\\] is empty"):
        DriftReport.compare({"x": [1, 2]}, {"x": []})


def test_docstring_examples_run() -> None:
    result = doctest.testmod(drift)
    assert result.attempted > 0
    assert result.failed == 0


def test_drift_by_window_has_a_row_per_window_in_order(rng: np.random.Generator) -> None:
    reference = {"x": rng.normal(0, 1, 2000), "y": rng.uniform(0, 1, 2000)}
    windows = {
        "week 2": {"x": rng.normal(0, 1, 800), "y": rng.uniform(0, 1, 800)},
        "week 1": {"x": rng.normal(2, 1, 800), "y": rng.uniform(0, 1, 800)},
    }
    table = drift.drift_by_window(reference, windows)
    assert list(table.index) == ["week 2", "week 1"]
    assert table.index.name == "window"
    assert list(table.columns) == ["PSI x", "KS p x", "PSI y", "KS p y", "verdict"]
    assert table.loc["week 2", "verdict"] == "no drift"
    assert table.loc["week 1", "verdict"] == "significant drift"
    expected = DriftReport.compare(reference, windows["week 1"])
    assert table.loc["week 1", "PSI x"] == pytest.approx(expected.features[0].psi)
    assert table.loc["week 1", "KS p y"] == pytest.approx(expected.features[1].ks_p_value)


def test_drift_by_window_passes_bins_and_takes_data_frames(rng: np.random.Generator) -> None:
    import pandas as pd

    reference = pd.DataFrame({"x": rng.normal(0, 1, 1000)})
    window = pd.DataFrame({"x": rng.normal(0.3, 1, 300)})
    table = drift.drift_by_window(reference, {1: window}, bins=5)
    assert table.loc[1, "PSI x"] == pytest.approx(psi(reference["x"], window["x"], bins=5))
    assert table.loc[1, "PSI x"] != pytest.approx(psi(reference["x"], window["x"], bins=10))


def test_concept_drift_is_invisible_to_the_input_measures(rng: np.random.Generator) -> None:
    """Labels flip for a sub-population while the inputs keep their distribution: PSI and KS stay quiet,
    the labelled accuracy of a fixed model falls. This is why concept drift needs labelled evaluation."""
    x_reference, x_before, x_after = (rng.normal(0, 1, n) for n in (2000, 1000, 1000))

    def predict(x: np.ndarray) -> np.ndarray:  # a fixed model, right on every input under the old concept
        return x > 0

    def new_concept(x: np.ndarray) -> np.ndarray:  # the sub-population 0 < x < 0.5 is now negative
        return x >= 0.5

    table = drift.drift_by_window({"x": x_reference}, {"before": {"x": x_before}, "after": {"x": x_after}})
    assert (table["verdict"] == "no drift").all(), table
    assert (table["KS p x"] > 0.01).all(), table
    accuracy_before = (predict(x_before) == predict(x_before)).mean()
    accuracy_after = (predict(x_after) == new_concept(x_after)).mean()
    assert accuracy_before == 1.0
    assert accuracy_after < 0.9


def test_drift_by_window_refuses_no_windows_and_missing_features(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="windows is empty"):
        drift.drift_by_window({"x": rng.normal(0, 1, 10)}, {})
    with pytest.raises(ValueError, match="lacks features"):
        drift.drift_by_window({"x": rng.normal(0, 1, 10)}, {"w": {"z": rng.normal(0, 1, 10)}})
