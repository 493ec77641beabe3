"""``cairn eval fairness`` and ``cairn eval compare`` end to end on a predictions file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import demographic_parity_difference
from fairness_fixtures import Planted

from cairn.cli.main import main
from cairn.evaluate.mitigation import GroupThresholds
from cairn.format.hashing import sha256_file


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    status = main([str(a) for a in argv])
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip().startswith("{") else {"text": out}


def test_fairness_with_mitigation_records_everything(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, data, preds = planted_files
    html = tmp_path / "report.html"
    status, rec = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A",
        "--predictions",
        preds,
        "--score-column",
        "score",
        "--mitigate",
        "threshold",
        "--html",
        html,
        "--json",
    )
    assert status == 0
    before = rec["report"]["disparities"]["demographic_parity_difference"]
    assert before == pytest.approx(
        demographic_parity_difference(planted.y, planted.pred, sensitive_features=planted.a)
    )
    after = rec["mitigation"]["report"]["disparities"]["demographic_parity_difference"]
    assert after < before / 4
    assert json.loads((ckpt / "fairness.json").read_text()) == rec
    for published in ("fairness.json", "README.md"):  # these get published: no local paths in them
        assert str(tmp_path) not in (ckpt / published).read_text()
    assert rec["dataset"]["sha256"] == sha256_file(data)[1]
    card = yaml.safe_load((ckpt / "README.md").read_text().split("---\n")[1])
    assert any(
        m["type"] == "demographic_parity_difference" for m in card["model-index"][0]["results"][0]["metrics"]
    )
    # the derived artifact: thresholds as JSON, lineage to every base file, its own record and card
    derived = tmp_path / "model-threshold-demographic_parity"
    assert str(tmp_path) not in (derived / "thresholds.json").read_text()
    th = json.loads((derived / "thresholds.json").read_text())
    assert th["lineage"]["base_files"] == {"weights.bin": sha256_file(ckpt / "weights.bin")[1]}
    thresholds = GroupThresholds.from_dict(th["thresholds"])
    groups = [f"A={a}" for a in planted.a]
    recomputed = thresholds.apply(planted.score, groups, random_state=th["random_state"])
    assert demographic_parity_difference(
        planted.y, recomputed, sensitive_features=planted.a
    ) == pytest.approx(after)
    dcard = yaml.safe_load((derived / "README.md").read_text().split("---\n")[1])
    assert dcard["base_model"] == "model" and "fairness-mitigation" in dcard["tags"]
    assert json.loads((derived / "fairness.json").read_text())["report"] == rec["mitigation"]["report"]
    page = html.read_text()
    assert (
        "<svg" in page
        and "<script" not in page.lower()
        and "http" not in page.replace('"http://www.w3.org/2000/svg"', "")
    )


def test_intersectional_parquet_and_human_output(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, _, preds = planted_files
    data = tmp_path / "data.parquet"
    planted.frame[["A", "B", "y"]].to_parquet(data)
    status, out = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A,B",
        "--predictions",
        preds,
        "--min-group-size",
        "300",
        "--n-boot",
        "30",
    )
    assert status == 0
    text = out["text"]
    assert "A=b,B=y" in text and "warning: group A=b" in text
    dpd = next(line for line in text.splitlines() if line.startswith("demographic_parity_difference:"))
    value, lo, hi = (float(x) for x in dpd.replace("[", " ").replace("]", " ").replace(",", " ").split()[1:])
    assert lo < value < hi


@pytest.mark.parametrize(
    ("argv_extra", "code"),
    [
        (["--sensitive", "nope"], "missing_column"),
        (["--sensitive", "A", "--label", "x"], "non_binary"),
        (["--sensitive", "A", "--mitigate", "threshold"], "usage"),  # no scores to threshold
        (["--sensitive", "A", "--templates", "t.txt"], "usage"),  # --terms missing
        (["--sensitive", "A", "--templates", "t.txt", "--terms", "t.json"], "usage"),  # not a text model
    ],
)
def test_bad_input_exits_2_with_a_typed_error_and_writes_nothing(
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    argv_extra: list[str],
    code: str,
) -> None:
    ckpt, data, preds = planted_files
    argv = [
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--predictions",
        preds,
        "--json",
        *argv_extra,
    ]
    status, out = _run(capsys, *argv)
    assert status == 2
    assert out["error"]["code"] == code
    assert sorted(p.name for p in ckpt.iterdir()) == ["weights.bin"]


def test_nan_and_row_count_problems_are_typed(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, data, preds = planted_files
    frame = planted.frame[["A", "y"]].copy().astype(object)
    frame.loc[5, "A"] = None
    holes = tmp_path / "holes.csv"
    frame.to_csv(holes, index=False)
    base = ["eval", "fairness", ckpt, "--label", "y", "--sensitive", "A", "--json"]
    status, out = _run(capsys, *base, "--data", holes, "--predictions", preds)
    assert status == 2 and out["error"]["code"] == "missing_value" and out["error"]["rows"] == [5]
    short = tmp_path / "short.csv"
    pd.read_csv(preds).head(10).to_csv(short, index=False)
    status, out = _run(capsys, *base, "--data", data, "--predictions", short)
    assert status == 2 and out["error"]["code"] == "length_mismatch"
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really parquet PAR1")
    status, out = _run(capsys, *base, "--data", bad, "--predictions", preds)
    assert status == 2 and out["error"]["code"] == "unsupported_format"
    status, out = _run(capsys, *base, "--data", tmp_path / "absent.csv", "--predictions", preds)
    assert status == 2 and out["error"]["code"] == "not_found"


def test_compare_flags_regressions_and_refuses_other_data(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, data, preds = planted_files
    common = ["--data", data, "--label", "y", "--sensitive", "A", "--json"]
    assert (
        _run(
            capsys,
            "eval",
            "fairness",
            ckpt,
            *common,
            "--predictions",
            preds,
            "--score-column",
            "score",
            "--mitigate",
            "threshold",
        )[0]
        == 0
    )
    derived = tmp_path / "model-threshold-demographic_parity"
    # mitigated vs base: parity improves, accuracy drops -> the accuracy drop is a regression
    status, cmp = _run(capsys, "eval", "compare", ckpt, derived, "--json")
    assert status == 1
    regressed = {(c["metric"], c["group"]) for c in cmp["regressed"]}
    assert ("demographic_parity_difference", None) not in regressed
    assert ("accuracy", None) in regressed
    # the other direction: the base regressed parity relative to the mitigated model
    status, cmp = _run(capsys, "eval", "compare", derived, ckpt, "--json")
    assert status == 1
    assert ("demographic_parity_difference", None) in {(c["metric"], c["group"]) for c in cmp["regressed"]}
    status, human = _run(capsys, "eval", "compare", ckpt, derived)
    assert status == 1 and "REGRESSED" in human["text"] and "metric(s) regressed" in human["text"]
    # a model compared with itself regresses nothing
    assert _run(capsys, "eval", "compare", ckpt, ckpt, "--json")[0] == 0
    # fresh evaluation of two predictions files on the same data
    status, cmp = _run(
        capsys, "eval", "compare", ckpt, ckpt, *common, "--predictions", preds, "--derived-predictions", preds
    )
    assert status == 0 and cmp["regressed"] == []
    # a record made on other data cannot be compared
    other = tmp_path / "other"
    other.mkdir()
    data2 = tmp_path / "data2.csv"
    planted.frame[["A", "y"]].head(1000).to_csv(data2, index=False)
    short = tmp_path / "preds2.csv"
    planted.frame[["prediction"]].head(1000).to_csv(short, index=False)
    assert (
        _run(
            capsys,
            "eval",
            "fairness",
            other,
            "--data",
            data2,
            "--label",
            "y",
            "--sensitive",
            "A",
            "--predictions",
            short,
            "--json",
        )[0]
        == 0
    )
    status, out = _run(capsys, "eval", "compare", ckpt, other, "--json")
    assert status == 2 and "same data" in out["error"]["message"]


def test_html_escapes_user_strings(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, _, preds = planted_files
    evil = '<script>alert("x")</script>'
    frame = planted.frame[["A", "y"]].copy()
    frame["A"] = frame["A"].map({"a": evil, "b": "b&b"})
    frame = frame.rename(columns={"A": '"><img src=x onerror=1>'})
    data = tmp_path / "evil.csv"
    frame.to_csv(data, index=False)
    html = tmp_path / "r.html"
    status, _ = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        '"><img src=x onerror=1>',
        "--predictions",
        preds,
        "--html",
        html,
        "--no-record",
    )
    assert status == 0
    page = html.read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "b&amp;b" in page
    assert not (ckpt / "fairness.json").exists()


@pytest.mark.parametrize("extra", [["--threshold", "1.5"], ["--min-group-size", "-1"]])
def test_out_of_range_options_are_usage_errors(
    planted_files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    ckpt, data, preds = planted_files
    argv = [
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A",
        "--predictions",
        preds,
    ]
    status, out = _run(capsys, *argv, "--json", *extra)
    assert status == 2 and out["error"]["code"] == "usage"


def test_intersectional_mitigation_and_parquet_limits(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, data, preds = planted_files
    out = tmp_path / "fair"
    status, rec = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A,B",
        "--predictions",
        preds,
        "--score-column",
        "score",
        "--mitigate",
        "threshold",
        "--out",
        out,
        "--json",
    )
    assert status == 0
    groups = json.loads((out / "thresholds.json").read_text())["thresholds"]["groups"]
    assert sorted(groups) == ["A=a,B=x", "A=a,B=y", "A=b,B=x", "A=b,B=y"]
    before = rec["report"]["disparities"]["demographic_parity_difference"]
    assert rec["mitigation"]["report"]["disparities"]["demographic_parity_difference"] < before / 4

    from cairn.errors import LimitExceededError
    from cairn.evaluate.data import load_table

    big = tmp_path / "zeros.parquet"
    pd.DataFrame({"z": [0] * 200_000}).to_parquet(big, compression="zstd")
    assert big.stat().st_size < 100_000
    with pytest.raises(LimitExceededError):
        load_table(big, max_bytes=100_000)


def test_hostile_card_stops_the_run_before_anything_is_written(
    tmp_path: Path, planted_files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data, preds = planted_files
    card = "---\n!!python/object/apply:os.system ['echo pwned']\n---\n"
    (ckpt / "README.md").write_text(card)
    status, out = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A",
        "--predictions",
        preds,
        "--score-column",
        "score",
        "--mitigate",
        "threshold",
        "--json",
    )
    assert status == 2 and out["error"]["code"] == "bad_format"
    assert sorted(p.name for p in ckpt.iterdir()) == ["README.md", "weights.bin"]
    assert (ckpt / "README.md").read_text() == card
    assert not (tmp_path / "model-threshold-demographic_parity").exists()


def test_derived_artifact_with_predictions_file_and_hostile_lineage(
    tmp_path: Path, planted_files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data, preds = planted_files
    common = ["--data", data, "--label", "y", "--sensitive", "A", "--predictions", preds, "--json"]
    status, rec = _run(
        capsys, "eval", "fairness", ckpt, *common, "--score-column", "score", "--mitigate", "threshold"
    )
    assert status == 0
    derived = tmp_path / "model-threshold-demographic_parity"
    status, again = _run(
        capsys, "eval", "fairness", derived, *common, "--score-column", "score", "--no-record"
    )
    assert status == 0 and again["report"] == rec["mitigation"]["report"]
    status, out = _run(capsys, "eval", "fairness", derived, *common, "--no-record")
    assert status == 2 and "scores" in out["error"]["message"]  # thresholds need scores
    status, out = _run(
        capsys, "eval", "fairness", derived, *common, "--score-column", "score", "--mitigate", "threshold"
    )
    assert status == 2 and out["error"]["code"] == "usage"
    doc = json.loads((derived / "thresholds.json").read_text())
    for base in ("../../etc", "..", ""):
        doc["lineage"]["base"] = base
        (derived / "thresholds.json").write_text(json.dumps(doc))
        status, out = _run(
            capsys, "eval", "fairness", derived, *common, "--score-column", "score", "--no-record"
        )
        assert status == 2 and out["error"]["code"] == "bad_format"


def test_string_labels_and_predictions_with_pos_label(
    tmp_path: Path,
    planted: Planted,
    planted_files: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, _, _ = planted_files
    data = tmp_path / "named.csv"
    preds = tmp_path / "named_preds.csv"
    pd.DataFrame({"A": planted.a, "y": np.where(planted.y == 1, "approved", "denied")}).to_csv(
        data, index=False
    )
    pd.DataFrame({"prediction": np.where(planted.pred == 1, "approved", "denied")}).to_csv(preds, index=False)
    argv = [
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A",
        "--predictions",
        preds,
    ]
    status, out = _run(capsys, *argv, "--json")
    assert status == 2 and out["error"]["code"] == "non_binary"
    status, rec = _run(capsys, *argv, "--pos-label", "approved", "--json", "--no-record")
    assert status == 0
    assert rec["report"]["disparities"]["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(planted.y, planted.pred, sensitive_features=planted.a)
    )


def test_evaluating_a_cairn_checkpoint_keeps_its_manifest_complete(
    tmp_path: Path, planted_files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """fairness.json and README.md land in the manifest, and the result is summarised in its metadata."""
    import cairn

    _, data, preds = planted_files
    ckpt = tmp_path / "ck"
    cairn.save(ckpt, model={"w": np.ones(3, np.float32)}, rng_state=False)
    status, _ = _run(
        capsys,
        "eval",
        "fairness",
        ckpt,
        "--data",
        data,
        "--label",
        "y",
        "--sensitive",
        "A",
        "--predictions",
        preds,
        "--json",
    )
    assert status == 0
    manifest = cairn.verify(ckpt)  # would flag fairness.json and README.md as stray files otherwise
    assert {"fairness.json", "README.md"} <= set(manifest.files)
    summary = manifest.metadata["evaluations"]["fairness"]
    assert summary["file"] == "fairness.json"
    assert summary["demographic_parity_difference"] == pytest.approx(
        json.loads((ckpt / "fairness.json").read_text())["report"]["disparities"][
            "demographic_parity_difference"
        ]
    )
