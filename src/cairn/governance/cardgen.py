"""Write or update a model card from what cairn knows about a model directory.

The front matter keeps every existing field (round-trip) and fills what can be derived: ``license`` from a
recognised LICENSE file, ``base_model`` / ``base_model_relation`` from ``adapter_config.json``, the Hub's
derived ``base_model:<relation>:<id>`` tags. The body keeps the author's text; cairn's own sections
(lineage, license obligations, training results from ``trainer_state.json``, training details from a
cairn checkpoint's ``cairn.json``) sit between
``<!-- cairn:begin NAME -->`` / ``<!-- cairn:end NAME -->`` markers and are replaced on every run. A card
with no body gets the standard template's headings (spec §1.3).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from cairn.governance.card import ModelCard, parse_card, render_card
from cairn.governance.check import CheckReport
from cairn.governance.lineage import LineageGraph, ModelSource

__all__ = [
    "TEMPLATE_SECTIONS",
    "CardUpdate",
    "TrustStatus",
    "build_card",
    "checkpoint_metadata",
    "checkpoint_summary",
    "training_summary",
]

TEMPLATE_SECTIONS = (
    "Model Details",
    "Uses",
    "Bias, Risks, and Limitations",
    "How to Get Started with the Model",
    "Training Details",
    "Evaluation",
    "Environmental Impact",
    "Technical Specifications",
    "Citation",
    "Model Card Contact",
)
_MAX_ROWS = 20


@dataclass(frozen=True)
class CardUpdate:
    metadata: dict[str, Any]
    body: str
    text: str  # the README as it will be written
    changed_fields: tuple[str, ...]


def _num(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def training_summary(source: ModelSource) -> str | None:
    """A Markdown table of the logged losses in ``trainer_state.json`` (or None when there is none)."""
    text = source.read_text("trainer_state.json")
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return "`trainer_state.json` is not valid JSON; no training results shown."
    history = doc.get("log_history") if isinstance(doc, dict) else None
    if not isinstance(history, list):
        return None
    rows = []
    for entry in history:
        if not isinstance(entry, dict):
            continue
        loss, eval_loss = _num(entry.get("loss")), _num(entry.get("eval_loss"))
        if loss is None and eval_loss is None:
            continue
        rows.append(
            (_num(entry.get("epoch")) or "", _num(entry.get("step")) or "", loss or "", eval_loss or "")
        )
    if not rows:
        return None
    if len(rows) > _MAX_ROWS:  # keep the first and last logged steps, evenly thinned in between
        step = (len(rows) - 1) / (_MAX_ROWS - 1)
        rows = [rows[round(i * step)] for i in range(_MAX_ROWS)]
    lines = ["| Epoch | Step | Training Loss | Validation Loss |", "|---|---|---|---|"]
    lines += [f"| {e} | {s} | {lo} | {ev} |" for e, s, lo, ev in rows]
    epochs = _num(doc.get("epoch")) if isinstance(doc, dict) else None
    return (f"Trained for {epochs} epochs.\n\n" if epochs else "") + "\n".join(lines)


def _cell(value: object, limit: int = 120) -> str:
    """A value as one Markdown table cell: no pipes or line breaks, bounded length."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checkpoint_metadata(source: ModelSource) -> dict[str, Any] | None:
    """The metadata of a cairn checkpoint's manifest (``cairn.json``), or None when there is none."""
    from cairn.errors import FormatError
    from cairn.format.manifest import MANIFEST_NAME, parse_manifest

    text = source.read_text(MANIFEST_NAME)
    if text is None:
        return None
    try:
        return dict(parse_manifest(text.encode("utf-8")).metadata)
    except FormatError:
        return None


def checkpoint_summary(meta: dict[str, Any]) -> str | None:
    """Training details from a cairn checkpoint's metadata: position, metrics, hyperparameters, data,
    code and environment, as Markdown tables."""
    rows: list[tuple[str, object]] = []
    for key, label in (("step", "Step"), ("epoch", "Epoch")):
        if meta.get(key) is not None:
            rows.append((label, meta[key]))
    for group, label in (("metrics", "Metric"), ("hyperparameters", "Hyperparameter")):
        values = meta.get(group)
        if isinstance(values, dict):
            rows += [(f"{label}: {k}", v) for k, v in list(values.items())[:_MAX_ROWS]]
    datasets = meta.get("datasets")
    for entry in datasets[:_MAX_ROWS] if isinstance(datasets, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            digest = entry.get("sha256")
            rows.append((f"Dataset: {entry['name']}", f"sha256 {digest}" if isinstance(digest, str) else "-"))
    code = meta.get("code")
    if isinstance(code, dict) and code.get("git_commit"):
        dirty = " (uncommitted changes)" if code.get("git_dirty") else ""
        rows.append(("Code", f"git {code['git_commit']}{dirty}"))
    env = meta.get("environment")
    if isinstance(env, dict):
        libs = env.get("libraries")
        described = ", ".join(f"{k} {v}" for k, v in libs.items()) if isinstance(libs, dict) else ""
        rows.append(("Environment", f"Python {env.get('python')}; {described}; device {env.get('device')}"))
    wall = meta.get("wall_time")
    if isinstance(wall, dict) and wall.get("saved_at"):
        rows.append(("Saved at", wall["saved_at"]))
    if not rows:
        return None
    lines = ["From the checkpoint's manifest (`cairn.json`):", "", "| Field | Value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


def _managed(body: str, name: str, content: str) -> str:
    block = f"<!-- cairn:begin {name} -->\n{content.strip()}\n<!-- cairn:end {name} -->"
    pattern = re.compile(
        rf"<!-- cairn:begin {re.escape(name)} -->.*?<!-- cairn:end {re.escape(name)} -->", re.S
    )
    if pattern.search(body):
        return pattern.sub(lambda _: block, body, count=1)
    return body.rstrip("\n") + "\n\n" + block + "\n"


def _lineage_text(graph: LineageGraph) -> str:
    lines = []
    for edge, parent in graph.parents_of(graph.root.ident):
        where = "" if parent else " (not found locally)"
        lines.append(f"- {edge.relation} of `{edge.ref}`{where}")
    return "\n".join(lines) or "No parent model is declared."


@dataclass(frozen=True)
class TrustStatus:
    """The security scan verdict of each file and the signature status, for the card's trust section.

    ``files``: (path, verdict, note) with verdict ``safe`` | ``caution`` | ``unsafe`` | ``error`` (could
    not be scanned) | ``skipped`` (not a model format) | ``unscanned``; ``source`` says where the facts
    come from (a local scan, or the hub's trust record of a commit)."""

    files: tuple[tuple[str, str, str], ...]
    signature: str
    source: str


def _trust_text(trust: TrustStatus) -> str:
    lines = [f"{trust.source}.", "", "| File | Scan verdict | Note |", "|---|---|---|"]
    lines += [f"| `{_cell(p)}` | {_cell(v)} | {_cell(n)} |" for p, v, n in trust.files]
    if not trust.files:
        lines = [f"{trust.source}: no files."]
    lines += ["", f"Signature: {trust.signature}"]
    return "\n".join(lines)


def _license_text(report: CheckReport) -> str:
    lines = [
        f"Declared license: `{report.license or 'none'}`. Terms inherited from: {', '.join(report.inherited) or 'none'}."
    ]
    lines.append(
        f"cairn license check: **{report.status.replace('_', ' ')}** (a screening aid, not legal advice)."
    )
    for title, items in (
        ("Conflicts", report.conflicts),
        ("Needs review", report.needs_review),
        ("Obligations", report.obligations),
    ):
        if items:
            lines.append(f"\n{title}:\n")
            lines += [f"- {'[' + f.status + '] ' if f.status else ''}{f.message}" for f in items]
    return "\n".join(lines)


def build_card(
    source: ModelSource,
    graph: LineageGraph,
    report: CheckReport,
    existing: ModelCard | None,
    *,
    trust: TrustStatus | None = None,
) -> CardUpdate:
    """The updated card for ``source``; nothing is written here. ``trust`` adds the scan and signature
    section."""
    meta: dict[str, Any] = dict(existing.metadata) if existing else {}
    before = dict(meta)
    root = graph.root
    if "license" not in meta and report.license:
        meta["license"] = report.license
    parents = [e for e in root.parents if e.relation != "distillation"]
    if parents and "base_model" not in meta:
        refs = [e.ref for e in parents]
        meta["base_model"] = refs[0] if len(refs) == 1 else refs
    if parents and "base_model_relation" not in meta:
        meta["base_model_relation"] = parents[0].relation
    tags = (
        [t for t in meta.get("tags", []) if isinstance(t, str)] if isinstance(meta.get("tags"), list) else []
    )
    for e in parents:
        for tag in (f"base_model:{e.ref}", f"base_model:{e.relation}:{e.ref}"):
            if tag not in tags:
                tags.append(tag)
    if tags:
        meta["tags"] = tags
    body = existing.body if existing and existing.body.strip() else ""
    if not body:
        title = root.name
        body = f"# {title}\n\n" + "\n".join(
            f"## {s}\n\n[More Information Needed]\n" for s in TEMPLATE_SECTIONS
        )
    body = _managed(body, "lineage", "## Lineage\n\n" + _lineage_text(graph))
    body = _managed(body, "license", "## License and obligations\n\n" + _license_text(report))
    if trust is not None:
        body = _managed(body, "security", "## Security scan and signature\n\n" + _trust_text(trust))
    summary = training_summary(source)
    if summary:
        body = _managed(body, "training", "## Training results\n\n" + summary)
    ckpt = checkpoint_metadata(source)
    details = checkpoint_summary(ckpt) if ckpt else None
    if details:
        body = _managed(body, "checkpoint", "## Training details\n\n" + details)
    names = [
        d["name"]
        for d in (ckpt or {}).get("datasets") or []
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    if names and "datasets" not in meta:
        meta["datasets"] = names
    changed = tuple(k for k in meta if before.get(k) != meta[k])
    text = render_card(meta, body)
    parse_card(text)  # what we write must read back
    return CardUpdate(meta, body, text, changed)
