"""Fixtures of the registry tests: a fresh registry on SQLite and a local blob folder per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.registry import Registry


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    """An empty registry (modules that need users in it define their own ``reg``)."""
    registry = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    yield registry
    registry.close()
