"""Numbers as the report shows them, and the one statistic it computes itself: a mean's bootstrap interval.

Rounding: `fmt` gives three significant digits (no exponent down to 0.001, "1.23e-05" below); `fmt_fixed` a fixed
number of decimals (rates and AUCs: 2). A missing value (None, NaN) is shown as "–", never as a number. An interval is
written "0.93 [0.88, 0.97]".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MISSING = "–"
N_BOOT = 1000
LEVEL = 0.95
MIN_IDENTITIES = 5  # as fakebench.evaluation: fewer identities give no interval


def number(value: Any) -> float | None:
    """A finite float, or None for None, NaN, inf, booleans and anything that is not a number."""
    if value is None or isinstance(value, bool | np.bool_):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt(value: Any, sig: int = 3) -> str:
    """``sig`` significant digits (an exponent only below 0.001); "–" for a missing value."""
    x = number(value)
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -3:  # 0.0001 and below: decimals would hide the digits
        return f"{x:.{sig - 1}e}"
    decimals = max(0, sig - 1 - magnitude)
    return f"{x:,.{decimals}f}" if abs(x) >= 10000 else f"{x:.{decimals}f}"


def fmt_seconds(value: Any) -> str:
    x = number(value)
    return MISSING if x is None else f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def fmt_fixed(value: Any, decimals: int = 2) -> str:
    x = number(value)
    return MISSING if x is None else f"{x:.{decimals}f}"


def fmt_ci(value: Any, low: Any = None, high: Any = None, decimals: int | None = None) -> str:
    """"0.93 [0.88, 0.97]"; the value alone when the interval is missing; "–" when the value is."""
    show = (lambda v: fmt_fixed(v, decimals)) if decimals is not None else fmt
    if number(value) is None:
        return MISSING
    if number(low) is None or number(high) is None:
        return show(value)
    return f"{show(value)} [{show(low)}, {show(high)}]"


def mean_ci(values: Sequence[Any], identities: Sequence[Any] | None = None, *, n_boot: int = N_BOOT,
            seed: int = 0, level: float = LEVEL,
            min_identities: int = MIN_IDENTITIES) -> tuple[float | None, float | None, float | None, int]:
    """The mean of the finite ``values`` and its percentile bootstrap interval, resampling identities (whole
    clusters of clips, as `fakebench.evaluation` does); returns (mean, low, high, n values used).

    No values: all None. Fewer than ``min_identities`` identities (or ``n_boot`` 0): the mean without interval.
    ``identities`` None: each value is its own cluster. Seeded: the same inputs give the same interval.
    """
    x = np.array([number(v) for v in values], dtype=object)
    keep = np.array([v is not None for v in x], dtype=bool)
    if not keep.any():
        return None, None, None, 0
    vals = x[keep].astype(np.float64)
    mean = float(vals.mean())
    groups = (np.arange(len(x)) if identities is None else np.array([str(g) for g in identities], dtype=object))[keep]
    _, code = np.unique(groups.astype(str), return_inverse=True)
    k = int(code.max()) + 1
    if k < min_identities or n_boot <= 0:
        return mean, None, None, len(vals)
    sums = np.bincount(code, weights=vals, minlength=k)
    counts = np.bincount(code, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, k, size=(n_boot, k))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return mean, float(low), float(high), len(vals)
