"""``fairness()``: disaggregated metrics and disparities on fairlearn's MetricFrame, as a frozen report.

Flow: validate inputs (:mod:`cairn.evaluate.data`) → one MetricFrame over all sensitive features together
(several features give intersectional groups) → fairlearn's scalar disparity metrics → optional bootstrap
intervals (:mod:`cairn.evaluate.bootstrap`) → warnings for groups below ``min_group_size``. The point
estimates are fairlearn's own; this module only names, validates and freezes them. fairlearn and pandas
are imported inside the function so that importing cairn stays light.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.errors import UsageError
from cairn.evaluate.data import binary, sensitive_frame
from cairn.evaluate.errors import LengthMismatchError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DISPARITIES", "GROUP_METRICS", "FairnessReport", "GroupResult", "fairness"]

#: per-group metrics, in report order
GROUP_METRICS = (
    "accuracy",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "precision",
    "count",
)
#: scalar disparities; a ``*_difference`` is better when lower, a ``*_ratio`` when higher
DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)

Interval = tuple[float | None, float | None]


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities (undefined rates) become None."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class GroupResult:
    """Metrics of one (possibly intersectional) group."""

    key: tuple[tuple[str, str], ...]  # ((feature, value), ...)
    count: int
    metrics: Mapping[str, float | None]
    intervals: Mapping[str, Interval] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``sex=female`` or, intersectionally, ``sex=female,race=b``."""
        return ",".join(f"{k}={v}" for k, v in self.key)

    @property
    def values(self) -> str:
        return ",".join(v for _, v in self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": dict(self.key),
            "label": self.label,
            "count": self.count,
            "metrics": dict(self.metrics),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
        }


@dataclass(frozen=True)
class FairnessReport:
    """The result of :func:`fairness`. ``to_dict()`` is the ``report`` member of ``fairness.json``."""

    sensitive_features: tuple[str, ...]
    n: int
    overall: Mapping[str, float | None]
    groups: tuple[GroupResult, ...]
    disparities: Mapping[str, float | None]
    differences: Mapping[str, float | None]  # per metric, max - min between groups
    ratios: Mapping[str, float | None]  # per metric, min / max between groups
    intervals: Mapping[str, Interval]  # "overall.<metric>", "difference.<metric>", "disparity.<name>"
    n_boot: int
    ci: tuple[float, float]
    min_group_size: int
    warnings: tuple[str, ...]

    @property
    def by_group(self) -> dict[str, dict[str, float | None]]:
        return {g.label: dict(g.metrics) for g in self.groups}

    @property
    def demographic_parity_difference(self) -> float | None:
        return self.disparities.get("demographic_parity_difference")

    @property
    def demographic_parity_ratio(self) -> float | None:
        return self.disparities.get("demographic_parity_ratio")

    @property
    def equalized_odds_difference(self) -> float | None:
        return self.disparities.get("equalized_odds_difference")

    @property
    def equalized_odds_ratio(self) -> float | None:
        return self.disparities.get("equalized_odds_ratio")

    @property
    def equal_opportunity_difference(self) -> float | None:
        return self.disparities.get("equal_opportunity_difference")

    @property
    def equal_opportunity_ratio(self) -> float | None:
        return self.disparities.get("equal_opportunity_ratio")

    def group(self, label: str) -> GroupResult:
        for g in self.groups:
            if g.label == label:
                return g
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitive_features": list(self.sensitive_features),
            "n": self.n,
            "overall": dict(self.overall),
            "groups": [g.to_dict() for g in self.groups],
            "disparities": dict(self.disparities),
            "differences": dict(self.differences),
            "ratios": dict(self.ratios),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "n_boot": self.n_boot,
            "ci": list(self.ci),
            "min_group_size": self.min_group_size,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FairnessReport:
        """Rebuild a report from :meth:`to_dict` output (e.g. a stored ``fairness.json``)."""
        try:
            groups = tuple(
                GroupResult(
                    key=tuple((str(k), str(v)) for k, v in dict(g["group"]).items()),
                    count=int(g["count"]),
                    metrics={str(k): _num(v) for k, v in dict(g["metrics"]).items()},
                    intervals={str(k): _interval(v) for k, v in dict(g.get("intervals", {})).items()},
                )
                for g in data["groups"]
            )
            return cls(
                sensitive_features=tuple(str(s) for s in data["sensitive_features"]),
                n=int(data["n"]),
                overall={str(k): _num(v) for k, v in dict(data["overall"]).items()},
                groups=groups,
                disparities={str(k): _num(v) for k, v in dict(data["disparities"]).items()},
                differences={str(k): _num(v) for k, v in dict(data.get("differences", {})).items()},
                ratios={str(k): _num(v) for k, v in dict(data.get("ratios", {})).items()},
                intervals={str(k): _interval(v) for k, v in dict(data.get("intervals", {})).items()},
                n_boot=int(data.get("n_boot", 0)),
                ci=_ci(data.get("ci", (0.025, 0.975))),
                min_group_size=int(data.get("min_group_size", 0)),
                warnings=tuple(str(w) for w in data.get("warnings", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            from cairn.errors import FormatError

            raise FormatError(f"not a fairness report: {type(err).__name__}: {err}") from err


def _interval(value: Any) -> Interval:
    lo, hi = value
    return (_num(lo), _num(hi))


def _ci(value: Any) -> tuple[float, float]:
    lo, hi = value
    return (float(lo), float(hi))


def _metric_functions() -> dict[str, Any]:
    from fairlearn.metrics import count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, precision_score

    return {
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "precision": partial(precision_score, zero_division=np.nan),
        "count": count,
    }


def _disparities(y_true: np.ndarray, y_pred: np.ndarray, sf: pd.DataFrame) -> dict[str, float | None]:
    import fairlearn.metrics as fm

    out: dict[str, float | None] = {}
    for name in DISPARITIES:
        out[name] = _num(getattr(fm, name)(y_true, y_pred, sensitive_features=sf))
    return out


def _key(index: object, features: Sequence[str]) -> tuple[tuple[str, str], ...]:
    values = index if isinstance(index, tuple) else (index,)
    return tuple((f, str(v)) for f, v in zip(features, values, strict=True))


def fairness(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    n_boot: int = 0,
    ci: tuple[float, float] = (0.025, 0.975),
    random_state: int = 0,
    min_group_size: int = 30,
    pos_label: object | None = None,
) -> FairnessReport:
    """Disaggregated metrics of binary predictions ``y_pred`` against ``y_true`` by sensitive feature.

    ``sensitive_features`` is a sequence (one feature), a pandas Series/DataFrame or a mapping of feature
    name to values; several features are evaluated intersectionally. ``n_boot > 0`` adds bootstrap
    confidence intervals at the quantiles ``ci``. Groups smaller than ``min_group_size`` are reported in
    ``warnings``: their rates are noisy.
    """
    if n_boot < 0 or n_boot > 10_000:
        raise UsageError(f"n_boot must be between 0 and 10000, got {n_boot}")
    if not (0.0 <= ci[0] < ci[1] <= 1.0):
        raise UsageError(f"ci must be two quantiles 0 <= low < high <= 1, got {ci}")
    yt = binary(y_true, column="y_true", pos_label=pos_label)
    yp = binary(y_pred, column="y_pred", pos_label=pos_label)
    if len(yp) != len(yt):
        raise LengthMismatchError("predictions", len(yt), len(yp))
    sf = sensitive_frame(sensitive_features, rows=len(yt))
    features = tuple(str(c) for c in sf.columns)

    from fairlearn.metrics import MetricFrame

    with warnings.catch_warnings():
        # undefined rates (a group without positives) are reported as null, not warned about
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", module="sklearn")
        mf = MetricFrame(
            metrics=_metric_functions(),
            y_true=yt,
            y_pred=yp,
            sensitive_features=sf if len(features) > 1 else sf[features[0]],
        )
        disparities = _disparities(yt, yp, sf)
        diff = mf.difference(method="between_groups")
        ratio = mf.ratio(method="between_groups")

    group_ci: dict[str, dict[str, Interval]] = {}
    summary_ci: dict[str, Interval] = {}
    if n_boot:
        from cairn.evaluate.bootstrap import bootstrap

        labels = ["\x1f".join(row) for row in sf.itertuples(index=False)]  # unambiguous joiner
        group_ci, summary_ci = bootstrap(yt, yp, labels, n_boot=n_boot, ci=ci, random_state=random_state)
    groups: list[GroupResult] = []
    small: list[str] = []
    for index, row in mf.by_group.iterrows():
        key = _key(index, features)
        metrics = {m: _num(row[m]) for m in GROUP_METRICS if m != "count"}
        count = int(row["count"])
        intervals = group_ci.get("\x1f".join(v for _, v in key), {})
        groups.append(GroupResult(key=key, count=count, metrics=metrics, intervals=intervals))
        if count < min_group_size:
            label = ",".join(f"{k}={v}" for k, v in key)
            small.append(
                f"group {label} has {count} rows, fewer than {min_group_size}: its rates are unreliable"
            )
    rated = [m for m in GROUP_METRICS if m != "count"]
    return FairnessReport(
        sensitive_features=features,
        n=len(yt),
        overall={m: _num(mf.overall[m]) for m in rated},
        groups=tuple(groups),
        disparities=disparities,
        differences={m: _num(diff[m]) for m in rated},
        ratios={m: _num(ratio[m]) for m in rated},
        intervals=summary_ci,
        n_boot=n_boot,
        ci=(float(ci[0]), float(ci[1])),
        min_group_size=min_group_size,
        warnings=tuple(small),
    )
