"""Types shared by the client tests (a uniquely named module: every test folder has its own conftest)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hub"))

from hub_testing import LiveHub


@dataclass
class ClientHub(LiveHub):
    """A live hub for client tests, with the name of the backend pair it runs on."""

    backend: str = ""
