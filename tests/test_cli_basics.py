"""The CLI's frame: discovery of commands, help, version, exit statuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cairn.cli.main import build_parser, main


def test_version_via_console_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cairn", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("cairn ")


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: cairn" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["no-such-command"])
    assert exc.value.code == 2
