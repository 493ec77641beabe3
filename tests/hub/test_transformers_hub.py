"""transformers against the hub: a tiny BERT built here is pushed with ``push_to_hub`` and loaded back
with ``AutoModel``/``AutoTokenizer.from_pretrained``; outputs must be equal."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_testing import LiveHub, point_transformers_at, tiny_bert

torch = pytest.importorskip("torch")


def test_push_to_hub_and_from_pretrained(
    hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi
    from transformers import AutoModel, AutoTokenizer, BertTokenizerFast

    point_transformers_at(hub.url, monkeypatch)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "cairn"]) + "\n"
    )
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    model = tiny_bert()
    model.push_to_hub("alice/tiny-bert", token=hub.token)
    tokenizer.push_to_hub("alice/tiny-bert", token=hub.token)

    cache = tmp_path / "cache"
    loaded = AutoModel.from_pretrained("alice/tiny-bert", cache_dir=cache, token=hub.token).eval()
    loaded_tok = AutoTokenizer.from_pretrained("alice/tiny-bert", cache_dir=cache, token=hub.token)
    batch = loaded_tok(["hello cairn world"], return_tensors="pt")
    assert (
        batch["input_ids"].tolist()
        == tokenizer(["hello cairn world"], return_tensors="pt")["input_ids"].tolist()
    )
    with torch.no_grad():
        want = model(**batch).last_hidden_state
        got = loaded(**batch).last_hidden_state
    assert torch.equal(want, got)
    # a sharded checkpoint: index.json plus shards, fetched through snapshot_download(allow_patterns=...)
    model.push_to_hub("alice/tiny-bert-sharded", token=hub.token, max_shard_size="20KB")
    sharded_files = HfApi(endpoint=hub.url).list_repo_files("alice/tiny-bert-sharded")
    assert "model.safetensors.index.json" in sharded_files
    assert sum(f.endswith(".safetensors") for f in sharded_files) > 1
    sharded = AutoModel.from_pretrained("alice/tiny-bert-sharded", cache_dir=cache).eval()
    with torch.no_grad():
        assert torch.equal(sharded(**batch).last_hidden_state, want)
