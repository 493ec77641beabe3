"""The public names of the hub's packages exist, and importing cairn stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["cairn.store", "cairn.meta", "cairn.registry", "cairn.hub"])
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__doc__ and mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_import_cairn_and_cli_do_not_load_the_server_stack() -> None:
    code = (
        "import sys, cairn, cairn.cli.main; cairn.cli.main.build_parser();"
        "print(sorted(m for m in ('uvicorn', 'starlette', 'sqlalchemy', 'boto3', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
