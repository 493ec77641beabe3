"""The curated public API: what `import cairn` exports, and that it stays light."""

from __future__ import annotations

import subprocess
import sys

import cairn


def test_exported_names() -> None:
    assert set(cairn.__all__) >= {
        "CheckpointManager",
        "LoadResult",
        "dataset",
        "errors",
        "load",
        "load_state",
        "policies",
        "save",
        "verify",
        "__version__",
    }
    for name in cairn.__all__:
        assert hasattr(cairn, name), name


def test_policies_importable_both_ways() -> None:
    from cairn.policies import AnyOf, BestN, LatestN

    assert cairn.policies.AnyOf is AnyOf
    assert AnyOf(LatestN(1), BestN(1, "loss")).keep([]) == set()


def test_import_cairn_does_not_import_torch() -> None:
    code = "import sys, cairn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
