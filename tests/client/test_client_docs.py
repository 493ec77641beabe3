"""docs/client.md documents every option of ``cairn push`` and ``cairn pull`` and every client setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.cli.main import build_parser

DOC = (Path(__file__).parents[2] / "docs" / "client.md").read_text()


@pytest.mark.parametrize("command", ["push", "pull"])
def test_every_option_is_documented(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    found = 0
    for action in sub.choices[command]._actions:  # type: ignore[index]
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in DOC, flag
                found += 1
    assert found >= 5


def test_every_environment_variable_is_documented() -> None:
    import inspect

    from cairn.client import settings

    source = inspect.getsource(settings.client_settings)
    for name in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE", "HF_HOME"):
        assert name in source and name in DOC, name
