"""Model-card model-index entries and fairness.json: written safely, the rest of the card preserved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fairness_fixtures import Planted

import cairn.evaluate as ev
from cairn.errors import FormatError, NotFoundError
from cairn.evaluate.record import (
    CARD_TASK_NAME,
    model_index_result,
    read_fairness,
    update_model_card,
    write_json_atomic,
)

CARD = """---
license: apache-2.0
tags:
- vision
model-index:
- name: my-model
  results:
  - task: {type: image-classification}
    dataset: {type: imagenet, name: ImageNet}
    metrics:
    - {type: accuracy, value: 0.8}
---

# My model

Body text stays **exactly** as it was.
"""


def _front(path: Path) -> dict[str, object]:
    text = path.read_text()
    return yaml.safe_load(text.split("---\n")[1])  # type: ignore[no-any-return]


def test_model_index_gets_one_entry_per_metric_and_group(planted: Planted) -> None:
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"sex": planted.a})
    result = model_index_result(rep, dataset="adult", task_type="tabular-classification")
    entries = {(m["type"], m.get("config")): m for m in result["metrics"]}
    female = entries[("selection_rate", "sex=b")]
    assert female["args"] == {"sensitive_feature": "sex", "group": "b"}
    assert female["name"] == "Selection rate (sex=b)"
    assert female["value"] == pytest.approx(rep.by_group["sex=b"]["selection_rate"], abs=1e-6)
    dpd = entries[("demographic_parity_difference", None)]
    assert dpd["args"] == {"sensitive_feature": "sex", "method": "between_groups"}
    assert len(result["metrics"]) == 2 * 5 + 6


def test_card_update_preserves_the_rest_and_replaces_its_own_result(tmp_path: Path, planted: Planted) -> None:
    (tmp_path / "README.md").write_text(CARD)
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    result = model_index_result(rep, dataset="adult", task_type="tabular-classification")
    update_model_card(tmp_path, result, model_name="ignored")
    update_model_card(tmp_path, result, model_name="ignored")  # a re-run does not duplicate
    text = (tmp_path / "README.md").read_text()
    assert text.endswith("# My model\n\nBody text stays **exactly** as it was.\n")
    meta = _front(tmp_path / "README.md")
    assert meta["license"] == "apache-2.0" and meta["tags"] == ["vision"]
    results = meta["model-index"][0]["results"]  # type: ignore[index]
    assert results[0]["dataset"]["type"] == "imagenet"
    ours = [r for r in results if r["task"].get("name") == CARD_TASK_NAME]
    assert len(ours) == 1 and ours[0]["dataset"]["type"] == "adult"


def test_card_is_created_when_missing(tmp_path: Path, planted: Planted) -> None:
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    update_model_card(tmp_path, model_index_result(rep, dataset="d", task_type="t"), model_name="m")
    meta = _front(tmp_path / "README.md")
    assert meta["model-index"][0]["name"] == "m"  # type: ignore[index]


@pytest.mark.parametrize(
    "card",
    [
        "---\n!!python/object/apply:os.system ['touch pwned']\n---\nbody",
        "---\nlicense: [unclosed\n---\n",
        "---\n- a list\n---\n",
        "---\nlicense: mit\nno closing fence",
        "---\nmodel-index: {a: 1}\n---\n",
        "---\nmodel-index:\n- name: x\n  results: 3\n---\n",
    ],
)
def test_hostile_cards_are_refused_and_left_untouched(tmp_path: Path, card: str, planted: Planted) -> None:
    (tmp_path / "README.md").write_text(card)
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"A": planted.a})
    with pytest.raises(FormatError):
        update_model_card(tmp_path, model_index_result(rep, dataset="d", task_type="t"), model_name="m")
    assert (tmp_path / "README.md").read_text() == card
    assert not (tmp_path / "pwned").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left behind


def test_read_fairness_checks_schema(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        read_fairness(tmp_path)
    (tmp_path / "fairness.json").write_text("{not json")
    with pytest.raises(FormatError):
        read_fairness(tmp_path)
    write_json_atomic(tmp_path / "fairness.json", {"schema": "other/1", "report": {}})
    with pytest.raises(FormatError):
        read_fairness(tmp_path)
    write_json_atomic(tmp_path / "fairness.json", {"schema": "cairn.fairness/1", "report": {"n": 1}})
    with pytest.raises(FormatError):
        read_fairness(tmp_path)


def test_write_json_atomic_refuses_nan_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "fairness.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["fairness.json"]


def test_huggingface_hub_reads_our_model_index(tmp_path: Path, planted: Planted) -> None:
    from huggingface_hub import ModelCard

    (tmp_path / "README.md").write_text(CARD)
    rep = ev.fairness(planted.y, planted.pred, sensitive_features={"sex": planted.a})
    result = model_index_result(rep, dataset="adult", task_type="tabular-classification")
    update_model_card(tmp_path, result, model_name="my-model")
    card = ModelCard.load(tmp_path / "README.md")
    ours = [e for e in card.data.eval_results if e.task_name == CARD_TASK_NAME]
    assert len(ours) == len(result["metrics"])
    sel = next(e for e in ours if e.metric_type == "selection_rate" and e.metric_config == "sex=b")
    assert sel.metric_args == {"sensitive_feature": "sex", "group": "b"}
    assert sel.metric_value == pytest.approx(rep.by_group["sex=b"]["selection_rate"], abs=1e-6)
    assert card.data.license == "apache-2.0"
    assert any(e.dataset_type == "imagenet" for e in card.data.eval_results)
