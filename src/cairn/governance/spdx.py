"""The SPDX 3.0.1 AI-profile document (JSON-LD) for a model and its lineage, and its profile checks.

Elements: one ``CreationInfo`` (blank node), the cairn ``Tool`` and a supplier ``Organization``, the
``SpdxDocument``, an ``ai_AIPackage`` for the model and for every ancestor, a ``dataset_DatasetPackage``
per training dataset, ``simplelicensing_LicenseExpression`` s, and ``Relationship`` s: exactly one
``hasDeclaredLicense`` and one ``hasConcludedLicense`` per package (profile conformance, spec §3.1),
``descendantOf`` from a model to each parent (``hasVariant`` from a parent to a quantized copy) and
``trainedOn`` from the model to its datasets. :func:`spdx_conformance` checks the AI and Dataset
profiles' required properties and license counts, which the SPDX bindings do not enforce.
"""

from __future__ import annotations

import re
from typing import Any

from cairn import __version__
from cairn.governance.bom import BomInput, datasets_of, revision
from cairn.governance.check import resolve_license
from cairn.governance.licenses import KnowledgeBase, load_knowledge_base
from cairn.governance.lineage import Node

__all__ = ["spdx_conformance", "spdx_document"]

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
_AI_REQUIRED = (
    "releaseTime",
    "suppliedBy",
    "software_downloadLocation",
    "software_packageVersion",
    "software_primaryPurpose",
)
_DATASET_REQUIRED = (
    "dataset_datasetType",
    "builtTime",
    "originatedBy",
    "releaseTime",
    "software_downloadLocation",
    "software_primaryPurpose",
)


def _expression(license_id: str | None, kb: KnowledgeBase) -> str:
    lic = kb.lookup(license_id) if license_id else None
    if lic is not None:
        return lic.spdx
    if not license_id:
        return "NOASSERTION"
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", license_id).strip("-") or "unknown")


def spdx_document(inp: BomInput, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    kb = kb or load_knowledge_base()
    root, report = inp.graph.root, inp.report
    rev = revision(inp.hashes)
    base = f"https://cairn.invalid/spdx/{re.sub(r'[^A-Za-z0-9._-]+', '-', root.name)}/{rev}"
    ts = inp.created.isoformat().replace("+00:00", "Z")
    ci = "_:creationinfo"
    tool_id, org_id = f"{base}/tool/cairn", f"{base}/agent/supplier"
    graph: list[dict[str, Any]] = [
        {
            "type": "CreationInfo",
            "@id": ci,
            "specVersion": "3.0.1",
            "created": ts,
            "createdBy": [org_id],
            "createdUsing": [tool_id],
        },
        {"type": "Tool", "spdxId": tool_id, "creationInfo": ci, "name": f"cairn {__version__}"},
        {"type": "Organization", "spdxId": org_id, "creationInfo": ci, "name": inp.supplier},
    ]
    counter = iter(range(1, 1_000_000))
    download = inp.download_location or "https://cairn.invalid/noassertion"

    def rel(frm: str, kind: str, to: list[str]) -> None:
        graph.append(
            {
                "type": "Relationship",
                "spdxId": f"{base}/relationship/{next(counter)}",
                "creationInfo": ci,
                "from": frm,
                "relationshipType": kind,
                "to": to,
            }
        )

    def license_rel(pkg: str, declared: str, concluded: str) -> None:
        for kind, expr in (("hasDeclaredLicense", declared), ("hasConcludedLicense", concluded)):
            lic_id = f"{base}/license/{next(counter)}"
            graph.append(
                {
                    "type": "simplelicensing_LicenseExpression",
                    "spdxId": lic_id,
                    "creationInfo": ci,
                    "simplelicensing_licenseExpression": expr,
                }
            )
            rel(pkg, kind, [lic_id])

    def package(node: Node, pid: str, version: str) -> dict[str, Any]:
        pkg: dict[str, Any] = {
            "type": "ai_AIPackage",
            "spdxId": pid,
            "creationInfo": ci,
            "name": node.name,
            "releaseTime": ts,
            "suppliedBy": org_id,
            "software_downloadLocation": download if node is root else "https://cairn.invalid/noassertion",
            "software_packageVersion": version,
            "software_primaryPurpose": "model",
        }
        meta = node.card.metadata if node.card else {}
        if isinstance(meta.get("pipeline_tag"), str):
            pkg["ai_typeOfModel"] = [meta["pipeline_tag"]]
        return pkg

    model_id = f"{base}/model/root"
    model = package(root, model_id, rev)
    model["verifiedUsing"] = [
        {"type": "Hash", "algorithm": "sha256", "hashValue": d} for _, d in sorted(inp.hashes.items())
    ]
    graph.append(model)
    declared = _expression(report.license, kb)
    concluded = " AND ".join(dict.fromkeys(_expression(lid, kb) for lid in report.inherited)) or "NOASSERTION"
    if report.needs_review and report.status != "conflict":
        concluded = "NOASSERTION"  # cairn cannot conclude what it could not decide
    license_rel(model_id, declared, concluded)
    ids = {root.ident: model_id}
    for n, (_chain, anc) in enumerate(inp.graph.ancestors(root.ident), 1):
        ids[anc.ident] = f"{base}/model/ancestor-{n}"
        graph.append(package(anc, ids[anc.ident], "NOASSERTION"))
        lic, _ = resolve_license(anc, kb)
        expr = _expression(lic.id if lic else anc.license_id, kb)
        license_rel(ids[anc.ident], expr, "NOASSERTION")
    for child, edge, parent in inp.graph.edges:
        if parent is None or child not in ids or parent not in ids:
            continue
        if edge.relation == "quantized":
            rel(ids[parent], "hasVariant", [ids[child]])
        elif edge.relation == "distillation":
            rel(ids[parent], "generates", [ids[child]])
        else:
            rel(ids[child], "descendantOf", [ids[parent]])
    datasets = []
    for i, name in enumerate(datasets_of(root), 1):
        did = f"{base}/dataset/{i}"
        datasets.append(did)
        graph.append(
            {
                "type": "dataset_DatasetPackage",
                "spdxId": did,
                "creationInfo": ci,
                "name": name,
                "builtTime": ts,
                "releaseTime": ts,
                "originatedBy": [org_id],
                "software_downloadLocation": f"https://huggingface.co/datasets/{name}",
                "software_primaryPurpose": "data",
                "dataset_datasetType": ["noAssertion"],
            }
        )
        license_rel(did, "NOASSERTION", "NOASSERTION")
    if datasets:
        rel(model_id, "trainedOn", datasets)
    elements = [e["spdxId"] for e in graph if "spdxId" in e]
    graph.append(
        {
            "type": "SpdxDocument",
            "spdxId": f"{base}/document",
            "creationInfo": ci,
            "name": f"AI-BOM of {root.name}",
            "profileConformance": ["core", "software", "ai", "dataset", "simpleLicensing"],
            "rootElement": [model_id],
            "element": elements,
        }
    )
    return {"@context": CONTEXT, "@graph": graph}


def spdx_conformance(doc: dict[str, Any]) -> list[str]:
    """Problems with the AI / Dataset profile rules in an SPDX 3.0.1 JSON-LD document (empty: none found)."""
    problems: list[str] = []
    graph = doc.get("@graph") if isinstance(doc, dict) else None
    if doc.get("@context") != CONTEXT or not isinstance(graph, list):
        return ["not an SPDX 3.0.1 JSON-LD document"]
    ids = [e.get("spdxId") for e in graph if isinstance(e, dict) and "spdxId" in e]
    if len(ids) != len(set(ids)):
        problems.append("spdxIds are not unique")
    rels = [e for e in graph if isinstance(e, dict) and e.get("type") == "Relationship"]
    for e in graph:
        kind = e.get("type") if isinstance(e, dict) else None
        required = (
            _AI_REQUIRED
            if kind == "ai_AIPackage"
            else _DATASET_REQUIRED
            if kind == "dataset_DatasetPackage"
            else None
        )
        if required is None:
            continue
        missing = [k for k in required if not e.get(k)]
        if missing:
            problems.append(f"{e.get('spdxId')}: missing {', '.join(missing)}")
        purpose = "model" if kind == "ai_AIPackage" else "data"
        if e.get("software_primaryPurpose") != purpose:
            problems.append(f"{e.get('spdxId')}: software_primaryPurpose must be {purpose}")
        for lic_kind in ("hasDeclaredLicense", "hasConcludedLicense"):
            n = sum(
                1 for r in rels if r.get("from") == e.get("spdxId") and r.get("relationshipType") == lic_kind
            )
            if n != 1:
                problems.append(f"{e.get('spdxId')}: needs exactly one {lic_kind}, has {n}")
    return problems
