"""The package surface: exported names, light imports, and every CLI option documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cairn.evaluate
from cairn.cli.main import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "evaluate.md"


def test_exported_names_exist() -> None:
    assert sorted(cairn.evaluate.__all__) == sorted(set(cairn.evaluate.__all__))
    for name in cairn.evaluate.__all__:
        assert getattr(cairn.evaluate, name) is not None


def test_importing_the_eval_command_and_package_stays_light() -> None:
    code = (
        "import sys, cairn.evaluate, cairn.cli.commands.eval as e, argparse; "
        "e.register(argparse.ArgumentParser().add_subparsers()); "
        "print(','.join(k for k in ('pandas','fairlearn','torch','transformers','sklearn','yaml') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _options(*path: str) -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    sub = action.choices["eval"]  # type: ignore[index]
    inner = next(a for a in sub._actions if a.dest == "eval_command")
    command = inner.choices[path[0]]  # type: ignore[index]
    return {s for a in command._actions for s in a.option_strings if s.startswith("--") and s != "--help"}


def test_every_eval_option_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"--[a-z][a-z-]+", text))
    for command in ("fairness", "compare", "counterfactual"):
        missing = _options(command) - documented
        assert not missing, f"cairn eval {command}: undocumented options {sorted(missing)}"
