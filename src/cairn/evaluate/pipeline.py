"""One evaluation of a checkpoint, end to end: data → predictions → report → (mitigation) → records.

:func:`evaluate_checkpoint` is what ``cairn eval fairness`` calls: it reads the data table, gets
predictions through the adapter the :class:`AdapterSpec` names, computes the :class:`FairnessReport`,
optionally fits threshold mitigation and writes the derived artifact, then records ``fairness.json`` and
the model-card ``model-index`` entries in the checkpoint directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.errors import NotFoundError, UsageError
from cairn.evaluate.adapters import Predictions, predictions_file, torch_module, transformers_classifier
from cairn.evaluate.data import binary, load_table, require_columns, sensitive_frame
from cairn.evaluate.derived import Derived, load_derived, verify_base
from cairn.evaluate.mitigation import GroupThresholds, fit_thresholds
from cairn.evaluate.record import (
    FAIRNESS_FILE,
    SCHEMA,
    THRESHOLDS_FILE,
    check_model_card,
    file_digests,
    model_index_result,
    now,
    update_model_card,
    write_json_atomic,
)
from cairn.evaluate.report import FairnessReport, fairness
from cairn.format.hashing import sha256_file

__all__ = ["ADAPTERS", "AdapterSpec", "Evaluation", "evaluate_checkpoint"]

ADAPTERS = ("predictions", "torch", "transformers")


@dataclass(frozen=True)
class AdapterSpec:
    """How to get predictions: ``kind`` is one of :data:`ADAPTERS`; the other fields are its options."""

    kind: str
    predictions: Path | None = None
    prediction_column: str = "prediction"
    score_column: str | None = None
    entry_point: str | None = None
    features: tuple[str, ...] = ()
    text_column: str | None = None
    threshold: float = 0.5


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation produced and where it was recorded."""

    report: FairnessReport
    record: dict[str, Any]
    record_path: Path | None
    mitigated: FairnessReport | None = None
    thresholds: GroupThresholds | None = None
    derived: Path | None = None


def _predict(
    spec: AdapterSpec, checkpoint: Path, frame: Any, scorer: Any = None, pos_label: str | None = None
) -> Predictions:
    if spec.kind == "predictions":
        if spec.predictions is None:
            raise UsageError("the predictions adapter needs --predictions FILE")
        return predictions_file(
            spec.predictions,
            rows=len(frame),
            column=spec.prediction_column,
            score_column=spec.score_column,
            threshold=spec.threshold,
            pos_label=pos_label,
        )
    if spec.kind == "torch":
        if not spec.entry_point:
            raise UsageError("the torch adapter needs --entry-point package.module:Class")
        return torch_module(
            checkpoint, frame, entry_point=spec.entry_point, features=spec.features, threshold=spec.threshold
        )
    if spec.kind == "transformers":
        if not spec.text_column:
            raise UsageError("the transformers adapter needs --text COLUMN")
        return transformers_classifier(
            checkpoint, frame, text_column=spec.text_column, threshold=spec.threshold, scorer=scorer
        )
    raise UsageError(f"unknown adapter {spec.kind!r}; choose one of {', '.join(ADAPTERS)}")


def _apply_derived(derived: Derived, preds: Predictions, sf: Any) -> Predictions:
    """Labels of a threshold-mitigated artifact: its per-group rules over the base's scores."""
    th = derived.thresholds
    if tuple(sf.columns) != th.sensitive_features:
        raise UsageError(
            f"{derived.path} was mitigated over sensitive features {list(th.sensitive_features)}, "
            f"not {list(sf.columns)}"
        )
    if preds.scores is None:
        raise UsageError("a mitigated artifact needs scores: give --score-column or a model adapter")
    groups = [
        ",".join(f"{c}={v}" for c, v in zip(sf.columns, row, strict=True))
        for row in sf.itertuples(index=False)
    ]
    labels = th.apply(preds.scores, groups, random_state=derived.random_state)
    source = {**preds.source, "thresholds": str(derived.path / THRESHOLDS_FILE)}
    return Predictions(labels, preds.scores, source)


def _published(source: Mapping[str, str]) -> dict[str, str]:
    """The prediction source as recorded: file and directory names only, no local absolute paths."""
    return {k: Path(v).name if k in {"path", "checkpoint", "thresholds"} else v for k, v in source.items()}


def _task(adapter: AdapterSpec) -> str:
    return "text-classification" if adapter.kind == "transformers" else "tabular-classification"


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    data: str | Path,
    label: str,
    sensitive: Sequence[str],
    adapter: AdapterSpec,
    pos_label: str | None = None,
    n_boot: int = 0,
    min_group_size: int = 30,
    mitigate: str | None = None,
    constraint: str = "demographic_parity",
    derived_out: str | Path | None = None,
    record: bool = True,
    random_state: int = 0,
    probes: tuple[str | Path, str | Path] | None = None,
    placeholder: str = "{identity}",
) -> Evaluation:
    """Evaluate ``checkpoint`` on ``data`` and record the result (see the module docstring)."""
    if not 0.0 <= adapter.threshold <= 1.0:
        raise UsageError(f"threshold must be between 0 and 1, got {adapter.threshold}")
    if min_group_size < 0:
        raise UsageError(f"min_group_size must be >= 0, got {min_group_size}")
    root = Path(checkpoint).resolve()
    if not root.is_dir():
        raise NotFoundError(f"checkpoint directory {root} does not exist")
    if not sensitive:
        raise UsageError("give at least one sensitive column")
    if record:
        check_model_card(root)  # a card we cannot update fails the run before anything is written
    derived_dir = (
        Path(derived_out).resolve() if derived_out else root.with_name(f"{root.name}-threshold-{constraint}")
    )
    if mitigate is not None and derived_dir.is_dir():
        check_model_card(derived_dir)
    frame = load_table(data)
    require_columns(frame, [label, *sensitive])
    y_true = binary(frame[label].to_numpy(dtype=object), column=label, pos_label=pos_label)
    sf = sensitive_frame(frame[list(sensitive)], rows=len(frame))
    if probes is not None and adapter.kind != "transformers":
        raise UsageError("counterfactual probing needs a text model (the transformers adapter)")
    derived_from = load_derived(root)
    model_root = root
    if derived_from is not None:
        if mitigate is not None:
            raise UsageError(f"{root} is already a mitigated artifact; mitigate its base instead")
        if adapter.kind != "predictions":
            verify_base(derived_from)
            model_root = derived_from.base
    scorer = None
    if adapter.kind == "transformers":
        from cairn.evaluate.adapters import text_scorer

        scorer = text_scorer(model_root)
    preds = _predict(adapter, model_root, frame, scorer, pos_label)
    if derived_from is not None:
        preds = _apply_derived(derived_from, preds, sf)
    report = fairness(
        y_true,
        preds.labels,
        sensitive_features=sf,
        n_boot=n_boot,
        min_group_size=min_group_size,
        random_state=random_state,
    )
    size, digest = sha256_file(data)
    dataset = {
        "name": Path(data).name,
        "sha256": digest,
        "bytes": size,
        "rows": len(frame),
        "label": label,
        "pos_label": pos_label,
        "sensitive_features": list(sensitive),
    }
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "created": now(),
        "checkpoint": root.name,
        "dataset": dataset,
        "predictions": _published(preds.source),
        "report": report.to_dict(),
        "mitigation": None,
        "counterfactual": None,
    }
    if derived_from is not None:
        rec["lineage"] = {
            "base": derived_from.base.name,
            "relation": "threshold-postprocessing",
            "base_files": derived_from.base_files,
        }
    if probes is not None and scorer is not None:
        from cairn.evaluate.counterfactual import load_probe_files, probe

        templates, terms = load_probe_files(*probes)
        cf = probe(scorer, templates, terms, placeholder=placeholder, threshold=adapter.threshold)
        rec["counterfactual"] = {"templates": Path(probes[0]).name, **cf.to_dict()}
    mitigated = thresholds = derived = None
    if mitigate is not None:
        if mitigate != "threshold":
            raise UsageError(f"unknown mitigation {mitigate!r}; the one available is 'threshold'")
        if preds.scores is None:
            raise UsageError("threshold mitigation needs scores: give --score-column or a model adapter")
        groups = [
            ",".join(f"{c}={v}" for c, v in zip(sf.columns, row, strict=True))
            for row in sf.itertuples(index=False)
        ]
        thresholds = fit_thresholds(
            y_true, preds.scores, groups, sensitive_features=tuple(sensitive), constraint=constraint
        )
        y_after = thresholds.apply(preds.scores, groups, random_state=random_state)
        mitigated = fairness(
            y_true,
            y_after,
            sensitive_features=sf,
            n_boot=n_boot,
            min_group_size=min_group_size,
            random_state=random_state,
        )
        derived = derived_dir
        _write_derived(root, derived, thresholds, rec, mitigated, preds, random_state, _task(adapter))
        rec["mitigation"] = {
            "method": "threshold",
            "constraint": constraint,
            "artifact": derived.name,
            "report": mitigated.to_dict(),
        }
    record_path = None
    if record:
        record_path = root / FAIRNESS_FILE
        write_json_atomic(record_path, rec)
        result = model_index_result(report, dataset=Path(data).stem, task_type=_task(adapter))
        cf_rec = rec["counterfactual"]
        if cf_rec:
            for key in ("flip_rate", "mean_spread", "max_spread"):
                result["metrics"].append(
                    {
                        "type": f"counterfactual_{key}",
                        "value": round(cf_rec[key], 6),
                        "name": f"Counterfactual {key.replace('_', ' ')} ({cf_rec['templates']})",
                        "args": {"templates": cf_rec["templates"], "groups": list(cf_rec["groups"])},
                    }
                )
        update_model_card(root, result, model_name=root.name)
        _list_in_manifest(root, report, rec)
    return Evaluation(report, rec, record_path, mitigated, thresholds, derived)


def _list_in_manifest(root: Path, report: FairnessReport, rec: dict[str, Any]) -> None:
    """A cairn checkpoint keeps every file in its manifest: list the report and card, summarise the result."""
    from cairn.checkpoint import attach
    from cairn.format.manifest import MANIFEST_NAME

    if not (root / MANIFEST_NAME).is_file():
        return
    summary = {
        "file": FAIRNESS_FILE,
        "created": rec.get("created"),
        "dataset": (rec.get("dataset") or {}).get("name"),
        "demographic_parity_difference": report.demographic_parity_difference,
        "equalized_odds_difference": report.equalized_odds_difference,
    }
    attach(root, [FAIRNESS_FILE, "README.md"], metadata={"evaluations": {"fairness": summary}})


def _write_derived(
    base: Path,
    out: Path,
    thresholds: GroupThresholds,
    base_record: dict[str, Any],
    mitigated: FairnessReport,
    preds: Predictions,
    random_state: int,
    task: str,
) -> None:
    if out.resolve() == base.resolve():
        raise UsageError("the derived artifact must not be written over the original checkpoint")
    out.mkdir(parents=True, exist_ok=True)
    lineage = {"base": base.name, "relation": "threshold-postprocessing", "base_files": file_digests(base)}
    write_json_atomic(
        out / THRESHOLDS_FILE,
        {
            "schema": "cairn.thresholds/1",
            "created": now(),
            "lineage": lineage,
            "scores": _published(preds.source),
            "random_state": random_state,
            "thresholds": thresholds.to_dict(),
        },
    )
    rec = dict(base_record)
    rec.update(
        checkpoint=out.name,
        created=now(),
        predictions={"adapter": "thresholds", "base": base.name, "file": THRESHOLDS_FILE},
        report=mitigated.to_dict(),
        lineage=lineage,
        mitigation=None,
        counterfactual=None,
    )
    write_json_atomic(out / FAIRNESS_FILE, rec)
    dataset = str(base_record["dataset"]["name"]).rsplit(".", 1)[0]
    result = model_index_result(mitigated, dataset=dataset, task_type=task)
    update_model_card(
        out,
        result,
        model_name=out.name,
        extra={"base_model": base.name, "base_model_relation": "adapter", "tags": ["fairness-mitigation"]},
    )
