"""A self-contained HTML fairness report: tables and inline SVG bar charts, no script, nothing fetched.

Every string that came from the user or the data (checkpoint, file and column names, group values,
warnings) goes through :func:`html.escape`; numbers are formatted by us. The page has no ``<script>``, no
external stylesheet, image or font.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cairn.evaluate.record import _write_text_atomic
from cairn.evaluate.report import GROUP_METRICS

__all__ = ["render_html", "write_html"]

_BAR_W = 320
_ROW_H = 22
_LABEL_W = 220

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.warn{color:#a40}"
    "svg text{font-size:12px;font-family:system-ui,sans-serif}"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{float(v):.4f}"


def _chart(metric: str, groups: Sequence[Mapping[str, Any]], color: str) -> str:
    height = _ROW_H * len(groups) + 24
    width = _LABEL_W + _BAR_W + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(metric)} by group">',
        f'<text x="0" y="14" font-weight="bold">{_e(metric)}</text>',
    ]
    for i, g in enumerate(groups):
        y = 24 + i * _ROW_H
        value = g["metrics"].get(metric)
        w = 0 if value is None else max(0.0, min(1.0, float(value))) * _BAR_W
        parts.append(f'<text x="0" y="{y + 14}">{_e(g["label"])}</text>')
        parts.append(
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{_ROW_H - 6}" fill="{color}"/>'
        )
        parts.append(f'<text x="{_LABEL_W + w + 4:.1f}" y="{y + 14}">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _section(title: str, report: Mapping[str, Any], color: str) -> str:
    rated = [m for m in GROUP_METRICS if m != "count"]
    head = "".join(f"<th>{_e(m)}</th>" for m in ["group", "count", *rated])
    rows = [
        "<tr>"
        + f"<td>{_e(g['label'])}</td><td>{int(g['count'])}</td>"
        + "".join(f"<td>{_fmt(g['metrics'].get(m))}</td>" for m in rated)
        + "</tr>"
        for g in report["groups"]
    ]
    intervals = report.get("intervals", {})

    def ci(k: str) -> str:
        lo_hi = intervals.get(f"disparity.{k}")
        return f"[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else ""

    disp = "".join(
        f"<tr><td>{_e(k)}</td><td>{_fmt(v)}</td><td>{ci(k)}</td></tr>"
        for k, v in report["disparities"].items()
    )
    warns = "".join(f'<p class="warn">{_e(w)}</p>' for w in report.get("warnings", ()))
    charts = "".join(
        f"<div>{_chart(m, list(report['groups']), color)}</div>"
        for m in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
    )
    return (
        f"<h2>{_e(title)}</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
        f"<table><tr><th>disparity</th><th>value</th><th>interval</th></tr>{disp}</table>{warns}{charts}"
    )


def render_html(record: Mapping[str, Any]) -> str:
    """The HTML page for a ``fairness.json`` record."""
    ds = record["dataset"]
    title = f"Fairness of {record['checkpoint']} on {ds['name']}"
    meta = (
        f"<p>label <code>{_e(ds['label'])}</code>, sensitive features "
        f"<code>{_e(', '.join(ds['sensitive_features']))}</code>, {int(ds['rows'])} rows, "
        f"data sha256 <code>{_e(ds['sha256'])}</code></p>"
    )
    body = _section(
        "Before mitigation" if record.get("mitigation") else "Results", record["report"], "#4a7ab5"
    )
    cf = record.get("counterfactual")
    if cf:
        means = [{"label": g, "metrics": {"mean score": v}} for g, v in cf["group_means"].items()]
        worst = "".join(
            f"<tr><td>{_e(r['template'])}</td><td>{_fmt(r['spread'])}</td><td>{_e(r['flipped'])}</td></tr>"
            for r in cf["worst"]
        )
        body += (
            f"<h2>Counterfactual probing ({int(cf['n_templates'])} templates from {_e(cf['templates'])})</h2>"
            f"<p>flip rate {_fmt(cf['flip_rate'])}, mean spread {_fmt(cf['mean_spread'])}, "
            f"max spread {_fmt(cf['max_spread'])}</p>{_chart('mean score', means, '#8a5ab5')}"
            f"<table><tr><th>template</th><th>spread</th><th>flipped</th></tr>{worst}</table>"
        )
    mitigation = record.get("mitigation")
    if mitigation:
        body += _section(
            f"After threshold mitigation ({mitigation['constraint']})", mitigation["report"], "#3a9a5b"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{meta}{body}</body></html>\n"
    )


def write_html(path: str | Path, record: Mapping[str, Any]) -> Path:
    out = Path(path)
    _write_text_atomic(out, render_html(record))
    return out
