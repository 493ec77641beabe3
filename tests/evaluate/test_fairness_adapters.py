"""Prediction adapters: a torch module from config + user-given entry point, and their hostile inputs."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fairness_fixtures import Planted
from safetensors.torch import save_file

from cairn.cli.main import main
from cairn.errors import FormatError, NotFoundError, UsageError
from cairn.evaluate.adapters import torch_module
from cairn.evaluate.errors import AdapterError, MissingColumnError

MODULE = textwrap.dedent(
    """
    import torch

    class Scorer(torch.nn.Module):
        def __init__(self, n_features, two_logits=False):
            super().__init__()
            self.linear = torch.nn.Linear(n_features, 2 if two_logits else 1)

        def forward(self, x):
            return self.linear(x)
    """
)


@pytest.fixture
def torch_ckpt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint whose single logit is 3 * (x - 0.6): the planted scores exactly."""
    (tmp_path / "cairn_test_scorer.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = tmp_path / "tabular"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"n_features": 1}))
    save_file(
        {"linear.weight": torch.tensor([[3.0]]), "linear.bias": torch.tensor([-1.8])},
        str(ckpt / "model.safetensors"),
    )
    return ckpt


def test_torch_module_predictions_match_the_model(torch_ckpt: Path, planted: Planted) -> None:
    preds = torch_module(torch_ckpt, planted.frame, entry_point="cairn_test_scorer:Scorer", features=["x"])
    assert preds.scores is not None
    np.testing.assert_allclose(preds.scores, planted.score, rtol=1e-5, atol=1e-6)
    assert (preds.labels == planted.pred).mean() > 0.999  # float32 vs float64 at the 0.5 boundary
    assert preds.source["entry_point"] == "cairn_test_scorer:Scorer"


def test_two_logit_module_from_weights_only_torch_file(torch_ckpt: Path, planted: Planted) -> None:
    (torch_ckpt / "model.safetensors").unlink()
    (torch_ckpt / "config.json").write_text(json.dumps({"n_features": 1, "two_logits": True}))
    w = {"linear.weight": torch.tensor([[0.0], [3.0]]), "linear.bias": torch.tensor([0.0, -1.8])}
    torch.save(w, torch_ckpt / "model.pt")
    preds = torch_module(torch_ckpt, planted.frame, entry_point="cairn_test_scorer:Scorer", features=["x"])
    np.testing.assert_allclose(preds.scores, planted.score, rtol=1e-5, atol=1e-6)  # type: ignore[arg-type]


class _Payload:
    def __reduce__(self) -> tuple[object, ...]:
        return (exec, ("open(__import__('os').environ['CAIRN_PWNED'], 'w').write('x')",))


def test_pickle_payload_in_weights_is_refused_and_not_run(
    torch_ckpt: Path, planted: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CAIRN_PWNED", str(marker))
    (torch_ckpt / "model.safetensors").unlink()
    (torch_ckpt / "model.pt").write_bytes(pickle.dumps({"linear.weight": _Payload()}, protocol=2))
    with pytest.raises(FormatError):
        torch_module(torch_ckpt, planted.frame, entry_point="cairn_test_scorer:Scorer", features=["x"])
    assert not marker.exists()


def test_cli_torch_adapter_with_mitigation(
    torch_ckpt: Path, planted: Planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.csv"
    planted.frame[["x", "A", "y"]].to_csv(data, index=False)
    status = main(
        [
            "eval",
            "fairness",
            str(torch_ckpt),
            "--data",
            str(data),
            "--label",
            "y",
            "--sensitive",
            "A",
            "--entry-point",
            "cairn_test_scorer:Scorer",
            "--features",
            "x",
            "--mitigate",
            "threshold",
            "--json",
        ]
    )
    assert status == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["predictions"]["adapter"] == "torch"
    before = rec["report"]["disparities"]["demographic_parity_difference"]
    assert (
        before > 0.2
        and rec["mitigation"]["report"]["disparities"]["demographic_parity_difference"] < before / 4
    )
    lineage = json.loads((tmp_path / "tabular-threshold-demographic_parity" / "thresholds.json").read_text())[
        "lineage"
    ]
    assert set(lineage["base_files"]) == {"config.json", "model.safetensors"}


@pytest.mark.parametrize(
    ("setup", "kwargs", "error"),
    [
        (None, {"entry_point": "no_such_module_xyz:Model"}, AdapterError),
        (None, {"entry_point": "cairn_test_scorer:Missing"}, AdapterError),
        (None, {"entry_point": "cairn_test_scorer"}, UsageError),
        (None, {"features": ["nope"]}, MissingColumnError),
        (None, {"features": []}, UsageError),
        ({"config.json": "[1, 2]"}, {}, FormatError),
        ({"config.json": "{broken"}, {}, FormatError),
        ({"config.json": '{"n_features": 1, "surprise": 1}'}, {}, AdapterError),
        ({"config.json": '{"n_features": 2}'}, {}, AdapterError),  # weights do not fit
        ({"model.safetensors": b"\xff" * 8 + b"{}"}, {}, FormatError),
        ({"model.safetensors": None}, {}, NotFoundError),
    ],
)
def test_torch_adapter_hostile_input(
    torch_ckpt: Path,
    planted: Planted,
    setup: dict[str, object] | None,
    kwargs: dict[str, object],
    error: type,
) -> None:
    for name, content in (setup or {}).items():
        path = torch_ckpt / name
        if content is None:
            path.unlink()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content))
    args: dict[str, object] = {"entry_point": "cairn_test_scorer:Scorer", "features": ["x"], **kwargs}
    with pytest.raises(error):
        torch_module(torch_ckpt, planted.frame, **args)  # type: ignore[arg-type]


def test_non_numeric_feature_is_a_missing_value(torch_ckpt: Path, planted: Planted) -> None:
    frame = planted.frame.copy()
    frame["x"] = frame["x"].astype(object)
    frame.loc[3, "x"] = "abc"
    from cairn.evaluate.errors import MissingValueError

    with pytest.raises(MissingValueError) as exc:
        torch_module(torch_ckpt, pd.DataFrame(frame), entry_point="cairn_test_scorer:Scorer", features=["x"])
    assert exc.value.rows == [3]


def test_derived_artifact_predicts_through_its_verified_base(
    torch_ckpt: Path, planted: Planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.csv"
    planted.frame[["x", "A", "y"]].to_csv(data, index=False)
    common = [
        "--data",
        str(data),
        "--label",
        "y",
        "--sensitive",
        "A",
        "--entry-point",
        "cairn_test_scorer:Scorer",
        "--features",
        "x",
        "--json",
    ]
    assert main(["eval", "fairness", str(torch_ckpt), *common, "--mitigate", "threshold"]) == 0
    mitigated = json.loads(capsys.readouterr().out)["mitigation"]["report"]
    derived = tmp_path / "tabular-threshold-demographic_parity"
    # evaluating the derived artifact runs the base model and applies the stored thresholds
    assert main(["eval", "fairness", str(derived), *common]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["report"]["disparities"] == mitigated["disparities"]
    assert rec["predictions"]["checkpoint"] == torch_ckpt.name  # no local absolute paths in the record
    assert str(tmp_path) not in json.dumps(rec)
    # base vs derived evaluated afresh on the same data
    assert main(["eval", "compare", str(torch_ckpt), str(derived), *common]) == 1
    regressed = {c["metric"] for c in json.loads(capsys.readouterr().out)["regressed"]}
    assert "demographic_parity_difference" not in regressed and "accuracy" in regressed
    # a base whose weights changed after mitigation is refused
    save_file(
        {"linear.weight": torch.tensor([[1.0]]), "linear.bias": torch.tensor([0.0])},
        str(torch_ckpt / "model.safetensors"),
    )
    assert main(["eval", "fairness", str(derived), *common]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "integrity" and err["path"].endswith("model.safetensors")
