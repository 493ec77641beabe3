"""Trust on upload with the real ``huggingface_hub`` client: scanning before a commit is visible (reject
and quarantine policies), security status in model_info and the tree, safetensors parameter counts, and
signatures verified against stored digests."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import httpx
import numpy as np
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
from safetensors.numpy import save as st_save


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


EVIL = pickle.dumps({"weights": _Evil()})


def _torch_bytes() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"layer.weight": torch.randn(4, 4), "layer.bias": torch.zeros(4)}, buf)
    return buf.getvalue()


def _api(hub: LiveHub, token: str | None = None) -> HfApi:
    return HfApi(endpoint=hub.url, token=token or hub.token)


def _files(api: HfApi, repo: str) -> set[str]:
    return set(api.list_repo_files(repo))


def test_malicious_pickle_is_rejected_with_its_findings(hub: LiveHub) -> None:
    api = _api(hub)
    api.create_repo("alice/evil")
    head = api.model_info("alice/evil").sha
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            "alice/evil",
            [
                CommitOperationAdd("pytorch_model.bin", EVIL),
                CommitOperationAdd("config.json", b"{}"),
            ],
            commit_message="try",
        )
    text = str(err.value)
    assert "unsafe content" in text and "pytorch_model.bin" in text and "posix.system" in text
    assert err.value.response is not None and err.value.response.status_code == 400
    assert api.model_info("alice/evil").sha == head  # nothing of the commit became visible
    assert _files(api, "alice/evil") == {".gitattributes"}


def test_clean_checkpoint_and_safetensors_pass_with_status(hub: LiveHub, tmp_path: Path) -> None:
    api = _api(hub)
    api.create_repo("alice/clean")
    shard1 = st_save({"a": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.float16)})
    shard2 = st_save({"c": np.zeros((2, 2), np.float32)})
    api.create_commit(
        "alice/clean",
        [
            CommitOperationAdd("pytorch_model.bin", _torch_bytes()),
            CommitOperationAdd("model-00001-of-00002.safetensors", shard1),
            CommitOperationAdd("model-00002-of-00002.safetensors", shard2),
            CommitOperationAdd("README.md", b"# hi\n"),
        ],
        commit_message="clean",
    )
    info = api.model_info("alice/clean", securityStatus=True)
    assert info.security_repo_status == {"scansDone": True, "filesWithIssues": []}
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"F32": 16, "F16": 5} and info.safetensors.total == 21
    only = api.model_info("alice/clean", expand=["safetensors"])
    assert only.safetensors is not None and only.safetensors.total == 21 and only.siblings is None
    tree = {f.path: f for f in api.list_repo_tree("alice/clean", expand=True)}
    security = tree["pytorch_model.bin"].security  # type: ignore[union-attr]
    assert security is not None and security.safe and security.status == "safe"
    report = httpx.get(f"{hub.url}/api/models/alice/clean/security/main").json()
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path["pytorch_model.bin"]["status"] == "safe"
    assert by_path["README.md"]["status"] == "safe" and report["policy"] == "reject"
    assert report["signature"]["status"] == "none"


def test_quarantine_refuses_downloads_until_an_admin_releases(
    quarantine_hub: LiveHub, cache_dir: Path
) -> None:
    hub = quarantine_hub
    api = _api(hub)
    api.create_repo("alice/quar")
    api.upload_file(path_or_fileobj=EVIL, path_in_repo="model.pkl", repo_id="alice/quar")
    assert "model.pkl" in _files(api, "alice/quar")
    with pytest.raises(HfHubHTTPError) as err:
        hf_hub_download("alice/quar", "model.pkl", endpoint=hub.url, cache_dir=cache_dir, token=hub.token)
    assert "quarantined" in str(err.value)
    status = api.model_info("alice/quar", securityStatus=True).security_repo_status
    assert status is not None and status["filesWithIssues"][0]["path"] == "model.pkl"
    assert status["filesWithIssues"][0]["level"] == "unsafe"
    tree = {f.path: f for f in api.list_repo_tree("alice/quar", expand=True)}
    assert tree["model.pkl"].security.status == "unsafe"  # type: ignore[union-attr]
    sha = tree["model.pkl"].lfs.sha256  # type: ignore[union-attr]
    url = f"{hub.url}/api/models/alice/quar/quarantine"
    bob = {"authorization": f"Bearer {hub.other_token}"}
    assert httpx.post(url, json={"sha256": sha}, headers=bob).status_code == 403  # not a hub admin
    alice = {"authorization": f"Bearer {hub.token}"}
    assert httpx.post(url, json={"sha256": 5}, headers=alice).status_code == 400
    assert httpx.post(url, json={"sha256": sha, "reason": "reviewed"}, headers=alice).status_code == 200
    got = hf_hub_download("alice/quar", "model.pkl", endpoint=hub.url, cache_dir=cache_dir, token=hub.token)
    assert Path(got).read_bytes() == EVIL
    assert httpx.post(url, json={"sha256": sha, "release": False}, headers=alice).status_code == 200
    assert httpx.get(f"{hub.url}/alice/quar/resolve/main/model.pkl").status_code == 403


def _keypair(tmp: Path) -> tuple[Path, str]:
    from cairn.security.signing import write_keypair

    private, public = write_keypair(tmp / "publisher")
    return private, public.read_text()


def test_signed_repo_shows_signer_and_required_signature_rejects_unsigned(
    hub: LiveHub, tmp_path: Path
) -> None:
    from cairn.security.signing import sign

    api = _api(hub)
    headers = {"authorization": f"Bearer {hub.token}"}
    private, public_pem = _keypair(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "tiny"}')
    (model / "model.safetensors").write_bytes(st_save({"w": np.ones((2, 3), np.float32)}))
    signed = sign(model, key=private)
    api.create_repo("alice/signed")
    trust_url = f"{hub.url}/api/models/alice/signed/trust"
    bad = httpx.put(trust_url, json={"trustedKeys": ["not a key"]}, headers=headers)
    assert bad.status_code == 400 and "PEM" in bad.json()["error"]
    assert httpx.put(trust_url, json={"requireSignature": "yes"}, headers=headers).status_code == 400
    other = {"authorization": f"Bearer {hub.other_token}"}
    assert httpx.put(trust_url, json={"requireSignature": True}, headers=other).status_code == 403
    ok = httpx.put(trust_url, json={"trustedKeys": [public_pem], "requireSignature": True}, headers=headers)
    assert ok.status_code == 200 and ok.json()["requireSignature"] is True
    api.upload_folder(repo_id="alice/signed", folder_path=model, commit_message="signed release")
    info = api.model_info("alice/signed")
    record = info.signature  # type: ignore[attr-defined]
    assert record["status"] == "verified"
    assert record["signer"]["fingerprint"] == signed.signer.fingerprint
    head = info.sha
    with pytest.raises(HfHubHTTPError) as err:  # the new file is not covered by the signature
        api.upload_file(path_or_fileobj=b"extra", path_in_repo="extra.txt", repo_id="alice/signed")
    assert "requires a valid model.sig" in str(err.value) and "added extra.txt" in str(err.value)
    assert api.model_info("alice/signed").sha == head
    api.create_repo("alice/must-sign")
    must = f"{hub.url}/api/models/alice/must-sign/trust"
    assert httpx.put(must, json={"requireSignature": True}, headers=headers).status_code == 200
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/must-sign")
    assert "no model.sig" in str(err.value)


def test_signature_without_trusted_keys_is_unverified_and_tampering_is_invalid(
    hub: LiveHub, tmp_path: Path
) -> None:
    from cairn.security.signing import sign

    api = _api(hub)
    headers = {"authorization": f"Bearer {hub.token}"}
    private, public_pem = _keypair(tmp_path)
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    sign(model, key=private)
    api.create_repo("alice/sig-loose")
    api.upload_folder(repo_id="alice/sig-loose", folder_path=model)
    assert api.model_info("alice/sig-loose").signature["status"] == "unverified"  # type: ignore[attr-defined]
    url = f"{hub.url}/api/models/alice/sig-loose/trust"
    assert httpx.put(url, json={"trustedKeys": [public_pem]}, headers=headers).status_code == 200
    api.upload_file(path_or_fileobj=b'{"changed": 1}', path_in_repo="config.json", repo_id="alice/sig-loose")
    record = api.model_info("alice/sig-loose").signature  # type: ignore[attr-defined]
    assert record["status"] == "invalid" and "changed config.json" in record["reason"]
    api.upload_file(path_or_fileobj=b"garbage", path_in_repo="model.sig", repo_id="alice/sig-loose")
    assert api.model_info("alice/sig-loose").signature["status"] == "invalid"  # type: ignore[attr-defined]
