"""``cairn scan``: exit statuses, table, JSON and SARIF output."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from security_corpus import build_corpus

from cairn.cli.main import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    build_corpus(folder / "bad")
    (folder / "good").mkdir()
    (folder / "good" / "weights.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    return folder


def test_clean_file_exits_zero(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files / "good")]) == 0
    assert "1 scanned, 0 findings" in capsys.readouterr().out


def test_findings_exit_one_with_a_table(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files / "bad" / "proto4.pkl")]) == 1
    out = capsys.readouterr().out
    assert "critical" in out and "pickle-dangerous-global" in out and "os.system" in out


def test_fail_on_threshold(files: Path) -> None:
    # an unknown call is high: it fails at high, not at critical
    path = str(files / "bad" / "unknown_call.pkl")
    assert main(["scan", "--fail-on", "high", path]) == 1
    assert main(["scan", "--fail-on", "critical", path]) == 0


def test_not_scanned_exits_two(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files / "bad" / "model.7z"), str(files / "good")]) == 2
    assert "not scanned" in capsys.readouterr().out


def test_json_output(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--json", str(files / "bad" / "torch_payload.pt")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == 1 and doc["fail_on"] == "medium"
    (finding,) = [f for f in doc["findings"] if f["rule"] == "pickle-dangerous-global"]
    assert finding["severity"] == "critical" and finding["member"] == "archive/data.pkl"
    assert doc["errors"] == [] and doc["skipped"] == []


def test_sarif_output(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--sarif", str(files / "bad" / "proto2.pkl"), str(files / "bad" / "model.7z")]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert any(r["ruleId"] == "pickle-dangerous-global" and r["level"] == "error" for r in run["results"])
    assert run["invocations"][0]["executionSuccessful"] is False


def test_bad_severity_is_a_usage_error(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--fail-on", "catastrophic", str(files / "good")]) == 2
    assert "unknown severity" in capsys.readouterr().err
