"""Fixtures for the checkpoint library tests (helpers live in ckpt_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ckpt_helpers import make_state, train_steps


@pytest.fixture(autouse=True, scope="session")
def _private_verified_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep cairn's verified-file stat cache (``CAIRN_VERIFIED_CACHE``) out of the user's home; the
    worker processes the tests start inherit the setting."""
    path = tmp_path_factory.mktemp("verified-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAIRN_VERIFIED_CACHE", str(path))
        yield path


@pytest.fixture
def trained() -> dict[str, Any]:
    state = make_state()
    train_steps(state, 3)
    return state
