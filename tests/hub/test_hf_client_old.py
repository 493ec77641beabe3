"""The older client generation the spec names (huggingface_hub 0.36, requests-based, with transformers
4.x), installed with pip into a separate target directory once and run in a subprocess against the hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_testing import LiveHub

OLD = ["huggingface_hub==0.36.2", "transformers==4.57.6", "tokenizers==0.22.1", "requests>=2.31"]
SCENARIO = Path(__file__).parent / "scenarios" / "old_client.py"


@pytest.fixture(scope="session")
def old_client_path() -> Path:
    """A directory holding the old client packages (cached inside the virtual environment)."""
    target = Path(sys.prefix) / "cairn-compat" / "hf-0.36.2"
    if not (target / ".complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "--no-deps", *OLD[:3]],
            check=True,
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), OLD[3]], check=True
        )
        (target / ".complete").write_text("\n".join(OLD))
    return target


def test_old_client_generation(hub: LiveHub, old_client_path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS"))}
    env["PYTHONPATH"] = str(old_client_path)
    out = subprocess.run(
        [sys.executable, str(SCENARIO), hub.url, hub.token, hub.other_token, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert out.returncode == 0 and "OLD-CLIENT-OK" in out.stdout, out.stdout[-3000:] + out.stderr[-5000:]
