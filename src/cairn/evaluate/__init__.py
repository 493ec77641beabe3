"""Fairness evaluation of checkpoints, recorded with the checkpoint.

Data flows: a table (:mod:`~cairn.evaluate.data`) and a prediction adapter
(:mod:`~cairn.evaluate.adapters`: predictions file, PyTorch module, transformers classifier) give
``(y_true, y_pred, groups)``; :func:`fairness` turns them into a frozen :class:`FairnessReport` on
fairlearn's MetricFrame; :mod:`~cairn.evaluate.mitigation` fits per-group thresholds (kept as JSON);
:mod:`~cairn.evaluate.record` writes ``fairness.json`` and model-card ``model-index`` entries;
:func:`compare` finds regressions between a base and a derived model; :mod:`~cairn.evaluate.counterfactual`
probes text models with identity terms swapped. fairlearn, pandas, torch and transformers are imported
only inside the functions that need them.
"""

from __future__ import annotations

from cairn.evaluate.compare import Change, Comparison, compare
from cairn.evaluate.counterfactual import CounterfactualReport, ProbeResult, probe
from cairn.evaluate.mitigation import GroupThresholds, fit_thresholds
from cairn.evaluate.pipeline import AdapterSpec, Evaluation, evaluate_checkpoint
from cairn.evaluate.report import FairnessReport, GroupResult, fairness

__all__ = [
    "AdapterSpec",
    "Change",
    "Comparison",
    "CounterfactualReport",
    "Evaluation",
    "FairnessReport",
    "GroupResult",
    "GroupThresholds",
    "ProbeResult",
    "compare",
    "evaluate_checkpoint",
    "fairness",
    "fit_thresholds",
    "probe",
]
