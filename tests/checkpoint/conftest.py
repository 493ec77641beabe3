"""Fixtures for the checkpoint library tests (helpers live in ckpt_helpers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from ckpt_helpers import make_state, train_steps


@pytest.fixture
def trained() -> dict[str, Any]:
    state = make_state()
    train_steps(state, 3)
    return state
