"""The governance doc page names every command and option, and the package stays light to import."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.cli.main import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "governance.md"
COMMANDS = [("license", "check"), ("card",), ("openness",), ("bom",), ("lineage",)]


def _subparser(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_is_documented(path: tuple[str, ...]) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"cairn {' '.join(path)} PATH" in text
    parser = _subparser(build_parser(), path)
    options = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert [o for o in options if o not in text] == []


def test_import_does_not_pull_in_heavy_or_optional_packages() -> None:
    code = "import sys, cairn, cairn.governance, cairn.cli.main; print(sorted(m for m in ('yaml', 'torch', 'jsonschema') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
