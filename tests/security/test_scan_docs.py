"""docs/security.md documents every option of ``cairn scan`` and every rule the scanner can report."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cairn.cli.main import build_parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
SRC = Path(__file__).resolve().parents[2] / "src" / "cairn" / "security"


def test_every_scan_option_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    scan = sub.choices["scan"]
    options = [s for a in scan._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert options
    missing = [o for o in options if o not in DOC]
    assert not missing, missing


def test_every_rule_is_documented() -> None:
    rules = set()
    for path in SRC.glob("*.py"):
        rules |= set(
            re.findall(
                r'"((?:pickle|zip|archive|keras|onnx|gguf|safetensors|npy|polyglot|torchscript)-[a-z-]+)"',
                path.read_text(),
            )
        )
    rules |= {f"zip-{kind}" for kind in ("name-mismatch", "bad-local-header", "truncated", "bad-directory")}
    assert len(rules) > 20
    missing = sorted(r for r in rules if r not in DOC)
    assert not missing, missing
