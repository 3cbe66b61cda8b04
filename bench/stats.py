"""Summary statistics for benchmark samples: median, percentiles and a least-squares slope."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """Return the median of VALUES, or NaN when there are none."""
    if not values:
        return math.nan
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the FRACTION (0 to 1) percentile of VALUES by linear interpolation.

    Returns NaN for no values.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction={fraction} is invalid. Expected a value from 0 to 1.")
    if not values:
        return math.nan

    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(ordered[lower])
    weight = position - lower
    return float(ordered[lower] * (1.0 - weight) + ordered[upper] * weight)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Return the least-squares slope dy/dx of POINTS, or NaN for fewer than two distinct x."""
    if len(points) < 2:
        return math.nan

    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return math.nan
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def ratio(numerator: float, denominator: float) -> float:
    """Return NUMERATOR / DENOMINATOR, or NaN when the denominator is 0 or NaN."""
    if denominator == 0 or math.isnan(denominator):
        return math.nan
    return numerator / denominator
