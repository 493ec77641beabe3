"""Threshold mitigation: fairlearn's ThresholdOptimizer fitted on model scores, kept as JSON, never pickled.

``fit_thresholds`` runs :class:`fairlearn.postprocessing.ThresholdOptimizer` over a model's scores (one
number per row, higher means more positive) and reads the fitted per-group rule out of it: with
probability ``p0`` apply ``operation0`` (``score > t`` or ``score < t``), else ``operation1``; for
equalized odds, additionally replace the result by a constant with probability ``p_ignore``.
:class:`GroupThresholds` holds exactly that, serialises to plain JSON, and ``apply`` reproduces
ThresholdOptimizer's own predictions (same positive probabilities, same draws for the same seed) without
the fitted object, so the derived artifact is data, not code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.errors import FormatError, UsageError
from cairn.evaluate.errors import GroupError, LengthMismatchError

__all__ = ["CONSTRAINTS", "GroupRule", "GroupThresholds", "Operation", "fit_thresholds"]

CONSTRAINTS = (
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "true_negative_rate_parity",
    "false_negative_rate_parity",
)


def _encode_threshold(t: float) -> float | str:
    if math.isinf(t):
        return "+inf" if t > 0 else "-inf"
    return float(t)


def _decode_threshold(v: Any) -> float:
    if v == "+inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
        raise FormatError(f"threshold must be a number, '+inf' or '-inf', got {v!r}")
    return float(v)


def _probability(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not (0.0 <= float(v) <= 1.0):
        raise FormatError(f"{what} must be a probability in [0, 1], got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Operation:
    """``score > threshold`` or ``score < threshold``."""

    operator: str
    threshold: float

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return scores > self.threshold if self.operator == ">" else scores < self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, "threshold": _encode_threshold(self.threshold)}

    @classmethod
    def from_dict(cls, data: Any) -> Operation:
        if not isinstance(data, Mapping) or data.get("operator") not in {">", "<"}:
            raise FormatError(f"operation must be {{operator: '>'|'<', threshold}}, got {data!r}")
        return cls(str(data["operator"]), _decode_threshold(data.get("threshold")))


@dataclass(frozen=True)
class GroupRule:
    """The randomized threshold rule of one group."""

    p0: float
    operation0: Operation
    p1: float
    operation1: Operation
    p_ignore: float = 0.0
    prediction_constant: float = 0.0

    def positive_probability(self, scores: np.ndarray) -> np.ndarray:
        p = self.p0 * self.operation0(scores) + self.p1 * self.operation1(scores)
        return np.asarray(self.p_ignore * self.prediction_constant + (1 - self.p_ignore) * p, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "p0": self.p0,
            "operation0": self.operation0.to_dict(),
            "p1": self.p1,
            "operation1": self.operation1.to_dict(),
            "p_ignore": self.p_ignore,
            "prediction_constant": self.prediction_constant,
        }

    @classmethod
    def from_dict(cls, data: Any) -> GroupRule:
        if not isinstance(data, Mapping):
            raise FormatError(f"group rule must be an object, got {type(data).__name__}")
        return cls(
            p0=_probability(data.get("p0"), "p0"),
            operation0=Operation.from_dict(data.get("operation0")),
            p1=_probability(data.get("p1"), "p1"),
            operation1=Operation.from_dict(data.get("operation1")),
            p_ignore=_probability(data.get("p_ignore", 0.0), "p_ignore"),
            prediction_constant=_probability(data.get("prediction_constant", 0.0), "prediction_constant"),
        )


@dataclass(frozen=True)
class GroupThresholds:
    """Per-group threshold rules over a score; the JSON-serialisable result of :func:`fit_thresholds`."""

    constraint: str
    objective: str
    sensitive_features: tuple[str, ...]
    rules: Mapping[str, GroupRule]  # group label ("sex=female,race=b") -> rule

    def positive_probability(self, scores: Any, groups: Sequence[str]) -> np.ndarray:
        s = np.asarray(scores, dtype=float).ravel()
        g = np.asarray(list(groups), dtype=object)
        if len(g) != len(s):
            raise LengthMismatchError("groups", len(s), len(g))
        unknown = sorted(set(g.tolist()) - set(self.rules))
        if unknown:
            raise GroupError(",".join(self.sensitive_features), unknown, "groups without a fitted threshold")
        out = np.zeros(len(s), dtype=float)
        for label, rule in self.rules.items():
            mask = g == label
            out[mask] = rule.positive_probability(s[mask])
        return out

    def apply(self, scores: Any, groups: Sequence[str], *, random_state: int = 0) -> np.ndarray:
        """0/1 predictions, drawn as ThresholdOptimizer.predict draws them for ``random_state``."""
        p = self.positive_probability(scores, groups)
        draws = np.random.RandomState(random_state).rand(len(p))  # the legacy RNG that fairlearn draws with
        return (p >= draws).astype(np.int8)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "threshold",
            "constraint": self.constraint,
            "objective": self.objective,
            "sensitive_features": list(self.sensitive_features),
            "groups": {label: rule.to_dict() for label, rule in self.rules.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> GroupThresholds:
        if not isinstance(data, Mapping) or data.get("method") != "threshold":
            raise FormatError("not a threshold mitigation (expected method: threshold)")
        groups = data.get("groups")
        if not isinstance(groups, Mapping) or not groups:
            raise FormatError("threshold mitigation has no groups")
        return cls(
            constraint=str(data.get("constraint")),
            objective=str(data.get("objective")),
            sensitive_features=tuple(str(s) for s in data.get("sensitive_features", ())),
            rules={str(k): GroupRule.from_dict(v) for k, v in groups.items()},
        )


def _score_estimator() -> Any:
    """A prefit scikit-learn estimator whose only feature *is* the score (sklearn imported lazily)."""
    from sklearn.base import BaseEstimator

    class Scores(BaseEstimator):  # type: ignore[misc]
        def fit(self, x: Any, y: Any) -> Scores:
            return self

        def predict(self, x: Any) -> np.ndarray:
            return np.asarray(x, dtype=float)[:, 0]

        def __sklearn_is_fitted__(self) -> bool:
            return True

    return Scores()


def fit_thresholds(
    y_true: np.ndarray,
    scores: Any,
    groups: Sequence[str],
    *,
    sensitive_features: Sequence[str],
    constraint: str = "demographic_parity",
    objective: str = "accuracy_score",
) -> GroupThresholds:
    """Fit per-group thresholds on ``scores`` so that ``constraint`` holds between ``groups``."""
    if constraint not in CONSTRAINTS:
        raise UsageError(f"unknown constraint {constraint!r}; choose one of {', '.join(CONSTRAINTS)}")
    s = np.asarray(scores, dtype=float).ravel()
    if len(s) != len(y_true):
        raise LengthMismatchError("scores", len(y_true), len(s))
    if not np.all(np.isfinite(s)):
        raise UsageError("scores must be finite numbers for threshold mitigation")
    g = np.asarray(list(groups), dtype=object)
    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(
        estimator=_score_estimator(),
        constraints=constraint,
        objective=objective,
        prefit=True,
        predict_method="predict",
    )
    try:
        optimizer.fit(s.reshape(-1, 1), np.asarray(y_true, dtype=int), sensitive_features=g)
    except ValueError as err:  # fairlearn's message for degenerate data (one class in a group, ...)
        raise UsageError(f"threshold optimisation failed: {err}") from err
    rules: dict[str, GroupRule] = {}
    for label, b in optimizer.interpolated_thresholder_.interpolation_dict.items():
        rules[str(label)] = GroupRule(
            p0=float(b.p0),
            operation0=Operation(b.operation0.operator, float(b.operation0.threshold)),
            p1=float(b.p1),
            operation1=Operation(b.operation1.operator, float(b.operation1.threshold)),
            p_ignore=float(b.get("p_ignore", 0.0)),
            prediction_constant=float(b.get("prediction_constant", 0.0)),
        )
    return GroupThresholds(constraint, objective, tuple(sensitive_features), rules)
