"""MOF openness classes: cumulative classes, license openness per content type, MOT import/export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gov_fixtures import MakeModel

from cairn.cli.main import main
from cairn.governance.errors import CardError
from cairn.governance.lineage import LocalSource, read_node
from cairn.governance.openness import (
    COMPONENTS,
    Inventory,
    classify,
    inventory_from_source,
    read_mot,
    write_mot,
)

CLASS3 = [
    "Model architecture",
    "Model parameters (Final)",
    "Model card",
    "Data card",
    "Technical report",
    "Evaluation results",
]
CLASS2 = ["Training code", "Inference code", "Evaluation code", "Evaluation data"]
CLASS1 = ["Datasets", "Data preprocessing code", "Model parameters (Intermediate)", "Research paper"]
OPEN_GLOBALS = {"code": "apache-2.0", "data": "cdla-permissive-2.0", "document": "cc-by-4.0"}


def inv(names: list[str], **licenses: str) -> Inventory:
    return Inventory("m", components=dict.fromkeys(names), global_licenses=licenses or dict(OPEN_GLOBALS))


def test_classes_are_cumulative() -> None:
    assert classify(inv(CLASS3)).mof_class == 3
    assert classify(inv(CLASS3 + CLASS2)).mof_class == 2
    full = classify(inv(CLASS3 + CLASS2 + CLASS1))
    assert full.mof_class == 1 and full.label.startswith("Class I ") and full.missing_for_next == ()
    only_higher = classify(inv(CLASS2 + CLASS1))  # class II parts without class III do not count
    missing = {m.component for m in only_higher.missing_for_next}
    assert only_higher.mof_class == 0 and missing == set(CLASS3) - {"Technical report"}  # the paper stands in


def test_missing_list_names_what_the_next_class_needs() -> None:
    result = classify(inv([*CLASS3, "Training code"]))
    assert result.mof_class == 3
    assert {m.component for m in result.missing_for_next} == {
        "Inference code",
        "Evaluation code",
        "Evaluation data",
    }
    assert result.progress[2] == pytest.approx(0.25)


def test_custom_and_noncommercial_licenses_are_never_open() -> None:
    for lic in ("llama3.1", "cc-by-nc-4.0", "bigscience-openrail-m", "my-own-license"):
        result = classify(inv(CLASS3, distribution=lic))
        assert result.mof_class == 0
        assert {m.reason for m in result.missing_for_next} == {f"not open: {lic}"}
    unlicensed = classify(Inventory("m", components=dict.fromkeys(CLASS3)))
    assert {m.reason for m in unlicensed.missing_for_next} == {"no license"}


def test_component_license_overrides_type_global_which_overrides_distribution() -> None:
    components: dict[str, str | None] = dict.fromkeys(CLASS3)
    components["Model parameters (Final)"] = "llama3"
    result = classify(
        Inventory(
            "m", components=components, global_licenses={"distribution": "apache-2.0", "data": "cc-by-4.0"}
        )
    )
    assert [m.component for m in result.missing_for_next] == ["Model parameters (Final)"]
    assert any("Model card: apache-2.0 is open but not meant for document" in w for w in result.warnings)


def test_research_paper_stands_in_for_the_technical_report() -> None:
    names = [n for n in CLASS3 if n != "Technical report"]
    assert classify(inv(names)).mof_class == 0
    assert classify(inv([*names, "Research paper"])).mof_class == 3


def test_inventory_from_a_model_directory(make_model: MakeModel) -> None:
    model = make_model(
        "olmo-like",
        body="# OLMo-like\n\n## Training Data\n\nDolma v1.7, see the data card.\n",
        license="apache-2.0",
        tags=["arxiv:2402.00838"],
        model_index=[{"name": "m", "results": []}],
        files={
            "model.safetensors": "x",
            "modeling_olmo.py": "",
            "TECHNICAL_REPORT.md": "",
            "train.py": "",
            "inference.py": "",
            "eval_harness.py": "",
            "trainer_state.json": "{}",
        },
    )
    source = LocalSource(model)
    found = inventory_from_source(source, read_node(source))
    assert set(CLASS3) <= set(found.components) and {
        "Training code",
        "Research paper",
        "Model metadata",
    } <= set(found.components)
    result = classify(found)
    assert result.mof_class == 3 and [m.component for m in result.missing_for_next] == ["Evaluation data"]
    assert any(
        "Model parameters (Final)" in w for w in result.warnings
    )  # Apache on weights: open, with a warning


def test_mot_round_trip(tmp_path: Path) -> None:
    original = Inventory(
        "OLMo-1B",
        "AI2",
        {**dict.fromkeys(CLASS3 + CLASS2), "Research paper": "CC-BY-4.0"},
        {"Research paper": "https://arxiv.org/abs/2402.00838"},
        dict(OPEN_GLOBALS),
    )
    text = write_mot(original)
    assert "Apache-2.0" in text and "CDLA-Permissive-2.0" in text  # exported with SPDX ids
    back = read_mot(text)
    assert back.components == original.components and back.paths == original.paths
    assert classify(back) == classify(original)


@pytest.mark.parametrize(
    "text",
    [
        "release: [1, 2]\n",
        "release: {name: x, components: [{name: 'Secret sauce'}]}\n",
        "release: {name: x, license: 5}\n",
        "a: &a [1]\nrelease: {name: *a}\n",
        "release: {name: [unclosed\n",
    ],
)
def test_malformed_mot_records_give_typed_errors(text: str) -> None:
    with pytest.raises(CardError):
        read_mot(text)


def test_openness_cli(make_model: MakeModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model("m", license="llama3.1", files={"model.safetensors": "x"})
    assert main(["openness", str(model), "--json", "--export-mot", str(tmp_path / "m.yml")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["class"] == 0 and data["label"] == "unclassified"
    assert main(["openness", str(tmp_path / "m.yml")]) == 1
    record = tmp_path / "open.yml"
    record.write_text(write_mot(inv(CLASS3)))
    assert main(["openness", str(record)]) == 0
    assert "Class III" in capsys.readouterr().out
    assert main(["openness", str(tmp_path / "nope")]) == 2


def test_component_table_matches_the_framework() -> None:
    assert sum(c.required for c in COMPONENTS) == 14 and len(COMPONENTS) == 17
