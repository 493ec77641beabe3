"""AI-BOM export: CycloneDX 1.6 validated against its published schema, SPDX 3.0.1 through the SPDX bindings."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from gov_fixtures import LLAMA31_LICENSE, MakeModel
from spdx_python_model.bindings.v3_0_1 import model as spdx_model

from cairn.cli.main import main
from cairn.governance.bom import BomInput, cyclonedx_bom, hash_directory
from cairn.governance.check import check_lineage
from cairn.governance.lineage import LocalResolver, LocalSource, walk
from cairn.governance.spdx import spdx_conformance, spdx_document

WHEN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def cdx_errors(doc: dict[str, Any]) -> object:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))


def spdx_roundtrip(doc: dict[str, Any]) -> spdx_model.SHACLObjectSet:
    objects = spdx_model.SHACLObjectSet()
    spdx_model.JSONLDDeserializer().read(io.BytesIO(json.dumps(doc).encode()), objects)
    spdx_model.JSONLDSerializer().write(objects, io.BytesIO())  # enforces the model's min/max counts
    return objects


@pytest.fixture
def lineage(make_model: MakeModel) -> BomInput:
    make_model("meta-llama/Llama-3.1-8B", license="llama3.1", files={"LICENSE": LLAMA31_LICENSE})
    make_model("org/nc-merge-parent", license="cc-by-nc-4.0")
    model = make_model(
        "Llama-3.1-acme",
        license="llama3.1",
        base_model=["meta-llama/Llama-3.1-8B", "org/nc-merge-parent"],
        datasets=["tatsu-lab/alpaca", "org/private-data"],
        pipeline_tag="text-generation",
        model_index=[
            {
                "name": "Llama-3.1-acme",
                "results": [
                    {
                        "task": {"type": "text-generation"},
                        "dataset": {"type": "mmlu", "name": "MMLU"},
                        "metrics": [{"type": "acc", "value": 0.61}],
                    }
                ],
            }
        ],
        files={"model.safetensors": "weights", "config.json": "{}", "LICENSE": LLAMA31_LICENSE},
    )
    graph = walk(LocalSource(model), LocalResolver((model.parent,)))
    return BomInput(graph, check_lineage(graph), hash_directory(model), created=WHEN)


def test_cyclonedx_bom_is_valid_and_carries_lineage_licenses_datasets_and_hashes(lineage: BomInput) -> None:
    doc = cyclonedx_bom(lineage)
    assert cdx_errors(doc) is None
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "Llama-3.1-acme"
    files = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert files["model.safetensors"] == lineage.hashes["model.safetensors"] and len(files) == 4
    ancestors = model["pedigree"]["ancestors"]
    assert {a["name"] for a in ancestors} == {"Llama-3.1-8B", "nc-merge-parent"}
    assert {
        p["value"] for a in ancestors for p in a["properties"] if p["name"] == "cairn:base_model_relation"
    } == {"merge"}
    licenses = [entry["license"] for entry in model["licenses"]]
    assert {
        "name": "LicenseRef-scancode-llama-3.1-license-2024",
        "acknowledgement": "declared",
    }.items() <= licenses[0].items()
    assert {"id": "CC-BY-NC-4.0", "acknowledgement": "concluded"} in licenses
    assert [c["name"] for c in doc["components"]] == ["tatsu-lab/alpaca", "org/private-data"]
    assert model["modelCard"]["modelParameters"]["datasets"] == [
        {"ref": c["bom-ref"]} for c in doc["components"]
    ]
    assert model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "acc", "value": "0.61", "slice": "MMLU"}
    ]
    check = {p["value"] for p in model["modelCard"]["properties"] if p["name"] == "cairn:license_check"}
    assert check == {"conflict"}  # the NC merge parent under a commercial-permitting license
    refs = [
        model["bom-ref"],
        *(c["bom-ref"] for c in model["components"]),
        *(a["bom-ref"] for a in ancestors),
    ]
    refs += [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    assert cyclonedx_bom(lineage) == doc  # deterministic for the same input and time


def test_the_schema_validator_does_reject_broken_boms(lineage: BomInput) -> None:
    doc = cyclonedx_bom(lineage)
    doc["metadata"]["component"]["type"] = "neural-blob"
    assert cdx_errors(doc) is not None


def test_spdx_document_passes_the_bindings_and_profile_conformance(lineage: BomInput) -> None:
    doc = spdx_document(lineage)
    assert spdx_conformance(doc) == []
    objects = spdx_roundtrip(doc)
    packages = [o for o in objects.foreach_type(spdx_model.ai_AIPackage)]
    assert sorted(p.name for p in packages) == ["Llama-3.1-8B", "Llama-3.1-acme", "nc-merge-parent"]
    datasets = list(objects.foreach_type(spdx_model.dataset_DatasetPackage))
    assert sorted(d.name for d in datasets) == ["org/private-data", "tatsu-lab/alpaca"]
    kinds = [r["relationshipType"] for r in doc["@graph"] if r["type"] == "Relationship"]
    assert kinds.count("descendantOf") == 2 and kinds.count("trainedOn") == 1
    exprs = {
        e["simplelicensing_licenseExpression"]
        for e in doc["@graph"]
        if e["type"] == "simplelicensing_LicenseExpression"
    }
    assert "LicenseRef-scancode-llama-3.1-license-2024 AND CC-BY-NC-4.0" in exprs


def test_spdx_quantized_parent_has_a_variant(make_model: MakeModel) -> None:
    make_model("base", license="apache-2.0")
    quant = make_model("base-q4", license="apache-2.0", base_model="base", base_model_relation="quantized")
    graph = walk(LocalSource(quant), LocalResolver((quant.parent,)))
    doc = spdx_document(BomInput(graph, check_lineage(graph), hash_directory(quant), created=WHEN))
    assert [
        r["relationshipType"]
        for r in doc["@graph"]
        if r["type"] == "Relationship" and r["relationshipType"] == "hasVariant"
    ] == ["hasVariant"]
    assert spdx_conformance(doc) == []
    spdx_roundtrip(doc)


def test_spdx_conformance_catches_what_the_bindings_do_not(lineage: BomInput) -> None:
    doc = spdx_document(lineage)
    pkg = next(e for e in doc["@graph"] if e["type"] == "ai_AIPackage")
    del pkg["releaseTime"]
    doc["@graph"] = [
        e
        for e in doc["@graph"]
        if not (
            e["type"] == "Relationship"
            and e["relationshipType"] == "hasConcludedLicense"
            and e["from"] == pkg["spdxId"]
        )
    ]
    problems = spdx_conformance(doc)
    assert any("releaseTime" in p for p in problems) and any(
        "hasConcludedLicense, has 0" in p for p in problems
    )
    assert spdx_conformance({"@graph": []}) == ["not an SPDX 3.0.1 JSON-LD document"]


def test_bom_cli_writes_both_formats(
    lineage: BomInput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = lineage.graph.root.ident
    assert main(["bom", path, "--format", "cyclonedx"]) == 0
    assert cdx_errors(json.loads(capsys.readouterr().out)) is None
    out = tmp_path / "bom.spdx.json"
    assert main(["bom", path, "--format", "spdx", "-o", str(out)]) == 0
    assert spdx_conformance(json.loads(out.read_text())) == []
    assert main(["bom", str(tmp_path / "missing")]) == 2
