"""Builders for model directories in tmp: a README with front matter plus optional LICENSE/NOTICE files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gov_fixtures import MakeModel


@pytest.fixture
def make_model(tmp_path: Path) -> MakeModel:
    def make(name: str, body: str = "# model\n", files: dict[str, str] | None = None, **meta: Any) -> Path:
        d = tmp_path / name
        d.mkdir(parents=True)
        front = {k.replace("model_index", "model-index"): v for k, v in meta.items() if v is not None}
        text = body if not front else f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{body}"
        (d / "README.md").write_text(text, encoding="utf-8")
        for fname, content in (files or {}).items():
            (d / fname).write_text(content, encoding="utf-8")
        return d

    return make
