"""Fixtures for every test: cairn's per-user caches point into the test session's temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_verified_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep cairn's verified-file stat cache (``CAIRN_VERIFIED_CACHE``) out of the user's home; the
    worker processes the tests start inherit the setting."""
    path = tmp_path_factory.mktemp("verified-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAIRN_VERIFIED_CACHE", str(path))
        yield path
