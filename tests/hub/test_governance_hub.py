"""Governance over hub repos, on a real hub: the license check, card, BOM and openness commands on
``org/name[@rev]`` (small files only, read through the HF API), lineage across local directories and
hub repos, fingerprints computed on upload (safetensors and torch zip) and the verified-lineage API that
tells a fine-tune, a LoRA-merged model, a quantized copy and an unrelated model apart without leaking
private repos."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.numpy import save as st_save

from cairn.cli.main import main

SHAPES = {f"layers.{i}.{k}": (64, 64) for i in range(3) for k in ("q", "v")}


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}


def _finetune(w: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32) for n, a in w.items()}


def _lora_merged(w: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A LoRA merged into the ``q`` projections only: every other tensor stays bit-identical."""
    rng = np.random.default_rng(seed)
    out = dict(w)
    for n, a in w.items():
        if n.endswith(".q"):
            b, c = rng.standard_normal((64, 4)), rng.standard_normal((4, 64))
            out[n] = (a + 0.02 * (b @ c)).astype(np.float32)
    return out


def _card(**meta: Any) -> bytes:
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n# model\n".encode()


def _upload(hub: LiveHub, repo: str, weights: bytes, name: str = "model.safetensors", *,
            token: str | None = None, private: bool = False, **meta: Any) -> None:  # fmt: skip
    api = HfApi(endpoint=hub.url, token=token or hub.token)
    api.create_repo(repo, private=private, exist_ok=True)
    ops = [CommitOperationAdd(name, weights)]
    if meta:
        ops.append(CommitOperationAdd("README.md", _card(**meta)))
    api.create_commit(repo, ops, commit_message="upload")


def _get(hub: LiveHub, path: str, token: str | None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(hub.url + path, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


@pytest.fixture(scope="module")
def carol(hub: LiveHub) -> str:
    """A write token of a user of this module only (so that no other module's listings see her repos)."""
    hub.registry.users.create_user("carol")
    return hub.registry.users.create_token("carol")


@pytest.fixture(scope="module")
def family(hub: LiveHub) -> Iterator[LiveHub]:
    """base (cc-by-nc-4.0) → fine-tune, LoRA-merged, quantized (F16) copies; an unrelated model of the
    same architecture that claims the base; an undeclared fine-tune; a torch zip twin of the base."""
    base = _weights(1)
    _upload(hub, "alice/gv-base", st_save(base), license="cc-by-nc-4.0")
    _upload(
        hub, "alice/gv-ft", st_save(_finetune(base, 2)), license="cc-by-nc-4.0", base_model="alice/gv-base"
    )
    _upload(hub, "alice/gv-lora", st_save(_lora_merged(base, 3)), license="cc-by-nc-4.0",
            base_model="alice/gv-base")  # fmt: skip
    half = {n: a.astype(np.float16) for n, a in base.items()}
    _upload(hub, "alice/gv-quant", st_save(half), license="cc-by-nc-4.0", base_model="alice/gv-base",
            base_model_relation="quantized")  # fmt: skip
    _upload(hub, "alice/gv-liar", st_save(_weights(9)), license="cc-by-nc-4.0", base_model="alice/gv-base")
    _upload(hub, "alice/gv-hidden", st_save(_finetune(base, 4)), license="bsd-3-clause")
    yield hub


def test_fingerprints_tell_finetune_lora_quantized_and_unrelated_apart(family: LiveHub) -> None:
    verdicts = {}
    for name in ("ft", "lora", "quant", "liar"):
        data = _get(family, f"/api/models/alice/gv-{name}/lineage", family.token)
        assert data["fingerprinted"] and data["tensors"] == len(SHAPES)
        (row,) = data["declared"]
        assert row["ref"] == "alice/gv-base"
        verdicts[name] = (row["verdict"], row["supported"])
    assert verdicts == {
        "ft": ("finetune", True),
        "lora": ("partial-update", True),
        "quant": ("quantized", True),
        "liar": ("unrelated", False),
    }
    lora = _get(family, "/api/models/alice/gv-lora/lineage", family.token)["declared"][0]
    assert lora["identical"] == pytest.approx(0.5)  # the v projections are untouched


def test_undeclared_parent_is_found_and_unrelated_is_not(family: LiveHub) -> None:
    hidden = _get(family, "/api/models/alice/gv-hidden/lineage", family.token)
    assert hidden["declared"] == []
    found = {u["repo"]: u["verdict"] for u in hidden["undeclared"]}
    assert found.get("alice/gv-base") == "finetune"
    assert "alice/gv-liar" not in found  # same architecture, unrelated weights
    liar = _get(family, "/api/models/alice/gv-liar/lineage", family.token)
    assert liar["undeclared"] == []


def test_tensor_index_makes_shared_tensors_a_query(family: LiveHub) -> None:
    from sqlalchemy import select

    from cairn.meta.lineage_tables import tensor_index

    reg = family.registry
    repo = reg.repos.get("model", "alice", "gv-lora", None)
    head, _ = reg.commits.resolve(repo, "main")
    (entry,) = [e for e in reg.commits.files(head) if e.path == "model.safetensors"]
    with reg.db.read() as conn:
        rows = conn.execute(
            select(tensor_index.c.tensor_sha256).where(tensor_index.c.blob_sha256 == entry.sha256)
        )
        indexed = set(rows.scalars())
    assert len(indexed) == len(SHAPES)


def test_torch_zip_upload_is_fingerprinted_like_its_safetensors_twin(family: LiveHub) -> None:
    torch = pytest.importorskip("torch")
    base = _weights(1)
    buf = io.BytesIO()
    torch.save({n: torch.from_numpy(a.copy()) for n, a in base.items()}, buf)
    _upload(family, "alice/gv-torch", buf.getvalue(), "pytorch_model.bin", license="cc-by-nc-4.0",
            base_model="alice/gv-base")  # fmt: skip
    fp = _get(family, "/api/models/alice/gv-torch/fingerprint", family.token)
    assert fp["notFingerprinted"] == [] and set(fp["tensors"]) == set(SHAPES)
    (row,) = _get(family, "/api/models/alice/gv-torch/lineage", family.token)["declared"]
    assert row["verdict"] == "copy" and row["identical"] == 1.0


def test_private_parent_is_not_leaked(family: LiveHub, carol: str) -> None:
    secret = _weights(77)
    _upload(family, "alice/gv-secret", st_save(secret), private=True, license="bsd-3-clause")
    _upload(
        family,
        "alice/gv-open",
        st_save(_finetune(secret, 5)),
        license="bsd-3-clause",
        base_model="alice/gv-secret",
    )
    mine = _get(family, "/api/models/alice/gv-open/lineage", family.token)
    assert mine["declared"][0]["verdict"] == "finetune"
    theirs = _get(family, "/api/models/alice/gv-open/lineage", carol)
    assert theirs["declared"][0]["supported"] is None and "verdict" not in theirs["declared"][0]
    assert "alice/gv-secret" not in json.dumps(theirs["undeclared"])
    missing = _get(family, "/api/models/alice/gv-open/lineage", None)
    assert (
        missing["declared"] == theirs["declared"]
    )  # anonymous and carol: told exactly what a missing repo gets
    orphan = theirs["declared"][0]["error"].replace("alice/gv-secret", "alice/no-such-model")
    _upload(
        family,
        "alice/gv-orphan2",
        st_save(_weights(3)),
        license="bsd-3-clause",
        base_model="alice/no-such-model",
    )
    assert _get(family, "/api/models/alice/gv-orphan2/lineage", carol)["declared"][0]["error"] == orphan
    # carol's own copy of the secret weights does not reveal alice's private repo either
    _upload(family, "carol/gv-copy", st_save(_finetune(secret, 6)), token=carol, license="bsd-3-clause")
    copy = _get(family, "/api/models/carol/gv-copy/lineage", carol)
    assert all(u["repo"] != "alice/gv-secret" for u in copy["undeclared"])
    assert any(u["repo"] == "alice/gv-open" for u in copy["undeclared"])  # public, older: fair game
    r = httpx.get(f"{family.url}/api/models/alice/gv-secret/fingerprint", timeout=30,
                  headers={"authorization": f"Bearer {carol}"})  # fmt: skip
    assert r.status_code == 404


def test_cli_lineage_repo_and_local_finetune_of_a_hub_repo(
    family: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = ["--endpoint", family.url, "--token", family.token, "--json"]
    code, data = _cli(capsys, "lineage", "alice/gv-ft", *hub)
    assert code == 0 and data["declared"][0]["verdict"] == "finetune"
    code, data = _cli(capsys, "lineage", "alice/gv-liar", *hub)
    assert code == 1 and data["declared"][0]["supported"] is False
    local = tmp_path / "my-ft"
    local.mkdir()
    (local / "model.safetensors").write_bytes(st_save(_finetune(_weights(1), 8)))
    (local / "README.md").write_bytes(_card(license="cc-by-nc-4.0", base_model="alice/gv-base"))
    code, data = _cli(capsys, "lineage", str(local), *hub)
    assert code == 0 and data["declared"][0]["verdict"] == "finetune"
    assert data["declared"][0]["path"] == "alice/gv-base"


def test_cli_license_check_walks_local_to_hub_and_hub_to_hub(
    family: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = ["--endpoint", family.url, "--token", family.token, "--json"]
    code, data = _cli(capsys, "license", "check", "alice/gv-ft", *hub)
    assert data["root"] == "alice/gv-ft" and "cc-by-nc-4.0" in data["inherited"], data
    assert code in (0, 2) and not data["conflicts"]
    # hub → hub: an apache-2.0 child of the non-commercial base is a conflict
    _upload(
        family, "alice/gv-relicensed", st_save(_weights(1)), license="apache-2.0", base_model="alice/gv-ft"
    )
    code, data = _cli(capsys, "license", "check", "alice/gv-relicensed", *hub)
    assert code == 1 and any(c["code"] == "noncommercial_parent" for c in data["conflicts"])
    # local → hub
    local = tmp_path / "local-child"
    local.mkdir()
    (local / "README.md").write_bytes(_card(license="bsd-3-clause", base_model="alice/gv-ft"))
    code, data = _cli(capsys, "license", "check", str(local), *hub)
    assert code == 1 and any(c["source"] == "alice/gv-base" for c in data["conflicts"]), data
    # without an endpoint a local model's hub parent is not looked up: needs review
    code, data = _cli(capsys, "license", "check", str(local), "--json")
    assert code == 2 and data["needs_review"][0]["code"] == "parent_not_found"


def test_cli_unreachable_missing_and_unauthorised_are_undecidable(
    family: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = ["--endpoint", family.url, "--token", family.token, "--json"]
    _upload(
        family,
        "alice/gv-orphan",
        st_save(_weights(3)),
        license="bsd-3-clause",
        base_model="alice/no-such-model",
    )
    code, data = _cli(capsys, "license", "check", "alice/gv-orphan", *hub)
    assert code == 2
    (review,) = [f for f in data["needs_review"] if f["code"] == "parent_not_found"]
    assert "repository not found" in review["message"]
    code, data = _cli(capsys, "license", "check", "alice/no-such-model", *hub)
    assert code == 2 and data["error"]["code"] == "repo_not_found"
    bad = ["--endpoint", family.url, "--token", "hf_not_a_token", "--json"]
    code, data = _cli(capsys, "license", "check", "alice/gv-ft", *bad)
    assert code == 2 and "authentication" in data["error"]["message"]
    local = tmp_path / "child"
    local.mkdir()
    (local / "README.md").write_bytes(_card(license="bsd-3-clause", base_model="alice/gv-ft"))
    code, data = _cli(capsys, "license", "check", str(local), "--endpoint", "http://127.0.0.1:9", "--json")
    assert code == 2
    assert "cannot reach the hub" in data["needs_review"][0]["message"]


def test_cli_card_bom_openness_on_a_repo(family: LiveHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub = ["--endpoint", family.url, "--token", family.token]
    code, text = _cli(capsys, "card", "alice/gv-ft", *hub)
    assert code == 0 and "base_model: alice/gv-base" in text
    assert "## Security scan and signature" in text and "| `model.safetensors` | safe |" in text
    assert "Signature: none" in text
    code, data = _cli(capsys, "card", "alice/gv-ft", "--check", *hub, "--json")
    assert code == 0 and data["valid"]
    code, data = _cli(capsys, "card", "alice/gv-ft", "--push", *hub, "--json")
    assert code == 0 and len(data["commit"]) == 40
    readme = httpx.get(f"{family.url}/alice/gv-ft/resolve/main/README.md", timeout=30).text
    assert "cairn:begin security" in readme and "cairn:begin license" in readme
    code, bom = _cli(capsys, "bom", "alice/gv-ft", *hub)
    assert code == 0 and bom["bomFormat"] == "CycloneDX"
    api = HfApi(endpoint=family.url, token=family.token)
    weights = next(
        s
        for s in api.model_info("alice/gv-ft", files_metadata=True).siblings
        if s.rfilename == "model.safetensors"
    )
    assert weights.lfs is not None and weights.lfs.sha256 in json.dumps(bom)
    code, data = _cli(capsys, "openness", "alice/gv-ft", *hub, "--json")
    assert code in (0, 1) and data["name"]


@pytest.mark.parametrize("rows", [16, 512], ids=["basic", "multipart"])
def test_upload_fingerprints_safetensors_while_streaming(
    family: LiveHub, rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored fingerprint of a safetensors upload comes from the upload's own pass over the bytes
    (reading the staged file for it is disabled here), for plain and multipart LFS uploads alike."""
    import cairn.registry.lineage as lineage_mod
    from cairn.governance.fingerprint import fingerprint_file

    def no_file_reads(path: Path) -> None:
        raise AssertionError("the staged file was read again for its fingerprint")

    monkeypatch.setattr(lineage_mod, "fingerprint_blob", no_file_reads)
    rng = np.random.default_rng(rows)
    weights = {f"w{i}": rng.standard_normal((rows, 256)).astype(np.float32) for i in range(3)}
    (tmp_path / "model.safetensors").write_bytes(st_save(weights))
    _upload(
        family,
        f"alice/gv-stream-{rows}",
        (tmp_path / "model.safetensors").read_bytes(),
        license="bsd-3-clause",
    )
    fp = _get(family, f"/api/models/alice/gv-stream-{rows}/fingerprint", family.token)
    assert fp["notFingerprinted"] == []
    assert fp["tensors"] == fingerprint_file(tmp_path / "model.safetensors").to_dict()


def test_cli_lineage_of_a_local_model_searches_the_hub_for_undeclared_parents(
    family: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "quiet-ft"
    local.mkdir()
    (local / "model.safetensors").write_bytes(st_save(_finetune(_weights(1), 11)))
    (local / "README.md").write_bytes(_card(license="bsd-3-clause"))
    hub = ["--endpoint", family.url, "--token", family.token, "--json"]
    code, data = _cli(capsys, "lineage", str(local), *hub)
    assert code == 0 and data["undeclared"] == [] and "hubSearch" not in data  # only on request
    code, data = _cli(capsys, "lineage", str(local), *hub, "--search-hub")
    assert code == 0 and data["declared"] == [] and data["hubSearch"] == "ok"
    found = {u["path"]: u["verdict"] for u in data["undeclared"]}
    assert found.get("alice/gv-base") == "finetune" and "alice/gv-liar" not in found
    # anonymous callers get only public repos; the private secret's weights are never compared
    secret_ft = tmp_path / "secret-ft"
    secret_ft.mkdir()
    (secret_ft / "model.safetensors").write_bytes(st_save(_finetune(_weights(77), 12)))
    r = httpx.post(f"{family.url}/api/cairn/lineage-search", timeout=60,
                   json={"tensors": json.loads(json.dumps(_fp(secret_ft)))})  # fmt: skip
    assert r.status_code == 200 and all(c["repo"] != "alice/gv-secret" for c in r.json()["candidates"])
    bad = httpx.post(
        f"{family.url}/api/cairn/lineage-search", json={"tensors": {"x": {"dtype": 1}}}, timeout=30
    )
    assert bad.status_code == 400 and "error" in bad.json()
    many = {
        f"t{i}": {"dtype": "F32", "shape": [1], "nbytes": 4, "sha256": "0" * 64, "sketch": []}
        for i in range(20_001)
    }
    huge = httpx.post(f"{family.url}/api/cairn/lineage-search", json={"tensors": many}, timeout=60)
    assert huge.status_code == 400 and "at most" in huge.json()["error"]


def _fp(path: Path) -> dict[str, Any]:
    from cairn.governance.fingerprint import fingerprint_model

    return fingerprint_model(path).to_dict()
