"""The public surface of cairn.security and cairn.format.pickle_vm: what other areas build on."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import cairn.format.pickle_vm as pickle_vm
import cairn.security as security


def test_exported_names_exist() -> None:
    for module in (security, pickle_vm):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_results_are_frozen_dataclasses() -> None:
    for cls in (
        security.Finding,
        security.ScanError,
        security.Skipped,
        security.ScanReport,
        pickle_vm.PickleResult,
    ):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    for cls in (pickle_vm.Global, pickle_vm.Call, pickle_vm.Build, pickle_vm.PersistentRef):
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_importing_cairn_security_does_not_import_torch() -> None:
    code = "import sys, cairn.security, cairn.format.pickle_vm; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
