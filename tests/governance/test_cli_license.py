"""``cairn license check``: exit statuses 0 / 1 / 2, --json, --as, --use, --models-dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gov_fixtures import MakeModel

from cairn.cli.main import main

LLAMA3 = "META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 Version Release Date: April 18, 2024"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["license", "check", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_llama3_finetune_without_the_name_prefix(
    make_model: MakeModel, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model("hub/meta-llama/Meta-Llama-3-8B", license="llama3", files={"LICENSE": LLAMA3})
    child = make_model(
        "work/my-chat", license="llama3", base_model="meta-llama/Meta-Llama-3-8B", files={"LICENSE": LLAMA3}
    )
    hub = str(child.parent.parent / "hub")
    code, data = run_json(capsys, str(child), "--models-dir", hub)
    assert code == 0 and data["status"] == "no_conflict_found"
    prefix = [o for o in data["obligations"] if o["code"] == "name_prefix"]  # type: ignore[union-attr]
    assert prefix[0]["status"] == "missing" and '"Llama 3"' in prefix[0]["message"]
    # without --models-dir the parent is not found next to the child: cannot decide
    code, data = run_json(capsys, str(child))
    assert code == 2 and data["status"] == "needs_review"


def test_exit_1_on_conflict_with_human_output(
    make_model: MakeModel, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model("nc", license="cc-by-nc-4.0")
    child = make_model("child", license="apache-2.0", base_model="nc")
    assert main(["license", "check", str(child)]) == 1
    out = capsys.readouterr().out
    assert "conflict" in out and "non-commercial (cc-by-nc-4.0)" in out and "not legal advice" in out


def test_as_adapter_and_use_commercial(make_model: MakeModel, capsys: pytest.CaptureFixture[str]) -> None:
    make_model("nc", license="cc-by-nc-4.0")
    child = make_model("lora", license="apache-2.0", base_model="nc")
    assert run_json(capsys, str(child), "--as", "adapter")[0] == 0
    code, data = run_json(capsys, str(child), "--as", "adapter", "--use", "commercial")
    assert code == 1 and data["use"] == "commercial"


def test_not_a_directory_is_a_typed_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["license", "check", str(tmp_path / "missing"), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "not_found"
    assert "neither a model directory nor a hub repository" in captured.err


def test_bad_choice_is_a_usage_error(make_model: MakeModel) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["license", "check", str(make_model("m", license="mit")), "--use", "evil"])
    assert exc.value.code == 2


def test_console_script_end_to_end(make_model: MakeModel) -> None:
    make_model("unknown-base", license="mystery")
    child = make_model("child", license="mit", base_model="unknown-base")
    out = subprocess.run(
        [sys.executable, "-m", "cairn", "license", "check", str(child), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert json.loads(out.stdout)["needs_review"][0]["code"] == "unknown_license"
