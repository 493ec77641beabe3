"""AI bills of materials: a CycloneDX 1.6 ML-BOM and an SPDX 3.0.1 AI-profile document (spec §3).

Both are built as plain JSON from a :class:`BomInput` (the lineage graph, the license check's report and
the files' sha256 digests, which the caller supplies: :func:`hash_directory` for a local directory, the
blob store's digests on the hub). CycloneDX puts parents in ``pedigree.ancestors`` with the relation as a
property; the SPDX document is built in :mod:`cairn.governance.spdx`. ``bom-ref`` s are unique by construction (the
schema does not enforce it).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn import __version__
from cairn.format.hashing import sha256_file
from cairn.governance.check import CheckReport, resolve_license
from cairn.governance.licenses import KnowledgeBase, load_knowledge_base
from cairn.governance.lineage import LineageGraph, Node

__all__ = ["BomInput", "cyclonedx_bom", "datasets_of", "hash_directory", "metrics_of", "revision"]


@dataclass(frozen=True)
class BomInput:
    graph: LineageGraph
    report: CheckReport
    hashes: dict[str, str]  # file name -> hex sha256, for the root model's files
    created: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    download_location: str | None = None
    supplier: str = "unknown"


def hash_directory(path: str | Path) -> dict[str, str]:
    """sha256 of every regular file directly in ``path`` (sorted by name)."""
    out: dict[str, str] = {}
    for p in sorted(Path(path).iterdir()):
        if p.is_file() and not p.is_symlink():
            out[p.name] = sha256_file(p)[1]
    return out


def revision(hashes: dict[str, str]) -> str:
    """A content revision for a set of files: sha256 over the sorted (name, digest) pairs, 12 hex digits."""
    h = hashlib.sha256("".join(f"{n}\0{d}\n" for n, d in sorted(hashes.items())).encode())
    return h.hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _meta(node: Node) -> dict[str, Any]:
    return node.card.metadata if node.card else {}


def datasets_of(node: Node) -> list[str]:
    raw = _meta(node).get("datasets")
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return list(dict.fromkeys(d for d in items if isinstance(d, str) and d.strip()))


def metrics_of(node: Node) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    index = _meta(node).get("model-index")
    for entry in index if isinstance(index, list) else []:
        for res in (
            entry.get("results", [])
            if isinstance(entry, dict) and isinstance(entry.get("results"), list)
            else []
        ):
            if not isinstance(res, dict):
                continue
            raw_ds = res.get("dataset")
            ds: dict[str, Any] = raw_ds if isinstance(raw_ds, dict) else {}
            for m in res.get("metrics", []) if isinstance(res.get("metrics"), list) else []:
                if isinstance(m, dict) and isinstance(m.get("type"), str) and m.get("value") is not None:
                    out.append(
                        {
                            "type": m["type"],
                            "value": str(m["value"]),
                            "slice": str(ds.get("name", ds.get("type", ""))),
                        }
                    )
    return out


def _license_entry(license_id: str | None, kb: KnowledgeBase, acknowledgement: str) -> dict[str, Any]:
    lic = kb.lookup(license_id) if license_id else None
    if lic is not None and not lic.spdx.startswith("LicenseRef-"):
        return {"license": {"id": lic.spdx, "acknowledgement": acknowledgement}}
    if lic is not None:
        return {"license": {"name": lic.spdx, "url": lic.sources[0], "acknowledgement": acknowledgement}}
    return {"license": {"name": license_id or "NOASSERTION", "acknowledgement": acknowledgement}}


def _cdx_model(node: Node, ref: str, kb: KnowledgeBase) -> dict[str, Any]:
    lic, _ = resolve_license(node, kb)
    comp: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": ref, "name": node.name}
    comp["licenses"] = [_license_entry(lic.id if lic else node.license_id, kb, "declared")]
    return comp


def cyclonedx_bom(inp: BomInput, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document for the root model of ``inp.graph``."""
    kb = kb or load_knowledge_base()
    root, report = inp.graph.root, inp.report
    refs: dict[str, str] = {}

    def ref_for(kind: str, name: str) -> str:
        base, i = f"{kind}:{_slug(name)}", 1
        ref = base
        while ref in refs.values():
            i += 1
            ref = f"{base}-{i}"
        refs[f"{kind}\0{name}"] = ref
        return ref

    model_ref = ref_for("model", root.name)
    model = _cdx_model(root, model_ref, kb)
    model["version"] = revision(inp.hashes)
    model["licenses"] += [
        _license_entry(lid, kb, "concluded") for lid in report.inherited if lid != report.license
    ]
    model["components"] = [
        {
            "type": "file",
            "bom-ref": ref_for("file", name),
            "name": name,
            "hashes": [{"alg": "SHA-256", "content": digest}],
        }
        for name, digest in sorted(inp.hashes.items())
    ]
    ancestors = []
    for chain, anc in inp.graph.ancestors(root.ident):
        comp = _cdx_model(anc, ref_for("model", anc.name), kb)
        rels = " > ".join(e.relation for e in chain)
        comp["properties"] = [
            {"name": "cairn:base_model_relation", "value": rels},
            {"name": "cairn:reference", "value": chain[-1].ref},
        ]
        ancestors.append(comp)
    if ancestors:
        model["pedigree"] = {"ancestors": ancestors}
    datasets = [
        {
            "type": "data",
            "bom-ref": ref_for("dataset", d),
            "name": d,
            "data": [{"type": "dataset", "name": d}],
        }
        for d in datasets_of(root)
    ]
    params: dict[str, Any] = {}
    meta = _meta(root)
    if isinstance(meta.get("pipeline_tag"), str):
        params["task"] = meta["pipeline_tag"]
    if datasets:
        params["datasets"] = [{"ref": d["bom-ref"]} for d in datasets]
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    metrics = metrics_of(root)
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    card["properties"] = [{"name": "cairn:license_check", "value": report.status}] + [
        {"name": f"cairn:{f.kind}", "value": f.message} for f in (*report.conflicts, *report.needs_review)
    ]
    model["modelCard"] = card
    props = [{"name": "cairn:base_model_relation", "value": e.relation} for e in root.parents]
    if props:
        model["properties"] = props
    if inp.download_location:
        model["externalReferences"] = [{"type": "distribution", "url": inp.download_location}]
    ts = inp.created.isoformat().replace("+00:00", "Z")
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"cairn:{model_ref}:{model['version']}:{ts}")
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": ts,
            "tools": {"components": [{"type": "application", "name": "cairn", "version": __version__}]},
            "component": model,
        },
        "components": datasets,
        "dependencies": [{"ref": model_ref, "dependsOn": [d["bom-ref"] for d in datasets]}]
        + [{"ref": d["bom-ref"]} for d in datasets],
    }
