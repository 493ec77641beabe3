"""``cairn eval``: fairness evaluation of a checkpoint, threshold mitigation, and base-vs-derived compare.

Argument parsing and rendering only; the work is in :mod:`cairn.evaluate`, imported inside the handlers
so that other commands do not pay for pandas and fairlearn.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, table
from cairn.evaluate.mitigation import CONSTRAINTS

__all__ = ["register"]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _add_data_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--data", type=Path, required=required, help="evaluation table (.csv or .parquet)")
    p.add_argument("--label", required=required, help="column with the true 0/1 label")
    p.add_argument("--pos-label", help="label value that counts as positive (when labels are not 0/1)")
    p.add_argument(
        "--sensitive",
        type=_csv,
        required=required,
        help="sensitive column(s), comma-separated: intersectional",
    )
    p.add_argument("--adapter", choices=["predictions", "torch", "transformers"], help="default: inferred")
    p.add_argument(
        "--prediction-column", default="prediction", help="column in --predictions (default prediction)"
    )
    p.add_argument("--score-column", help="column in --predictions with the positive-class score")
    p.add_argument(
        "--entry-point", help="torch adapter: package.module:Class called with config.json as kwargs"
    )
    p.add_argument("--features", type=_csv, default=[], help="torch adapter: numeric input columns")
    p.add_argument("--text", help="transformers adapter: the text column")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="score threshold for a positive (default 0.5)"
    )
    p.add_argument("--n-boot", type=int, default=0, help="bootstrap samples for confidence intervals")
    p.add_argument("--min-group-size", type=int, default=30, help="warn about groups smaller than this")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("eval", help="evaluate checkpoints (fairness, compare)")
    sub = parser.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)

    f = sub.add_parser("fairness", help="per-group metrics and disparities; recorded in the checkpoint")
    f.add_argument("checkpoint", type=Path, help="checkpoint directory (results are written into it)")
    _add_data_args(f, required=True)
    f.add_argument("--predictions", type=Path, help="predictions file, one row per data row")
    f.add_argument("--mitigate", choices=["threshold"], help="fit per-group thresholds (fairlearn)")
    f.add_argument(
        "--constraint", default="demographic_parity", choices=CONSTRAINTS, help="mitigation constraint"
    )
    f.add_argument("--out", type=Path, help="directory of the derived (mitigated) artifact")
    f.add_argument("--html", type=Path, help="also write a self-contained HTML report here")
    f.add_argument("--no-record", action="store_true", help="do not write fairness.json or the model card")
    f.add_argument("--templates", type=Path, help="text models: counterfactual templates with {identity}")
    f.add_argument("--terms", type=Path, help='text models: JSON {"group": ["term", ...]} for --templates')
    f.add_argument("--placeholder", default="{identity}", help="placeholder in --templates")
    f.set_defaults(handler=run_fairness)

    c = sub.add_parser("compare", help="which fairness metrics regressed from BASE to DERIVED")
    c.add_argument("base", type=Path)
    c.add_argument("derived", type=Path)
    c.add_argument("--tolerance", type=float, default=0.0, help="changes within this are not regressions")
    _add_data_args(c, required=False)
    c.add_argument("--predictions", type=Path, help="predictions file of BASE (with --data)")
    c.add_argument("--derived-predictions", type=Path, help="predictions file of DERIVED (with --data)")
    c.set_defaults(handler=run_compare)

    p = sub.add_parser("counterfactual", help="swap identity terms in templated sentences (text models)")
    p.add_argument("checkpoint", type=Path, help="transformers text-classification model directory")
    p.add_argument("--templates", type=Path, required=True, help="one sentence per line with {identity}")
    p.add_argument("--terms", type=Path, required=True, help='JSON: {"group": ["term", ...], ...}')
    p.add_argument("--placeholder", default="{identity}", help="placeholder in the templates")
    p.add_argument("--threshold", type=float, default=0.5, help="score threshold for a positive")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_counterfactual)


def _spec(args: argparse.Namespace, predictions: Path | None) -> Any:
    from cairn.evaluate.pipeline import AdapterSpec

    kind = args.adapter or ("predictions" if predictions else "torch" if args.entry_point else "transformers")
    return AdapterSpec(
        kind=kind,
        predictions=predictions,
        prediction_column=args.prediction_column,
        score_column=args.score_column,
        entry_point=args.entry_point,
        features=tuple(args.features),
        text_column=args.text,
        threshold=args.threshold,
    )


def _fmt(v: object) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _human_report(rep: dict[str, Any], title: str) -> str:
    from cairn.evaluate.report import GROUP_METRICS

    rated = [m for m in GROUP_METRICS if m != "count"]
    rows = [[g["label"], g["count"], *(_fmt(g["metrics"].get(m)) for m in rated)] for g in rep["groups"]]
    rows.append(["(overall)", rep["n"], *(_fmt(rep["overall"].get(m)) for m in rated)])
    lines = [title, table(["group", "count", "acc", "sel", "tpr", "fpr", "prec"], rows), ""]
    for k, v in rep["disparities"].items():
        ci = rep["intervals"].get(f"disparity.{k}")
        lines.append(f"{k}: {_fmt(v)}" + (f"  [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
    lines += [f"warning: {w}" for w in rep["warnings"]]
    return "\n".join(lines)


def _probes(args: argparse.Namespace) -> tuple[Path, Path] | None:
    from cairn.errors import UsageError

    if (args.templates is None) != (args.terms is None):
        raise UsageError("give --templates and --terms together")
    return None if args.templates is None else (args.templates, args.terms)


def run_fairness(args: argparse.Namespace) -> int:
    from cairn.evaluate.pipeline import evaluate_checkpoint

    ev = evaluate_checkpoint(
        args.checkpoint,
        data=args.data,
        label=args.label,
        sensitive=args.sensitive,
        adapter=_spec(args, args.predictions),
        pos_label=args.pos_label,
        n_boot=args.n_boot,
        min_group_size=args.min_group_size,
        mitigate=args.mitigate,
        constraint=args.constraint,
        derived_out=args.out,
        record=not args.no_record,
        probes=_probes(args),
        placeholder=args.placeholder,
    )
    if args.html:
        from cairn.evaluate.html import write_html

        write_html(args.html, ev.record)

    def human(rec: dict[str, Any]) -> str:
        text = _human_report(rec["report"], f"fairness of {rec['checkpoint']} on {rec['dataset']['name']}")
        if rec["counterfactual"]:
            cf = rec["counterfactual"]
            text += (
                f"\n\ncounterfactual ({cf['n_templates']} templates): flip rate {cf['flip_rate']:.4f}, "
                f"mean spread {cf['mean_spread']:.4f}, max spread {cf['max_spread']:.4f}"
            )
        if rec["mitigation"]:
            m = rec["mitigation"]
            text += "\n\n" + _human_report(m["report"], f"after threshold mitigation ({m['constraint']})")
            text += f"\nderived artifact: {ev.derived}"
        if ev.record_path:
            text += f"\nrecorded: {ev.record_path}"
        return text

    emit(ev.record, as_json=args.json, human=human)
    return EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from cairn.errors import UsageError
    from cairn.evaluate.compare import compare, same_data
    from cairn.evaluate.record import read_fairness
    from cairn.evaluate.report import FairnessReport

    if args.data is not None:
        from cairn.evaluate.pipeline import evaluate_checkpoint

        if not args.label or not args.sensitive:
            raise UsageError("with --data, give --label and --sensitive too")
        if (args.predictions is None) != (args.derived_predictions is None):
            raise UsageError("give both --predictions and --derived-predictions, or neither")
        kw = {
            "data": args.data,
            "label": args.label,
            "sensitive": args.sensitive,
            "pos_label": args.pos_label,
        }
        b = evaluate_checkpoint(args.base, adapter=_spec(args, args.predictions), record=False, **kw)
        d = evaluate_checkpoint(
            args.derived, adapter=_spec(args, args.derived_predictions), record=False, **kw
        )
        base, derived = b.report, d.report
    else:
        brec, drec = read_fairness(args.base), read_fairness(args.derived)
        same_data(brec, drec)
        base, derived = FairnessReport.from_dict(brec["report"]), FairnessReport.from_dict(drec["report"])
    result = compare(base, derived, tolerance=args.tolerance)

    def human(data: dict[str, Any]) -> str:
        rows = [
            [
                c["metric"],
                c["group"] or "(all)",
                _fmt(c["base"]),
                _fmt(c["derived"]),
                _fmt(c["delta"]),
                "REGRESSED" if c["regressed"] else "",
            ]
            for c in data["changes"]
        ]
        head = f"{len(data['regressed'])} metric(s) regressed from {args.base} to {args.derived}"
        return head + "\n" + table(["metric", "group", "base", "derived", "delta", ""], rows)

    emit(result.to_dict(), as_json=args.json, human=human)
    return EXIT_NEGATIVE if result.regressions else EXIT_OK


def run_counterfactual(args: argparse.Namespace) -> int:
    from cairn.evaluate.adapters import text_scorer
    from cairn.evaluate.counterfactual import load_probe_files, probe

    templates, terms = load_probe_files(args.templates, args.terms)
    report = probe(
        text_scorer(args.checkpoint), templates, terms, placeholder=args.placeholder, threshold=args.threshold
    )

    def human(data: dict[str, Any]) -> str:
        lines = [
            f"{data['n_templates']} templates, groups {', '.join(data['groups'])}",
            f"flip rate: {data['flip_rate']:.4f}  mean spread: {data['mean_spread']:.4f}  "
            f"max spread: {data['max_spread']:.4f}",
            "mean score by group: " + ", ".join(f"{g}={v:.4f}" for g, v in data["group_means"].items()),
            "largest changes:",
        ]
        lines += [f"  {r['spread']:.4f}  {r['template']}" for r in data["worst"]]
        return "\n".join(lines)

    emit(report.to_dict(), as_json=args.json, human=human)
    return EXIT_OK
