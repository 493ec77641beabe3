"""Model cards: parsing with limits, hostile YAML, line-numbered validation, writing and updating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gov_fixtures import MakeModel

from cairn.cli.main import main
from cairn.errors import FormatError, LimitExceededError
from cairn.governance.card import (
    MAX_CARD_BYTES,
    MAX_FRONT_MATTER_BYTES,
    CardError,
    parse_card,
    read_card,
    validate_card,
)

GOOD = """---
license: apache-2.0
language: [en]
base_model: org/base
base_model_relation: finetune
model-index:
- name: my-model
  results:
  - task: {type: text-classification}
    dataset: {type: imdb, name: IMDB}
    metrics:
    - {type: accuracy, value: 0.91}
---
# My model
"""


def test_parses_front_matter_and_body_with_line_numbers() -> None:
    card = parse_card(GOOD)
    assert card.metadata["base_model"] == "org/base"
    assert card.body == "# My model\n"
    assert card.line_of(("license",)) == 2 and card.line_of(("model-index", 0, "results", 0, "metrics")) == 11
    assert validate_card(card) == ()


def test_readme_without_front_matter_has_empty_metadata() -> None:
    card = parse_card("# just markdown\n---\nnot: yaml\n")
    assert card.metadata == {} and card.body.startswith("# just")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("---\nlicense: mit\nbad: [unclosed\n---\n", 4, "not valid YAML"),
        ("---\na: &x [1, 2]\nb: *x\n---\n", 3, "aliases"),
        ("---\n- just\n- a list\n---\n", 2, "mapping"),
        ("---\nlicense: mit\n", 1, "never closed"),
        ("---\nx: !!python/object/apply:os.system ['echo pwned']\n---\n", 2, "not valid YAML"),
    ],
)
def test_malformed_front_matter_gives_a_typed_error_with_its_line(
    text: str, line: int, fragment: str
) -> None:
    with pytest.raises(CardError) as exc:
        parse_card(text, path="README.md")
    assert exc.value.line == line and fragment in exc.value.message
    assert isinstance(exc.value, FormatError) and exc.value.to_dict()["line"] == line


def test_yaml_bomb_is_refused_before_it_expands() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)
    ]
    with pytest.raises(CardError, match="aliases"):
        parse_card("---\n" + "\n".join(lines) + "\n---\n")


def test_size_depth_and_node_limits() -> None:
    with pytest.raises(LimitExceededError):
        parse_card("---\nx: '" + "a" * (MAX_FRONT_MATTER_BYTES + 10) + "'\n---\n")
    with pytest.raises(CardError, match="deeper"):
        parse_card("---\nx: " + "[" * 200 + "]" * 200 + "\n---\n")
    with pytest.raises(LimitExceededError, match="nodes"):
        parse_card("---\nx: [" + ", ".join(["1"] * 30_000) + "]\n---\n")
    with pytest.raises(LimitExceededError):
        parse_card("x" * (MAX_CARD_BYTES + 1))


def test_huge_or_binary_readme_on_disk_is_refused_by_size_before_reading(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_bytes(b"x" * (MAX_CARD_BYTES + 1))
    with pytest.raises(LimitExceededError):
        read_card(tmp_path)
    (tmp_path / "README.md").write_bytes(b"---\nlicense: \xff\xfe\n---\n")
    with pytest.raises(CardError, match="UTF-8"):
        read_card(tmp_path)
    assert read_card(tmp_path / "nope") is None


def test_wrong_types_are_reported_with_lines() -> None:
    text = """---
license: 42
tags: nope
base_model: [ok, 3]
base_model_relation: cousin
extra_gated_eu_disallowed: "yes"
model-index:
- name: m
  results:
  - task: {name: no type}
    dataset: {type: d}
    metrics: [{type: acc, value: true}]
    source: {name: x}
---
"""
    issues = {(i.field, i.line) for i in validate_card(parse_card(text))}
    assert {("license", 2), ("tags", 3), ("base_model", 4), ("base_model_relation", 5)} <= issues
    assert ("extra_gated_eu_disallowed", 6) in issues
    assert {("model-index", 10), ("model-index", 11), ("model-index", 12), ("model-index", 13)} <= issues


def test_license_other_needs_a_name_and_missing_license_is_reported() -> None:
    assert [i.field for i in validate_card(parse_card("---\nlicense: other\n---\n"))] == ["license"]
    assert [i.field for i in validate_card(parse_card("---\nlanguage: en\n---\n"))] == ["license"]


def test_card_check_cli(make_model: MakeModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "README.md").write_text(GOOD)
    assert main(["card", str(good), "--check"]) == 0
    bad = make_model("bad", license="mit", base_model_relation="sibling")
    capsys.readouterr()
    assert main(["card", str(bad), "--check"]) == 1
    assert "README.md:3: base_model_relation" in capsys.readouterr().out
    (bad / "README.md").write_text("---\nx: [\n---\n")
    assert main(["card", str(bad), "--check", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad_model_card"


def test_card_write_fills_lineage_keeps_author_text_and_is_idempotent(
    make_model: MakeModel, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model("base", license="cc-by-nc-4.0")
    model = make_model(
        "lora",
        body="# LoRA\n\nWritten by a human.\n",
        custom_field={"keep": [1, 2]},
        files={
            "adapter_config.json": '{"base_model_name_or_path": "base"}',
            "LICENSE": "Attribution-NonCommercial 4.0 International",
            "trainer_state.json": json.dumps(
                {
                    "epoch": 3.0,
                    "log_history": [{"epoch": e / 10, "step": e, "loss": 2.0 / (e + 1)} for e in range(40)]
                    + [{"eval_loss": 0.5, "epoch": 3.0, "step": 40}],
                }
            ),
        },
    )
    assert main(["card", str(model), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["changed_fields"]) >= {
        "license",
        "base_model",
        "base_model_relation",
        "tags",
    }
    card = read_card(model)
    assert card is not None and validate_card(card) == ()
    meta = card.metadata
    assert (
        meta["license"] == "cc-by-nc-4.0"
        and meta["base_model"] == "base"
        and meta["base_model_relation"] == "adapter"
    )
    assert "base_model:adapter:base" in meta["tags"] and meta["custom_field"] == {"keep": [1, 2]}
    assert (
        "Written by a human." in card.body
        and "| Training Loss |" in card.body
        and "Trained for 3 epochs" in card.body
    )
    assert (
        card.body.count("| 0.") + card.body.count("| 1.") + card.body.count("| 2 ") <= 2 * 22
    )  # thinned table
    assert main(["card", str(model)]) == 0  # the second run sees the license it declared
    first = (model / "README.md").read_text()
    assert "the card declares no license" not in first
    assert main(["card", str(model)]) == 0
    assert (model / "README.md").read_text() == first  # and from then on it is stable
    assert yaml.safe_load(first.split("---\n")[1])["license"] == "cc-by-nc-4.0"


def test_generated_sections_do_not_satisfy_obligations(make_model: MakeModel) -> None:
    make_model("llama", license="llama3.1")
    model = make_model("child", license="llama3.1", base_model="llama")
    assert main(["card", str(model)]) == 0
    assert "Built with Llama" in (model / "README.md").read_text()
    from cairn.governance.check import check_lineage
    from cairn.governance.lineage import LocalResolver, LocalSource, walk

    report = check_lineage(walk(LocalSource(model), LocalResolver((model.parent,))))
    assert next(f.status for f in report.obligations if f.code == "attribution_display") == "missing"


def test_card_for_a_directory_without_readme_gets_the_template(make_model: MakeModel, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    assert main(["card", str(bare)]) == 0
    text = (bare / "README.md").read_text()
    assert "## Bias, Risks, and Limitations" in text and "No parent model is declared." in text


def test_card_of_a_cairn_checkpoint_carries_its_training_details(tmp_path: Path) -> None:
    """`cairn card` on a directory saved by cairn.save shows the manifest's training metadata."""
    import numpy as np

    import cairn

    ck = tmp_path / "ck"
    cairn.save(
        ck,
        model={"w": np.ones(3, np.float32)},
        metadata={
            "epoch": 3,
            "metrics": {"loss": 0.125},
            "hyperparameters": {"lr": 0.0003, "note": "a|b\nc"},
            "datasets": [{"name": "toy-corpus", "sha256": "ab" * 32}],
        },
        rng_state=False,
    )
    (ck / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge")
    cairn.checkpoint.attach(ck, ["LICENSE"])
    assert main(["card", str(ck)]) == 0
    card = (ck / "README.md").read_text()
    assert "## Training details" in card and "toy-corpus" in card and "sha256 " + "ab" * 32 in card
    assert "| Epoch | 3 |" in card and "| Metric: loss | 0.125 |" in card
    assert "a\\|b c" in card  # a pipe or line break in a value cannot break the table
    assert "datasets:\n- toy-corpus" in card
    assert "README.md" in cairn.verify(ck).files  # the card is listed in the checkpoint's manifest


def test_card_reports_scan_verdicts_and_signature_status(make_model: MakeModel) -> None:
    import os
    import pickle

    import numpy as np
    from safetensors.numpy import save_file

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    d = make_model("scanned", license="mit")
    save_file({"w": np.zeros((4, 4), np.float32)}, str(d / "model.safetensors"))
    (d / "extra.pkl").write_bytes(pickle.dumps({"x": Evil()}))
    (d / "notes.txt").write_text("hello", encoding="utf-8")
    assert main(["card", str(d)]) == 0
    text = (d / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- cairn:begin security -->")[1].split("<!-- cairn:end security -->")[0]
    assert "| `model.safetensors` | safe |" in section
    assert "| `extra.pkl` | unsafe | critical |" in section
    assert "| `notes.txt` | skipped | not a model format |" in section
    assert "Signature: none (unsigned)" in section
    (d / "model.sig").write_text("{}", encoding="utf-8")
    assert main(["card", str(d)]) == 0
    text = (d / "README.md").read_text(encoding="utf-8")
    assert "a model.sig is present" in text and text.count("cairn:begin security") == 1
    plain = make_model("plain", license="mit")
    assert main(["card", str(plain), "--no-scan"]) == 0
    assert "cairn:begin security" not in (plain / "README.md").read_text(encoding="utf-8")
