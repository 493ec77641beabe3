"""cairn.evaluate.fairness: numbers equal fairlearn's own, planted disparity found, hostile input typed."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from fairness_fixtures import Planted
from sklearn.metrics import accuracy_score

import cairn.evaluate as ev
from cairn.errors import CairnError, FormatError, UsageError
from cairn.evaluate.errors import (
    GroupError,
    LengthMismatchError,
    MissingValueError,
    NonBinaryLabelError,
)


def test_planted_disparity_is_found_and_matches_fairlearn(planted: Planted) -> None:
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    assert rep.sensitive_features == ("A",)
    assert rep.n == len(planted.y)
    # the planted shift makes group b selected far more often
    assert rep.by_group["A=b"]["selection_rate"] > rep.by_group["A=a"]["selection_rate"] + 0.2
    assert rep.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(planted.y, planted.pred, sensitive_features=planted.a)
    )
    assert rep.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(planted.y, planted.pred, sensitive_features=planted.a)
    )
    assert rep.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(planted.y, planted.pred, sensitive_features=planted.a)
    )
    assert rep.equalized_odds_ratio == pytest.approx(
        equalized_odds_ratio(planted.y, planted.pred, sensitive_features=planted.a)
    )
    assert rep.equal_opportunity_difference == pytest.approx(
        equal_opportunity_difference(planted.y, planted.pred, sensitive_features=planted.a)
    )
    assert rep.demographic_parity_difference is not None and rep.demographic_parity_difference > 0.2
    mf = MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=planted.y,
        y_pred=planted.pred,
        sensitive_features=planted.a,
    )
    for group in ("a", "b"):
        for metric in mf.by_group.columns:
            assert rep.by_group[f"A={group}"][metric] == pytest.approx(mf.by_group.loc[group, metric])
    assert rep.group("A=a").count == int((planted.a == "a").sum())
    assert rep.overall["accuracy"] == pytest.approx(accuracy_score(planted.y, planted.pred))


def test_intersectional_groups_match_fairlearn(planted: Planted) -> None:
    sf = pd.DataFrame({"A": planted.a, "B": planted.b})
    rep = ev.fairness(planted.y, planted.pred, sensitive_features=sf)
    assert sorted(rep.by_group) == ["A=a,B=x", "A=a,B=y", "A=b,B=x", "A=b,B=y"]
    mf = MetricFrame(metrics=selection_rate, y_true=planted.y, y_pred=planted.pred, sensitive_features=sf)
    for g in rep.groups:
        assert g.metrics["selection_rate"] == pytest.approx(mf.by_group.loc[(g.key[0][1], g.key[1][1])])
    assert rep.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(planted.y, planted.pred, sensitive_features=sf)
    )


def test_bootstrap_intervals_are_reproducible_and_bracket_the_estimate(planted: Planted) -> None:
    kw = {"sensitive_features": {"A": planted.a[:400]}, "n_boot": 100, "random_state": 3}
    rep = ev.fairness(planted.y[:400], planted.pred[:400], **kw)  # type: ignore[arg-type]
    again = ev.fairness(planted.y[:400], planted.pred[:400], **kw)  # type: ignore[arg-type]
    assert rep.intervals == again.intervals
    lo, hi = rep.intervals["difference.selection_rate"]
    assert lo is not None and hi is not None and 0 < lo < hi
    assert lo <= rep.differences["selection_rate"] <= hi  # type: ignore[operator]
    glo, ghi = rep.group("A=b").intervals["selection_rate"]
    assert glo is not None and ghi is not None
    assert glo < rep.by_group["A=b"]["selection_rate"] < ghi  # type: ignore[operator]


def test_small_groups_are_warned_about(planted: Planted) -> None:
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a}, min_group_size=600)
    assert len(rep.warnings) == 1 and "A=b" in rep.warnings[0]
    assert ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a}).warnings == ()


def test_report_round_trips_through_strict_json(planted: Planted) -> None:
    pred = planted.pred.copy()
    pred[planted.a == "b"] = 0  # nothing selected in group b: its precision is undefined -> null
    rep = ev.fairness(planted.y, pred, sensitive_features={"A": planted.a}, n_boot=5)
    assert rep.by_group["A=b"]["precision"] is None
    text = json.dumps(rep.to_dict(), allow_nan=False)
    assert ev.FairnessReport.from_dict(json.loads(text)) == rep


def test_string_labels_need_a_positive_label(planted: Planted) -> None:
    labels = np.where(planted.y == 1, "approved", "denied")
    with pytest.raises(NonBinaryLabelError) as exc:
        ev.fairness(labels, planted.pred, sensitive_features={"A": planted.a})
    assert exc.value.column == "y_true"
    preds = np.where(planted.pred == 1, "approved", "denied")
    rep = ev.fairness(labels, preds, sensitive_features={"A": planted.a}, pos_label="approved")
    base = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    assert rep.disparities == base.disparities


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda y, p, s: (np.where(y == 1, 2, 0), p, s), NonBinaryLabelError),
        (lambda y, p, s: (y.astype(float) + np.r_[np.nan, np.zeros(len(y) - 1)], p, s), MissingValueError),
        (lambda y, p, s: (y, p.astype(float) * 0.7, s), NonBinaryLabelError),
        (lambda y, p, s: (y, p[:-1], s), LengthMismatchError),
        (lambda y, p, s: (y, p, {"A": np.full(len(y), "a")}), GroupError),
        (lambda y, p, s: (y, p, {"A": np.r_[[""], s["A"][1:]]}), MissingValueError),
        (lambda y, p, s: (y, p, {"A": np.r_[[None], s["A"][1:]]}), MissingValueError),
        (lambda y, p, s: (y, p, {"A": s["A"][:-3]}), LengthMismatchError),
        (lambda y, p, s: (y, p, {}), GroupError),
    ],
)
def test_hostile_input_gives_typed_errors(planted: Planted, mutate: object, error: type[CairnError]) -> None:
    y, p, s = mutate(planted.y, planted.pred, {"A": planted.a})  # type: ignore[operator]
    with pytest.raises(error) as exc:
        ev.fairness(y, p, sensitive_features=s)
    assert isinstance(exc.value, UsageError)
    assert exc.value.to_dict()["code"] == error.code


def test_bad_options_are_usage_errors(planted: Planted) -> None:
    with pytest.raises(UsageError):
        ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a}, n_boot=-1)
    with pytest.raises(UsageError):
        ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a}, ci=(0.9, 0.1))


@pytest.mark.parametrize(
    "data",
    [{}, {"groups": "x"}, {"sensitive_features": [], "n": 1, "overall": {}, "groups": [{"group": 1}]}],
)
def test_malformed_stored_report_is_a_format_error(data: dict[str, object]) -> None:
    with pytest.raises(FormatError):
        ev.FairnessReport.from_dict(data)


def test_nan_from_fairlearn_never_reaches_json() -> None:
    rep = ev.fairness([1, 1, 0, 0], [1, 0, 0, 0], sensitive_features={"g": ["p", "p", "q", "q"]})
    assert rep.by_group["g=q"]["precision"] is None  # nothing predicted positive in q
    assert all(v is None or math.isfinite(v) for v in rep.disparities.values())


def test_numeric_and_object_label_paths_agree(planted: Planted) -> None:
    as_objects = np.array([str(v) for v in planted.y], dtype=object)
    fast = ev.fairness(planted.y.astype(float), planted.pred, sensitive_features={"A": planted.a})
    slow = ev.fairness(as_objects, planted.pred.astype(bool), sensitive_features={"A": planted.a})
    assert fast == slow


def test_too_many_groups_is_a_limit_error(planted: Planted) -> None:
    from cairn.errors import LimitExceededError

    ids = np.arange(len(planted.y)).astype(str)  # an identifier column is not a sensitive feature
    with pytest.raises(LimitExceededError):
        ev.fairness(planted.y, planted.pred, sensitive_features={"id": ids})


@pytest.mark.parametrize("intersectional", [False, True])
def test_bootstrap_core_equals_fairlearn_on_a_resample(planted: Planted, intersectional: bool) -> None:
    from cairn.evaluate.bootstrap import disparities, group_rates

    idx = np.random.default_rng(5).integers(0, len(planted.y), len(planted.y))  # one bootstrap resample
    y, p = planted.y[idx], planted.pred[idx]
    sf = pd.DataFrame({"A": planted.a[idx], "B": planted.b[idx]})
    if not intersectional:
        sf = sf[["A"]]
    labels, codes = np.unique(sf.astype(str).agg("|".join, axis=1).to_numpy(), return_inverse=True)
    rates = group_rates(y.astype(float), p.astype(float), codes, len(labels))
    rep = ev.fairness(y, p, sensitive_features=sf)
    for name, value in disparities(rates).items():
        assert value == pytest.approx(rep.disparities[name]), name
    for i, label in enumerate(labels):
        group = rep.group(",".join(f"{c}={v}" for c, v in zip(sf.columns, label.split("|"), strict=True)))
        for metric, value in group.metrics.items():
            assert rates[metric][i] == pytest.approx(value), (label, metric)


def test_disparity_intervals_bracket_the_estimates(planted: Planted) -> None:
    rep = ev.fairness(
        planted.y, planted.pred, sensitive_features={"A": planted.a}, n_boot=300, random_state=1
    )
    for name, value in rep.disparities.items():
        lo, hi = rep.intervals[f"disparity.{name}"]
        assert lo is not None and hi is not None and value is not None
        assert lo < value < hi, name
    lo, hi = rep.intervals["disparity.demographic_parity_difference"]
    assert lo > 0.15  # the planted disparity is clearly not noise
    for metric, value in rep.overall.items():
        olo, ohi = rep.intervals[f"overall.{metric}"]
        assert olo is not None and ohi is not None and olo < value < ohi  # type: ignore[operator]
