"""The format area's own rules: light imports, a docstring and ``__all__`` in every module, documented flags.

Only this area's modules and commands are checked, so that other areas' modules in ``cairn.format`` and
``cairn.cli.commands`` keep their own rules.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

MODULES = [
    "arrays", "convert", "detect", "diff", "gguf", "hdf5", "hf_config", "inspection", "keras",
    "numpy_files", "objtree", "onnx", "protobuf", "reader", "safetensors_index", "stats", "torch_files",
    "torch_tar",
]  # fmt: skip
COMMANDS = ["inspect", "diff", "convert"]


def test_readers_and_commands_import_no_heavy_packages() -> None:
    imports = ", ".join(
        [f"cairn.format.{m}" for m in MODULES] + [f"cairn.cli.commands.{c}" for c in COMMANDS]
    )
    code = (
        f"import sys, {imports}; "
        "print(sorted(m for m in ('torch', 'onnx', 'gguf', 'h5py', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_has_a_docstring_and_all() -> None:
    for name in MODULES:
        module = importlib.import_module(f"cairn.format.{name}")
        assert module.__doc__, name
        names = getattr(module, "__all__", None)
        assert names is not None, name
        for exported in names:
            assert hasattr(module, exported), f"{name}.{exported}"


def test_every_command_option_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "format.md").read_text()
    parser = argparse.ArgumentParser(prog="cairn")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        importlib.import_module(f"cairn.cli.commands.{command}").register(sub)
    for command in COMMANDS:
        assert f"cairn {command}" in docs
        for action in sub.choices[command]._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in docs, f"cairn {command} {flag} is not in docs/format.md"
