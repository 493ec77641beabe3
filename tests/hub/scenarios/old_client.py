"""Scenario for the older client generation (huggingface_hub 0.36 + transformers 4.x, requests-based),
run in a subprocess by test_hf_client_old.py. Usage: old_client.py ENDPOINT TOKEN OTHER_TOKEN WORKDIR."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

endpoint, token, other, work = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
os.environ["HF_ENDPOINT"] = endpoint  # read at import, exactly as users configure it
os.environ["HF_HOME"] = str(work / "hf-home")
os.environ["DISABLE_SAFETENSORS_CONVERSION"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import huggingface_hub  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError  # noqa: E402

assert huggingface_hub.__version__.startswith("0."), huggingface_hub.__version__
assert transformers.__version__.startswith("4."), transformers.__version__
api = HfApi(token=token)
assert api.whoami()["name"] == "alice"
api.create_repo("alice/old-gen", private=False)
weights = os.urandom(200_000)
folder = work / "up"
(folder / "sub").mkdir(parents=True)
(folder / "sub" / "w.safetensors").write_bytes(weights)  # LFS: 0.36 negotiates, gets "basic"
(folder / "notes.txt").write_text("old client")
commit = api.upload_folder(repo_id="alice/old-gen", folder_path=folder, commit_message="from 0.36")
api.create_commit("alice/old-gen", [CommitOperationAdd("extra.txt", b"x")], commit_message="more")
api.create_branch("alice/old-gen", branch="dev/y")
api.create_tag("alice/old-gen", tag="v0", revision=commit.oid)
path = hf_hub_download("alice/old-gen", "sub/w.safetensors", revision="v0")
assert Path(path).read_bytes() == weights
assert Path(path).resolve().name == hashlib.sha256(weights).hexdigest()
snap = Path(snapshot_download("alice/old-gen", revision="dev/y"))  # 0.36 lists files from siblings
assert (snap / "notes.txt").read_text() == "old client" and (snap / "extra.txt").exists()
refs = api.list_repo_refs("alice/old-gen")
assert {b.name for b in refs.branches} == {"main", "dev/y"}
for exc, call in (
    (EntryNotFoundError, lambda: hf_hub_download("alice/old-gen", "missing.txt")),
    (RevisionNotFoundError, lambda: hf_hub_download("alice/old-gen", "notes.txt", revision="nope")),
    (RepositoryNotFoundError, lambda: hf_hub_download("alice/none", "notes.txt")),
):
    try:
        call()
    except exc:
        pass
    else:
        raise AssertionError(f"expected {exc.__name__}")
api.update_repo_visibility("alice/old-gen", private=True)
try:
    HfApi(token=other).model_info("alice/old-gen")
except RepositoryNotFoundError:
    pass
else:
    raise AssertionError("private repo visible to another user")

from transformers import AutoModel, BertConfig, BertModel  # noqa: E402

torch.manual_seed(0)
model = BertModel(
    BertConfig(
        vocab_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
).eval()
model.push_to_hub("alice/old-bert", token=token)
loaded = AutoModel.from_pretrained("alice/old-bert", token=token).eval()
ids = torch.tensor([[1, 2, 3, 4]])
with torch.no_grad():
    assert torch.equal(model(ids).last_hidden_state, loaded(ids).last_hidden_state)
print("OLD-CLIENT-OK")
