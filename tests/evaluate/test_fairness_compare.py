"""compare(): direction of each metric, tolerance, and refusal of reports that cannot be compared."""

from __future__ import annotations

import numpy as np
import pytest
from fairness_fixtures import Planted

import cairn.evaluate as ev
from cairn.errors import UsageError
from cairn.evaluate.compare import same_data


def test_directions_and_tolerance(planted: Planted) -> None:
    base = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    worse_pred = planted.pred.copy()
    worse_pred[(planted.a == "b") & (planted.score > 0.3)] = 1  # select even more of group b
    derived = ev.fairness(planted.y, worse_pred, sensitive_features={"A": planted.a})
    result = ev.compare(base, derived)
    regressed = {(c.metric, c.group) for c in result.regressions}
    assert ("demographic_parity_difference", None) in regressed
    assert ("demographic_parity_ratio", None) in regressed  # a ratio regresses by shrinking
    dpd = next(c for c in result.changes if c.metric == "demographic_parity_difference")
    assert dpd.delta == pytest.approx(
        derived.demographic_parity_difference - base.demographic_parity_difference
    )  # type: ignore[operator]
    assert ev.compare(base, base).regressions == ()
    assert ev.compare(base, derived, tolerance=1.0).regressions == ()
    assert not ev.compare(derived, base).changes[0].regressed  # improving is not regressing


def test_incomparable_reports_are_refused(planted: Planted) -> None:
    one = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    two = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a, "B": planted.b})
    with pytest.raises(UsageError):
        ev.compare(one, two)
    with pytest.raises(UsageError):
        ev.compare(one, one, tolerance=-0.1)
    rec = {"dataset": {"sha256": "a", "label": "y", "pos_label": None, "sensitive_features": ["A"]}}
    same_data(rec, rec)
    other = {"dataset": {**rec["dataset"], "sha256": "b"}}
    with pytest.raises(UsageError, match="sha256"):
        same_data(rec, other)
    assert np.isfinite(one.demographic_parity_difference)  # type: ignore[arg-type]
