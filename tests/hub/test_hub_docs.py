"""docs/hub.md documents every hub setting and every ``cairn serve`` option."""

from __future__ import annotations

from pathlib import Path

from cairn.cli.main import build_parser
from cairn.hub.config import describe_settings

DOC = (Path(__file__).parents[2] / "docs" / "hub.md").read_text()


def test_every_setting_is_documented() -> None:
    for name, default, help_text in describe_settings():
        assert help_text, f"HubConfig.{name} has no docstring"
        assert f"| `{name}` | `{default}` |" in DOC, name


def test_every_serve_option_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    serve = sub.choices["serve"]  # type: ignore[index]
    for action in serve._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in DOC, flag
