"""transformers' ``push_to_hub(create_pr=True)`` from a user who cannot write the target repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_testing import LiveHub, point_transformers_at, tiny_bert
from huggingface_hub import HfApi

torch = pytest.importorskip("torch")


def test_push_to_hub_create_pr(hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModel

    point_transformers_at(hub.url, monkeypatch)
    alice = HfApi(endpoint=hub.url, token=hub.token)
    alice.create_repo("alice/tf-pr")
    model = tiny_bert()
    info = model.push_to_hub("alice/tf-pr", token=hub.other_token, create_pr=True)
    assert info.pr_revision is not None
    assert "model.safetensors" not in alice.list_repo_files("alice/tf-pr")
    loaded = AutoModel.from_pretrained(
        "alice/tf-pr", revision=info.pr_revision, cache_dir=tmp_path / "c1", token=hub.token
    )
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(model(ids).last_hidden_state, loaded(ids).last_hidden_state)
    alice.merge_pull_request("alice/tf-pr", info.pr_num)
    assert "model.safetensors" in alice.list_repo_files("alice/tf-pr")
