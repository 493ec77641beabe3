"""Bootstrap confidence intervals for per-group metrics, their differences and the scalar disparities.

fairlearn's MetricFrame can bootstrap (``n_boot``), but it rebuilds a whole MetricFrame per resample
(about 0.1 s each on small data), and it does not bootstrap the scalar disparity functions at all. Here
each resample is drawn once and every group's counts come from ``numpy.bincount``; the rates and
disparities are then built exactly as fairlearn defines them (max − min and min / max between groups,
NaN groups skipped; equalized odds takes the worse of TPR and FPR). Without resampling, these functions
return fairlearn's own values (tested), so the intervals are around the same quantities the report shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Intervals", "bootstrap", "disparities", "group_rates"]

RATES = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "precision")
DISPARITY_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)

Interval = tuple[float | None, float | None]
Intervals = dict[str, Interval]


def group_rates(y: np.ndarray, p: np.ndarray, g: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each rate of :data:`RATES` per group code in ``range(k)`` (NaN where undefined), plus ``count``."""
    n = np.bincount(g, minlength=k).astype(float)
    pos = np.bincount(g, weights=y, minlength=k)
    sel = np.bincount(g, weights=p, minlength=k)
    tp = np.bincount(g, weights=y * p, minlength=k)
    fp = sel - tp
    tn = n - pos - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + tn) / n,
            "selection_rate": sel / n,
            "true_positive_rate": tp / pos,
            "false_positive_rate": fp / (n - pos),
            "precision": tp / sel,
            "count": n,
        }


def _diff_ratio(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return float("nan"), float("nan")
    hi, lo = float(v.max()), float(v.min())
    return hi - lo, (lo / hi if hi > 0 else float("nan"))


def disparities(rates: dict[str, np.ndarray]) -> dict[str, float]:
    """The six scalar disparities from :func:`group_rates` output."""
    present = rates["count"] > 0
    dp_d, dp_r = _diff_ratio(rates["selection_rate"][present])
    tpr_d, tpr_r = _diff_ratio(rates["true_positive_rate"][present])
    fpr_d, fpr_r = _diff_ratio(rates["false_positive_rate"][present])
    values = (dp_d, dp_r, max(tpr_d, fpr_d), min(tpr_r, fpr_r), tpr_d, tpr_r)
    return dict(zip(DISPARITY_NAMES, values, strict=True))


def _interval(values: list[float], ci: tuple[float, float]) -> Interval:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if len(arr) == 0:
        return (None, None)
    lo, hi = np.quantile(arr, [ci[0], ci[1]])
    return (float(lo), float(hi))


def bootstrap(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[str],
    *,
    n_boot: int,
    ci: tuple[float, float],
    random_state: int,
) -> tuple[dict[str, Intervals], Intervals]:
    """Percentile intervals from ``n_boot`` row resamples.

    Returns ``(per_group, summary)``: ``per_group[label][rate]`` and ``summary`` keyed
    ``overall.<rate>``, ``difference.<rate>`` and ``disparity.<name>``.
    """
    labels, codes = np.unique(np.asarray(list(groups), dtype=object).astype(str), return_inverse=True)
    k = len(labels)
    yf, pf = y.astype(float), p.astype(float)
    rng = np.random.default_rng(random_state)
    per_group: dict[tuple[str, int], list[float]] = {(r, i): [] for r in RATES for i in range(k)}
    summary: dict[str, list[float]] = {}
    zeros = np.zeros(len(y), dtype=np.intp)
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        rates = group_rates(yf[idx], pf[idx], codes[idx], k)
        overall = group_rates(yf[idx], pf[idx], zeros, 1)
        for r in RATES:
            for i in range(k):
                per_group[(r, i)].append(float(rates[r][i]))
            summary.setdefault(f"overall.{r}", []).append(float(overall[r][0]))
            present = rates["count"] > 0
            summary.setdefault(f"difference.{r}", []).append(_diff_ratio(rates[r][present])[0])
        for name, value in disparities(rates).items():
            summary.setdefault(f"disparity.{name}", []).append(value)
    group_out = {str(labels[i]): {r: _interval(per_group[(r, i)], ci) for r in RATES} for i in range(k)}
    return group_out, {key: _interval(values, ci) for key, values in summary.items()}
