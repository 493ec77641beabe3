"""The format package's own rules: light imports, a docstring and ``__all__`` in every module."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import cairn.format


def test_readers_and_commands_import_no_heavy_packages() -> None:
    code = (
        "import sys, cairn.format.reader, cairn.format.convert, cairn.format.keras, cairn.format.onnx, "
        "cairn.format.gguf, cairn.cli.main; cairn.cli.main.build_parser(); "
        "print(sorted(m for m in ('torch', 'onnx', 'gguf', 'h5py', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_has_a_docstring_and_all() -> None:
    for info in pkgutil.iter_modules(cairn.format.__path__):
        module = importlib.import_module(f"cairn.format.{info.name}")
        assert module.__doc__, info.name
        names = getattr(module, "__all__", None)
        assert names is not None, info.name
        for name in names:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_every_command_option_is_documented() -> None:
    from pathlib import Path

    from cairn.cli.main import build_parser

    docs = (Path(__file__).parents[2] / "docs" / "format.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("inspect", "diff", "convert"):
        parser = sub.choices[command]  # type: ignore[attr-defined]
        assert f"cairn {command}" in docs
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in docs, f"cairn {command} {flag} is not in docs/format.md"
