"""docs/access.md documents every ``cairn org|access|token`` action and option, every audit action, and
every route of :mod:`cairn.hub.access_routes`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cairn.cli.main import build_parser
from cairn.registry import audit

DOC = (Path(__file__).parents[2] / "docs" / "access.md").read_text()


def _sub(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("group", ["org", "access", "token"])
def test_every_action_and_option_is_documented(group: str) -> None:
    commands = _sub(build_parser())
    for action, parser in _sub(commands[group]).items():
        assert re.search(rf"cairn {group} [^\n`]*\b{action}\b", DOC), f"cairn {group} {action}"
        for option in parser._actions:
            for flag in option.option_strings:
                if flag.startswith("--") and flag not in {"--help", "--json", "--endpoint", "--token"}:
                    assert flag in DOC, f"cairn {group} {action} {flag}"


def test_every_audit_action_is_documented() -> None:
    for action in re.findall(r"``([a-z]+\.[a-z]+)``", audit.__doc__ or ""):
        family, verb = action.split(".")
        assert re.search(rf"`{family}\.[a-z|]*\b{verb}\b", DOC), action
