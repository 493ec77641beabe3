"""Benchmark: cairn.evaluate.fairness against calling fairlearn directly, and JSON thresholds vs fairlearn.

Baselines, in the same run: (1) one fairlearn MetricFrame with the same six metrics plus the six scalar
disparity functions — what a user would write by hand; cairn adds validation and freezing on top, so the
ratio is its overhead. (2) Bootstrap intervals: MetricFrame(n_boot=...) against cairn's bincount
bootstrap, which also covers the six disparities (on a 20,000-row slice, n_boot=20; fairlearn with
two metrics, cairn with all five rates, differences and disparities).
(3) ThresholdOptimizer.predict against GroupThresholds.apply from stored JSON.
Run: .venv/bin/python bench/eval_fairness.py [rows]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np


def best(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    import fairlearn.metrics as fm
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, precision_score

    from cairn.evaluate import fairness, fit_thresholds
    from cairn.evaluate.bootstrap import bootstrap

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rng = np.random.default_rng(0)
    a = rng.choice(["a", "b", "c"], n)
    x = rng.normal(size=n) + (a == "b") * 0.8
    y = (x + rng.normal(scale=0.5, size=n) > 0.6).astype(int)
    clf = LogisticRegression().fit(x.reshape(-1, 1), y)
    score = clf.predict_proba(x.reshape(-1, 1))[:, 1]
    pred = (score >= 0.5).astype(int)

    def direct() -> None:
        metrics = {
            "accuracy": accuracy_score,
            "selection_rate": fm.selection_rate,
            "true_positive_rate": fm.true_positive_rate,
            "false_positive_rate": fm.false_positive_rate,
            "precision": partial(precision_score, zero_division=np.nan),
            "count": fm.count,
        }
        mf = fm.MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=a)
        mf.difference(), mf.ratio()
        for name in ("demographic_parity", "equalized_odds", "equal_opportunity"):
            getattr(fm, f"{name}_difference")(y, pred, sensitive_features=a)
            getattr(fm, f"{name}_ratio")(y, pred, sensitive_features=a)

    base = best(direct)
    ours = best(lambda: fairness(y, pred, sensitive_features={"A": a}))
    print(f"rows={n}")
    print(
        f"metrics   fairlearn direct {base * 1e3:8.1f} ms   cairn.fairness {ours * 1e3:8.1f} ms   ratio {ours / base:.2f}"
    )

    m = 20_000
    boot_metrics = {"selection_rate": fm.selection_rate, "true_positive_rate": fm.true_positive_rate}
    base = best(
        lambda: (
            fm.MetricFrame(
                metrics=boot_metrics,
                y_true=y[:m],
                y_pred=pred[:m],
                sensitive_features=a[:m],
                n_boot=20,
                ci_quantiles=[0.025, 0.975],
                random_state=0,
            ).by_group_ci
        ),
        repeat=1,
    )
    labels = [str(v) for v in a[:m]]
    ours = best(
        lambda: bootstrap(y[:m], pred[:m], labels, n_boot=20, ci=(0.025, 0.975), random_state=0), repeat=3
    )
    print(
        f"bootstrap MetricFrame n_boot  {base * 1e3:8.1f} ms   cairn bootstrap {ours * 1e3:8.1f} ms   ratio {ours / base:.3f}"
    )

    groups = [f"A={v}" for v in a]
    to = ThresholdOptimizer(estimator=clf, prefit=True, predict_method="predict_proba").fit(
        x.reshape(-1, 1), y, sensitive_features=groups
    )
    th = fit_thresholds(y, score, groups, sensitive_features=["A"])
    base = best(lambda: to.predict(x.reshape(-1, 1), sensitive_features=groups, random_state=0))
    ours = best(lambda: th.apply(score, groups, random_state=0))
    print(
        f"apply     fairlearn predict  {base * 1e3:8.1f} ms   JSON thresholds {ours * 1e3:8.1f} ms   ratio {ours / base:.2f}"
    )


if __name__ == "__main__":
    main()
