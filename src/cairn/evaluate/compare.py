"""``compare``: which fairness metrics a derived model regressed against its base on the same data.

Disparities have a direction: a ``*_difference`` regresses when it grows, a ``*_ratio`` when it shrinks.
Per-group accuracy regresses when it drops. A change within ``tolerance`` is not a regression. Reports
from different data (another file digest, label or sensitive features) are refused, since their numbers
cannot be compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cairn.errors import UsageError
from cairn.evaluate.report import FairnessReport

__all__ = ["Change", "Comparison", "compare", "same_data"]


@dataclass(frozen=True)
class Change:
    """One metric in base and derived; ``regressed`` says whether the change is for the worse."""

    metric: str
    group: str | None
    base: float | None
    derived: float | None
    regressed: bool

    @property
    def delta(self) -> float | None:
        if self.base is None or self.derived is None:
            return None
        return self.derived - self.base

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "group": self.group,
            "base": self.base,
            "derived": self.derived,
            "delta": self.delta,
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class Comparison:
    """All compared metrics; :attr:`regressions` are the ones that got worse."""

    changes: tuple[Change, ...]
    tolerance: float

    @property
    def regressions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.regressed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "regressed": [c.to_dict() for c in self.regressions],
            "changes": [c.to_dict() for c in self.changes],
        }


def _worse(metric: str, base: float | None, derived: float | None, tolerance: float) -> bool:
    if base is None or derived is None:
        return False
    if metric.endswith("_difference"):
        return derived - base > tolerance
    return base - derived > tolerance  # ratios and accuracy: higher is better


def compare(base: FairnessReport, derived: FairnessReport, *, tolerance: float = 0.0) -> Comparison:
    """Compare two reports over the same sensitive features."""
    if tolerance < 0:
        raise UsageError(f"tolerance must be >= 0, got {tolerance}")
    if base.sensitive_features != derived.sensitive_features:
        raise UsageError(
            f"reports use different sensitive features: {list(base.sensitive_features)} "
            f"vs {list(derived.sensitive_features)}"
        )
    changes: list[Change] = []
    for name, b in base.disparities.items():
        d = derived.disparities.get(name)
        changes.append(Change(name, None, b, d, _worse(name, b, d, tolerance)))
    changes.append(
        Change(
            "accuracy",
            None,
            base.overall.get("accuracy"),
            derived.overall.get("accuracy"),
            _worse("accuracy", base.overall.get("accuracy"), derived.overall.get("accuracy"), tolerance),
        )
    )
    derived_groups = derived.by_group
    for g in base.groups:
        b = g.metrics.get("accuracy")
        d = derived_groups.get(g.label, {}).get("accuracy")
        changes.append(Change("accuracy", g.label, b, d, _worse("accuracy", b, d, tolerance)))
    return Comparison(tuple(changes), tolerance)


def same_data(base: Mapping[str, Any], derived: Mapping[str, Any]) -> None:
    """Raise :class:`UsageError` unless two ``fairness.json`` records were computed on the same data."""
    keys = ("sha256", "label", "pos_label", "sensitive_features")
    b = {k: base.get("dataset", {}).get(k) for k in keys}
    d = {k: derived.get("dataset", {}).get(k) for k in keys}
    if b != d:
        diff = ", ".join(f"{k}: {b[k]!r} vs {d[k]!r}" for k in keys if b[k] != d[k])
        raise UsageError(f"the two evaluations are not on the same data ({diff})")
