"""Text models: the transformers adapter on a tiny random BERT built here, and counterfactual probing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cairn.cli.main import main
from cairn.errors import FormatError
from cairn.evaluate.adapters import text_scorer, transformers_classifier
from cairn.evaluate.counterfactual import load_probe_files, probe
from cairn.evaluate.errors import AdapterError, EvaluationError, MissingValueError

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "person",
    "is",
    "a",
    "good",
    "bad",
    "doctor",
    "he",
    "she",
    "they",
    "nurse",
    "was",
    "late",
]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root = tmp_path_factory.mktemp("tiny-bert")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # large random weights, so that scores differ visibly between texts
        for name, param in model.named_parameters():
            if "LayerNorm" not in name:
                param.normal_(0.0, 0.5)
    model.save_pretrained(root, safe_serialization=True)
    BertTokenizer(str(root / "vocab.txt")).save_pretrained(root)
    return root


def _direct_scores(root: Path, texts: list[str]) -> np.ndarray:
    from transformers import BertForSequenceClassification, BertTokenizer

    tok = BertTokenizer.from_pretrained(root)
    model = BertForSequenceClassification.from_pretrained(root).eval()
    with torch.no_grad():
        logits = model(**tok(texts, padding=True, return_tensors="pt")).logits
    return torch.softmax(logits, dim=1)[:, 1].numpy()


TEXTS = ["he is a good doctor", "she is a good nurse", "they was late", "the person is bad", "she was late"]


def test_transformers_adapter_matches_the_model(tiny_bert: Path) -> None:
    frame = pd.DataFrame({"text": TEXTS})
    preds = transformers_classifier(tiny_bert, frame, text_column="text")
    expected = _direct_scores(tiny_bert, TEXTS)
    np.testing.assert_allclose(preds.scores, expected, rtol=1e-4, atol=1e-5)  # type: ignore[arg-type]
    np.testing.assert_array_equal(preds.labels, (expected >= 0.5).astype(int))
    assert np.ptp(expected) > 0.01  # the model really distinguishes the texts


def test_transformers_adapter_refuses_unsafe_or_broken_models(tiny_bert: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["he is good", ""]})
    with pytest.raises(MissingValueError):
        transformers_classifier(tiny_bert, frame, text_column="text")
    custom = tmp_path / "custom"
    shutil.copytree(tiny_bert, custom)
    config = json.loads((custom / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.Evil"}
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match="custom code"):
        text_scorer(custom)
    no_safetensors = tmp_path / "bin-only"
    shutil.copytree(tiny_bert, no_safetensors)
    (no_safetensors / "model.safetensors").rename(no_safetensors / "pytorch_model.bin")
    with pytest.raises(AdapterError, match="safetensors"):
        text_scorer(no_safetensors)
    (custom / "config.json").write_text("not json")
    with pytest.raises(FormatError):
        text_scorer(custom)


def test_cli_transformers_fairness(
    tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        (t, g, i % 2)
        for i, (t, g) in enumerate(
            [
                ("he is a good doctor", "m"),
                ("she is a good doctor", "f"),
                ("he was late", "m"),
                ("she was late", "f"),
            ]
            * 5
        )
    ]
    data = tmp_path / "texts.csv"
    pd.DataFrame(rows, columns=["text", "gender", "label"]).to_csv(data, index=False)
    ckpt = tmp_path / "model"
    shutil.copytree(tiny_bert, ckpt)
    templates = tmp_path / "templates.txt"
    templates.write_text("{identity} is a good doctor\n{identity} was late\n")
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({"male": ["he"], "female": ["she"]}))
    status = main(
        [
            "eval",
            "fairness",
            str(ckpt),
            "--data",
            str(data),
            "--label",
            "label",
            "--sensitive",
            "gender",
            "--text",
            "text",
            "--min-group-size",
            "5",
            "--templates",
            str(templates),
            "--terms",
            str(terms),
            "--html",
            str(tmp_path / "r.html"),
            "--json",
        ]
    )
    assert status == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["predictions"]["adapter"] == "transformers"
    expected = _direct_scores(tiny_bert, [r[0] for r in rows]) >= 0.5
    sel = {g["label"]: g["metrics"]["selection_rate"] for g in rec["report"]["groups"]}
    genders = np.array([r[1] for r in rows])
    assert sel["gender=f"] == pytest.approx(expected[genders == "f"].mean())
    card = (ckpt / "README.md").read_text()
    assert "text-classification" in card and "counterfactual_flip_rate" in card
    probe_scores = _direct_scores(
        tiny_bert, ["he is a good doctor", "she is a good doctor", "he was late", "she was late"]
    )
    spreads = [abs(probe_scores[0] - probe_scores[1]), abs(probe_scores[2] - probe_scores[3])]
    assert rec["counterfactual"]["mean_spread"] == pytest.approx(np.mean(spreads), abs=1e-5)
    assert rec["counterfactual"]["templates"] == "templates.txt"
    assert "Counterfactual probing" in (tmp_path / "r.html").read_text()


def _biased(texts: Sequence[str]) -> np.ndarray:
    """A scorer with a planted bias: 'she' lowers the score by 0.3, 'nurse' raises it by 0.1."""
    return np.array([0.6 - 0.3 * ("she" in t.split()) + 0.1 * ("nurse" in t.split()) for t in texts])


def test_probe_measures_a_planted_bias() -> None:
    templates = ["{identity} is a good doctor", "{identity} was late", "the nurse said {identity} is good"]
    report = probe(_biased, templates, {"male": ["he"], "female": ["she"], "neutral": ["they", "the person"]})
    assert report.n_templates == 3
    assert report.flip_rate == 1.0  # 0.6 vs 0.3 crosses 0.5 in every template
    assert report.mean_spread == pytest.approx(0.3) and report.max_spread == pytest.approx(0.3)
    assert report.group_means["female"] == pytest.approx(0.3 + 0.1 / 3)
    assert report.worst(1)[0].spread == pytest.approx(0.3)
    fair = probe(lambda ts: np.full(len(ts), 0.7), templates, {"male": ["he"], "female": ["she"]})
    assert fair.flip_rate == 0.0 and fair.max_spread == 0.0
    json.dumps(report.to_dict(), allow_nan=False)


def test_probe_templates_are_not_format_strings() -> None:
    seen: list[str] = []

    def record(texts: Sequence[str]) -> np.ndarray:
        seen.extend(texts)
        return np.zeros(len(texts))

    probe(record, ["{identity} {0.__class__} {identity.__init__}"], {"a": ["x"], "b": ["y"]})
    assert seen == [
        "x {0.__class__} {identity.__init__}",
        "y {0.__class__} {identity.__init__}",
    ]


@pytest.mark.parametrize(
    ("templates", "terms"),
    [
        ([], {"a": ["x"], "b": ["y"]}),
        (["no placeholder"], {"a": ["x"], "b": ["y"]}),
        (["{identity}"], {"a": ["x"]}),
        (["{identity}"], {"a": ["x"], "b": []}),
        (["{identity}"], {"a": ["x"], "b": [""]}),
    ],
)
def test_probe_hostile_input(templates: list[str], terms: dict[str, list[str]]) -> None:
    with pytest.raises(EvaluationError):
        probe(_biased, templates, terms)


def test_probe_wrong_score_count_is_typed() -> None:
    with pytest.raises(EvaluationError):
        probe(lambda ts: np.zeros(1), ["{identity} a", "{identity} b"], {"a": ["x"], "b": ["y"]})


def test_cli_counterfactual(tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "templates.txt"
    templates.write_text("# comment\n{identity} is a good doctor\n{identity} was late\n")
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({"male": ["he"], "female": ["she"]}))
    assert (
        main(
            [
                "eval",
                "counterfactual",
                str(tiny_bert),
                "--templates",
                str(templates),
                "--terms",
                str(terms),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    scores = _direct_scores(
        tiny_bert, ["he is a good doctor", "she is a good doctor", "he was late", "she was late"]
    )
    spreads = [abs(scores[0] - scores[1]), abs(scores[2] - scores[3])]
    assert out["max_spread"] == pytest.approx(max(spreads), abs=1e-5)
    assert out["n_templates"] == 2
    terms.write_text('["he", "she"]')
    assert (
        main(
            [
                "eval",
                "counterfactual",
                str(tiny_bert),
                "--templates",
                str(templates),
                "--terms",
                str(terms),
                "--json",
            ]
        )
        == 2
    )
    with pytest.raises(FormatError):
        load_probe_files(templates, terms)
