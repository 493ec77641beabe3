"""Threshold mitigation: equals fairlearn's ThresholdOptimizer, reduces the planted disparity, JSON only."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from fairlearn.postprocessing import ThresholdOptimizer
from fairness_fixtures import Planted
from sklearn.linear_model import LogisticRegression

from cairn.errors import FormatError, UsageError
from cairn.evaluate.errors import GroupError
from cairn.evaluate.mitigation import GroupThresholds, fit_thresholds


def _groups(planted: Planted) -> list[str]:
    return [f"A={a}" for a in planted.a]


@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_thresholds_reproduce_fairlearn_threshold_optimizer(planted: Planted, constraint: str) -> None:
    x = planted.x.reshape(-1, 1)
    clf = LogisticRegression().fit(x, planted.y)
    scores = clf.predict_proba(x)[:, 1]
    groups = _groups(planted)
    reference = ThresholdOptimizer(
        estimator=clf, constraints=constraint, prefit=True, predict_method="predict_proba"
    ).fit(x, planted.y, sensitive_features=groups)
    ours = fit_thresholds(planted.y, scores, groups, sensitive_features=["A"], constraint=constraint)
    stored = GroupThresholds.from_dict(json.loads(json.dumps(ours.to_dict(), allow_nan=False)))
    assert stored == ours
    np.testing.assert_allclose(
        stored.positive_probability(scores, groups),
        reference._pmf_predict(x, sensitive_features=groups)[:, 1],
    )
    for seed in (0, 7):
        np.testing.assert_array_equal(
            stored.apply(scores, groups, random_state=seed),
            reference.predict(x, sensitive_features=groups, random_state=seed),
        )


def test_mitigation_reduces_the_planted_disparity(planted: Planted) -> None:
    groups = _groups(planted)
    dp = fit_thresholds(planted.y, planted.score, groups, sensitive_features=["A"])
    after = dp.apply(planted.score, groups)
    before_dpd = demographic_parity_difference(planted.y, planted.pred, sensitive_features=planted.a)
    after_dpd = demographic_parity_difference(planted.y, after, sensitive_features=planted.a)
    assert before_dpd > 0.2 and after_dpd < before_dpd / 4
    eo = fit_thresholds(
        planted.y, planted.score, groups, sensitive_features=["A"], constraint="equalized_odds"
    )
    after_eo = eo.apply(planted.score, groups)
    assert equalized_odds_difference(
        planted.y, after_eo, sensitive_features=planted.a
    ) < equalized_odds_difference(planted.y, planted.pred, sensitive_features=planted.a)


def test_unknown_group_at_apply_time_is_refused(planted: Planted) -> None:
    th = fit_thresholds(planted.y, planted.score, _groups(planted), sensitive_features=["A"])
    with pytest.raises(GroupError) as exc:
        th.apply([0.5, 0.6], ["A=a", "A=zzz"])
    assert exc.value.groups == ["A=zzz"]


def test_bad_constraint_and_scores_are_usage_errors(planted: Planted) -> None:
    groups = _groups(planted)
    with pytest.raises(UsageError):
        fit_thresholds(planted.y, planted.score, groups, sensitive_features=["A"], constraint="vibes")
    bad = planted.score.copy()
    bad[3] = np.nan
    with pytest.raises(UsageError):
        fit_thresholds(planted.y, bad, groups, sensitive_features=["A"])


def _valid() -> dict[str, Any]:
    op = {"operator": ">", "threshold": 0.5}
    rule = {"p0": 1.0, "operation0": op, "p1": 0.0, "operation1": {"operator": "<", "threshold": "-inf"}}
    return {
        "method": "threshold",
        "constraint": "demographic_parity",
        "objective": "accuracy_score",
        "sensitive_features": ["A"],
        "groups": {"A=a": rule},
    }


@pytest.mark.parametrize(
    "path_value",
    [
        (("method",), "pickle"),
        (("groups",), {}),
        (("groups", "A=a", "p0"), 1.5),
        (("groups", "A=a", "p0"), "1"),
        (("groups", "A=a", "operation0", "operator"), ">="),
        (("groups", "A=a", "operation0", "threshold"), "NaN"),
        (("groups", "A=a", "operation0"), [">", 0.5]),
        (("groups", "A=a"), "rule"),
    ],
)
def test_hostile_threshold_json_is_a_format_error(path_value: tuple[tuple[str, ...], object]) -> None:
    data = _valid()
    GroupThresholds.from_dict(data)  # the unmodified document is valid
    path, value = path_value
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(FormatError):
        GroupThresholds.from_dict(data)
