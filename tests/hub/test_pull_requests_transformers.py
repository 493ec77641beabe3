"""transformers' ``push_to_hub(create_pr=True)`` from a user who cannot write the target repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_testing import LiveHub
from huggingface_hub import HfApi

torch = pytest.importorskip("torch")


def test_push_to_hub_create_pr(hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants, hf_api
    from transformers import AutoModel, BertConfig, BertModel

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)
    import transformers.utils.hub as tf_hub

    monkeypatch.setattr(tf_hub, "_hf_api", None)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    alice = HfApi(endpoint=hub.url, token=hub.token)
    alice.create_repo("alice/tf-pr")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=32,
    )
    model = BertModel(config).eval()
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
