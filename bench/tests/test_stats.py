"""Unit tests of bench.stats."""

import math

import pytest

from bench.stats import median, percentile, ratio, slope


def test_median_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_is_nan():
    assert math.isnan(median([]))


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        pytest.param(0.0, 10.0, id="minimum"),
        pytest.param(0.5, 30.0, id="median"),
        pytest.param(0.75, 40.0, id="exact-rank"),
        pytest.param(0.99, 49.6, id="interpolated"),
        pytest.param(1.0, 50.0, id="maximum"),
    ],
)
def test_percentile_interpolates_between_ranks(fraction, expected):
    assert percentile([50.0, 10.0, 40.0, 20.0, 30.0], fraction) == pytest.approx(expected)


def test_percentile_rejects_fraction_outside_range():
    with pytest.raises(ValueError, match="fraction=1.5"):
        percentile([1.0], 1.5)


def test_slope_of_line():
    points = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]
    assert slope(points) == pytest.approx(2.0)


def test_slope_without_spread_is_nan():
    assert math.isnan(slope([(1.0, 1.0), (1.0, 2.0)]))
    assert math.isnan(slope([(1.0, 1.0)]))


def test_ratio_by_zero_is_nan():
    assert math.isnan(ratio(1.0, 0.0))
    assert ratio(1.0, 4.0) == 0.25
