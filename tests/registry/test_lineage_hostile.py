"""Verified lineage on the hub against hostile uploads and callers: candidates chosen among readable
repos only, fingerprinting work bounded by the upload's size, bounded fingerprint sizes, fingerprint
failures that never fail an upload, and which files make a revision's fingerprint."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as st_save
from sqlalchemy import select

from cairn.governance.fingerprint import fingerprint_blob
from cairn.registry import AddFile, Registry
from cairn.registry import lineage as lineage_mod
from cairn.registry.models import Principal, Repo


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    for name in ("alice", "mallory", "victim"):
        r.users.create_user(name)
    yield r
    r.close()


def _who(reg: Registry, name: str) -> Principal:
    return reg.users.authenticate(reg.users.create_token(name))


def _model(
    reg: Registry, who: Principal, name: str, weights: dict[str, np.ndarray], *, private: bool
) -> Repo:
    repo = reg.repos.create(who, "model", who.user.name, name, private=private)
    info = reg.ingest_bytes(st_save(weights), repo_id=repo.id)
    reg.commit(repo, "main", [AddFile("model.safetensors", info.sha256)], title="w", author=who.user.name)
    return reg.repos.get("model", who.user.name, name, who)


def _w(seed: int, n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"l.{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(n)}


# -- the candidate cap is applied before the visibility filter ------------------------------------


@pytest.mark.parametrize("decoys", [0, 8])
def test_private_decoys_hide_a_public_parent_from_verified_lineage(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, decoys: int
) -> None:
    """mallory publishes a copy of alice's public model (plus one tensor) without declaring it. Before
    that she made private repos whose blobs share *more* bytes with her copy than alice's does; they
    must not fill the candidate cap (MAX_CANDIDATES * 4, i.e. 200; 8 here to keep the test small), or
    nobody would be told that the copy derives from alice's model."""
    monkeypatch.setattr(lineage_mod, "MAX_CANDIDATES", 2)  # cap of 8 instead of 200: same code path
    alice, mallory = _who(reg, "alice"), _who(reg, "mallory")
    base = _w(1)
    _model(reg, alice, "base", base, private=False)
    extra = {"extra": np.random.default_rng(7).standard_normal((32, 32)).astype(np.float32)}
    for i in range(decoys):  # 0: the control, alice/base is found
        unique = {"u": np.full((1,), i, dtype=np.float32)}  # < 1024 bytes: not indexed, makes the blob unique
        _model(reg, mallory, f"decoy{i}", {**base, **extra, **unique}, private=True)
    copy = _model(reg, mallory, "copy", {**base, **extra}, private=False)

    head, _ = reg.commits.resolve(copy, "main")
    anyone = _who(reg, "victim")
    found = reg.lineage.verify(reg, copy, head, anyone)
    assert [r["repo"] for r in found["undeclared"]] == ["alice/base"]


def test_lineage_search_results_depend_on_private_blobs(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No oracle for "does any private blob hold tensor H": mallory fills the cap with her own public
    repos that share a small tensor A, and posts {A (claimed large), H}. A private blob holding H would
    rank above hers (more shared bytes) if it were a candidate, and push one of her repos out."""
    monkeypatch.setattr(lineage_mod, "MAX_CANDIDATES", 2)  # cap of 8 instead of 200
    mallory, victim = _who(reg, "mallory"), _who(reg, "victim")
    a = np.random.default_rng(3).standard_normal((16, 16)).astype(np.float32)  # 1024 bytes: indexed
    for i in range(8):
        _model(reg, mallory, f"p{i}", {"A": a, "u": np.full((1,), i, dtype=np.float32)}, private=False)
    secret = _w(42)
    fp = lineage_mod.Fingerprint.from_dict(
        {
            "A": {"dtype": "F32", "shape": [16, 16], "nbytes": 10**6,
                  "sha256": hashlib.sha256(a.tobytes()).hexdigest(), "sketch": []},
            "H": {"dtype": "F32", "shape": [32, 32], "nbytes": 1024,
                  "sha256": hashlib.sha256(secret["l.0"].tobytes()).hexdigest(), "sketch": []},
        }
    )  # fmt: skip
    before = reg.lineage.search(reg, fp, None)
    _model(reg, victim, "secret", secret, private=True)
    after = reg.lineage.search(reg, fp, None)
    assert len(before) == 8
    assert after == before


# -- torch zip fingerprinting does work unbounded by the upload's size ----------------------------


def _torch_bytes(obj: object) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_expanded_view_makes_fingerprinting_hash_far_more_than_the_file(tmp_path: Path) -> None:
    """A stride-0 view over a one-element storage passes the "view fits its storage" check; hashing its
    numel * itemsize bytes would mean 1 GiB from a file of about 1 kB (4 TiB with shape (2**20, 2**20)).
    Such a checkpoint is not fingerprinted."""
    torch = pytest.importorskip("torch")
    p = tmp_path / "bomb.bin"
    p.write_bytes(_torch_bytes({"w": torch.zeros(1).expand(4096, 65536)}))
    fp = fingerprint_blob(p)
    hashed = 0 if fp is None else sum(t.nbytes for t in fp.tensors.values())
    assert hashed <= 4 * p.stat().st_size, f"{hashed} bytes hashed for a file of {p.stat().st_size}"


def test_aliased_tensors_make_fingerprinting_rehash_one_storage(tmp_path: Path) -> None:
    """Many names for one storage (torch.save keeps one copy): 256 names of 1 MiB from a 1 MiB file
    are not fingerprinted (a few aliases, such as tied weights, are: see the next test)."""
    torch = pytest.importorskip("torch")
    t = torch.zeros(256 * 1024)  # 1 MiB
    p = tmp_path / "alias.bin"
    p.write_bytes(_torch_bytes({f"w{i}": t for i in range(256)}))
    fp = fingerprint_blob(p)
    hashed = 0 if fp is None else sum(t.nbytes for t in fp.tensors.values())
    assert hashed <= 4 * p.stat().st_size, f"{hashed} bytes hashed for a file of {p.stat().st_size}"


def test_tied_weights_are_hashed_once_and_fingerprinted_under_both_names(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(1024, dtype=torch.float32)
    p = tmp_path / "tied.bin"
    p.write_bytes(_torch_bytes({"embed.weight": t, "lm_head.weight": t, "other": t[:512] + 1}))
    fp = fingerprint_blob(p)
    assert fp is not None
    assert fp.tensors["embed.weight"] == fp.tensors["lm_head.weight"]
    assert fp.tensors["embed.weight"].sha256 == hashlib.sha256(t.numpy().tobytes()).hexdigest()


# -- compressed torch zip members: refused for fingerprints, read from the view's offset -----------


def test_compressed_member_view_is_read_from_its_storage_offset(tmp_path: Path) -> None:
    """Two views into one storage ("a" = first half, "b" = second half). Stored uncompressed, "b"
    hashes its own elements. Re-zipped with deflate (torch.save never does), the file is not
    fingerprinted at all (inflating is work unbounded by the upload), and the array reader gives "b"
    from its storage offset, not the member's start; a strided view in such a member is refused."""
    torch = pytest.importorskip("torch")
    from cairn.errors import UnsupportedFormatError
    from cairn.format.arrays import to_array
    from cairn.format.torch_files import read_torch_zip

    t = torch.arange(8, dtype=torch.float32)
    raw = _torch_bytes({"a": t[:4], "b": t[4:]})
    plain = tmp_path / "plain.bin"
    plain.write_bytes(raw)
    deflated = tmp_path / "deflated.bin"
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    want = hashlib.sha256(t[4:].numpy().tobytes()).hexdigest()
    fp_plain, fp_deflated = fingerprint_blob(plain), fingerprint_blob(deflated)
    assert fp_plain is not None and fp_plain.tensors["b"].sha256 == want
    assert fp_deflated is None
    recs = {r.name: r for r in read_torch_zip(deflated).inspection.tensors}
    assert recs["b"].member is not None
    assert to_array(recs["b"]).tolist() == [4.0, 5.0, 6.0, 7.0]
    assert to_array(recs["a"]).tolist() == [0.0, 1.0, 2.0, 3.0]

    strided = tmp_path / "strided.bin"
    raw = _torch_bytes({"t": torch.arange(6, dtype=torch.float32).reshape(2, 3).t()})
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(strided, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    (rec,) = read_torch_zip(strided).inspection.tensors
    with pytest.raises(UnsupportedFormatError, match="strided view"):
        to_array(rec)


# -- tensor counts: the upload stores fingerprints of any size -----------------------------------


def test_upload_fingerprint_has_a_tensor_count_bound(reg: Registry) -> None:
    """A small safetensors upload of 200,000 one-byte tensors must not become one fingerprint row of
    200,000 entries (tens of MB of JSON that every lineage request touching the blob would parse): like
    lineage-search, a stored fingerprint holds at most 20,000 tensors. The blob itself is stored."""
    mallory = _who(reg, "mallory")
    n = 200_000
    header = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(n)}
    head = json.dumps(header, separators=(",", ":")).encode()
    blob = len(head).to_bytes(8, "little") + head + bytes(n)
    repo = reg.repos.create(mallory, "model", "mallory", "many", private=False)
    info = reg.ingest_bytes(blob, repo_id=repo.id)
    from cairn.meta.lineage_tables import blob_fingerprints

    with reg.db.read() as conn:
        row = conn.execute(
            select(blob_fingerprints.c.tensors, blob_fingerprints.c.fingerprint).where(
                blob_fingerprints.c.sha256 == info.sha256
            )
        ).first()
    assert row is None or row.tensors <= 20_000, (
        f"{row.tensors} tensors, {len(row.fingerprint)} bytes of JSON"
    )
    assert reg.blob(info.sha256) is not None
    from cairn.governance.fingerprint import StreamingFingerprint

    stream = StreamingFingerprint(len(blob))  # the hub's upload path gives up as early
    stream.update(blob)
    assert stream.result() is None


def test_tensor_count_bound_holds_when_the_header_escapes_its_keys(tmp_path: Path) -> None:
    """The quick count of "data_offsets" keys before parsing can be fooled by escaped keys; the exact
    count after parsing still refuses the file."""
    n = 20_001
    entries = ",".join(
        f'"t{i}":{{"dtype":"U8","shape":[1],"data\\u005foffsets":[{i},{i + 1}]}}' for i in range(n)
    )
    head = ("{" + entries + "}").encode()
    p = tmp_path / "escaped.safetensors"
    p.write_bytes(len(head).to_bytes(8, "little") + head + bytes(n))
    from cairn.format.safetensors import read_header_path

    assert len(read_header_path(p).tensors) == n  # a valid file
    assert fingerprint_blob(p) is None


# -- a fingerprint failure fails the upload ------------------------------------------------------


def test_a_tensor_name_with_a_lone_surrogate_does_not_fail_the_upload(reg: Registry, tmp_path: Path) -> None:
    """The header's JSON may escape a lone surrogate (\\ud800) in a tensor name; the file parses and is
    scanned, but the name cannot be stored or hashed as UTF-8. Lineage is advisory: the blob is stored,
    merely not fingerprinted (the streamed fingerprint and the saved one are both guarded)."""
    mallory = _who(reg, "mallory")
    body = b'{"a\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    blob = len(body).to_bytes(8, "little") + body + bytes(4)
    repo = reg.repos.create(mallory, "model", "mallory", "sur", private=False)
    info = reg.ingest_bytes(blob, repo_id=repo.id)
    assert reg.blob(info.sha256) is not None
    from cairn.governance.fingerprint import Fingerprint, TensorPrint
    from cairn.meta.lineage_tables import blob_fingerprints

    with reg.db.read() as conn:
        assert (
            conn.execute(select(blob_fingerprints).where(blob_fingerprints.c.sha256 == info.sha256)).first()
            is None
        )
    streamed = Fingerprint({"a\ud800": TensorPrint("F32", (1,), 4, "0" * 64, ())})
    reg.lineage.on_ingest(tmp_path / "unused", "f" * 64, streamed)  # a streamed one: not saved, no raise
    with reg.db.read() as conn:
        assert (
            conn.execute(select(blob_fingerprints).where(blob_fingerprints.c.sha256 == "f" * 64)).first()
            is None
        )


# -- which files make a revision's fingerprint ---------------------------------------------------


def _commit_files(reg: Registry, who: Principal, name: str, files: dict[str, bytes], card: str = "") -> Repo:
    repo = reg.repos.create(who, "model", who.user.name, name, private=False)
    ops = [AddFile(path, reg.ingest_bytes(data, repo_id=repo.id).sha256) for path, data in files.items()]
    if card:
        ops.append(AddFile("README.md", reg.ingest_bytes(card.encode(), repo_id=repo.id).sha256))
    reg.commit(repo, "main", ops, title="w", author=who.user.name)
    return reg.repos.get("model", who.user.name, name, who)


def test_checkpoint_subfolder_does_not_replace_the_top_level_weights(reg: Registry) -> None:
    """ "checkpoint-100/model.safetensors" sorts before "model.safetensors"; only top-level files make a
    revision's fingerprint (as for a local directory), so the final weights stand for the repo."""
    alice = _who(reg, "alice")
    final, early = _w(1), _w(2)
    repo = _commit_files(
        reg,
        alice,
        "ckpt",
        {"model.safetensors": st_save(final), "checkpoint-100/model.safetensors": st_save(early)},
    )
    head, _ = reg.commits.resolve(repo, "main")
    fp, _ = reg.lineage.tree_fingerprint(reg.commits.files(head))
    assert fp is not None
    assert fp.tensors["l.0"].sha256 == hashlib.sha256(final["l.0"].tobytes()).hexdigest()


def test_optimizer_state_next_to_torch_weights_does_not_make_a_finetune_unrelated(reg: Registry) -> None:
    """A Trainer checkpoint pushed as pytorch_model.bin + optimizer.pt (no safetensors): were the
    optimizer's exp_avg/exp_avg_sq tensors counted as the model's bytes, only a third of the child's
    bytes would be shared with the parent and a plain fine-tune would be reported "unrelated"."""
    torch = pytest.importorskip("torch")
    alice = _who(reg, "alice")
    base = _w(1)
    _model(reg, alice, "tbase", base, private=False)
    rng = np.random.default_rng(5)
    ft = {
        n: torch.from_numpy(a + 0.01 * rng.standard_normal(a.shape).astype(np.float32))
        for n, a in base.items()
    }
    optim = {
        "state": {i: {"exp_avg": torch.randn(32, 32), "exp_avg_sq": torch.rand(32, 32)} for i in range(4)}
    }
    repo = _commit_files(
        reg,
        alice,
        "tft",
        {"pytorch_model.bin": _torch_bytes(ft), "optimizer.pt": _torch_bytes(optim)},
        card="---\nbase_model: alice/tbase\n---\n",
    )
    head, _ = reg.commits.resolve(repo, "main")
    (row,) = reg.lineage.verify(reg, repo, head, alice)["declared"]
    assert row["verdict"] == "finetune", row


# -- fingerprinting at commit time runs before the commit's blob check -----------------------------


def test_commit_fingerprints_only_blobs_the_repo_may_reference(reg: Registry) -> None:
    """lineage.ensure (read and fingerprint every added weight blob without a fingerprint, downloading
    it from S3 to staging) runs only after commits.commit has checked that the repo may reference the
    blob: a commit naming someone else's blob is refused before any of that work."""
    victim, mallory = _who(reg, "victim"), _who(reg, "mallory")
    secret = _model(reg, victim, "private-w", _w(9), private=True)
    head, _ = reg.commits.resolve(secret, "main")
    (entry,) = [e for e in reg.commits.files(head) if e.path == "model.safetensors"]
    from cairn.meta.lineage_tables import blob_fingerprints, tensor_index

    with reg.db.write() as conn:  # a blob stored before the feature: no fingerprint yet
        conn.execute(tensor_index.delete().where(tensor_index.c.blob_sha256 == entry.sha256))
        conn.execute(blob_fingerprints.delete().where(blob_fingerprints.c.sha256 == entry.sha256))
    mine = reg.repos.create(mallory, "model", "mallory", "thief", private=False)
    from cairn.errors import CairnError

    with pytest.raises(CairnError):
        reg.commit(mine, "main", [AddFile("x.safetensors", entry.sha256)], title="t", author="mallory")
    with reg.db.read() as conn:
        done = conn.execute(
            select(blob_fingerprints.c.sha256).where(blob_fingerprints.c.sha256 == entry.sha256)
        ).first()
    assert done is None, "the refused commit made the hub read and fingerprint another repo's blob"


def test_deflated_member_makes_fingerprinting_inflate_far_more_than_the_upload(tmp_path: Path) -> None:
    """torch.save stores members uncompressed, but the reader accepts deflated ones: 64 MiB of zeros
    deflate to about 64 kB, which must not be inflated and hashed (1000x the upload)."""
    torch = pytest.importorskip("torch")
    raw = _torch_bytes({"w": torch.zeros(16 << 20)})
    p = tmp_path / "deflated.bin"
    with (
        zipfile.ZipFile(io.BytesIO(raw)) as src,
        zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    fp = fingerprint_blob(p)
    hashed = 0 if fp is None else sum(t.nbytes for t in fp.tensors.values())
    assert hashed <= 64 * p.stat().st_size, (
        f"{hashed} bytes inflated and hashed for a file of {p.stat().st_size}"
    )


# -- who may see what: the query's visibility filter, both ways ----------------------------------------


def test_candidates_the_caller_may_read_are_found(reg: Registry) -> None:
    """The visibility filter in the query keeps what the caller may read: their own private repos and
    gated repos whose access was granted to them (and nothing else)."""
    alice, mallory, victim = _who(reg, "alice"), _who(reg, "mallory"), _who(reg, "victim")
    base = _w(11)
    _model(reg, alice, "priv-base", base, private=True)
    gated = _model(reg, victim, "gated-base", _w(12), private=False)
    reg.repos.update_settings(victim, gated, gated="manual")
    extra = {"extra": np.random.default_rng(8).standard_normal((32, 32)).astype(np.float32)}
    mine = _model(reg, alice, "priv-copy", {**base, **extra}, private=False)
    head, _ = reg.commits.resolve(mine, "main")
    assert [r["repo"] for r in reg.lineage.verify(reg, mine, head, alice)["undeclared"]] == [
        "alice/priv-base"
    ]
    assert reg.lineage.verify(reg, mine, head, mallory)["undeclared"] == []

    theirs = _model(reg, mallory, "gated-copy", {**_w(12), **extra}, private=False)
    head, _ = reg.commits.resolve(theirs, "main")
    assert reg.lineage.verify(reg, theirs, head, mallory)["undeclared"] == []
    assert reg.lineage.verify(reg, theirs, head, None)["undeclared"] == []
    reg.repos.grant_access(reg.repos.get("model", "victim", "gated-base", victim), "mallory")
    found = reg.lineage.verify(reg, theirs, head, mallory)["undeclared"]
    assert [r["repo"] for r in found] == ["victim/gated-base"]


def test_search_excludes_many_repos_and_stops_at_its_tensor_budget(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = _who(reg, "alice")
    base = _w(21)
    for i in range(3):
        _model(reg, alice, f"c{i}", {**base, "u": np.full((1,), i, dtype=np.float32)}, private=False)
    fp = lineage_mod.Fingerprint.from_dict(fingerprint_blob_of(base).to_dict())
    assert [r["repo"] for r in reg.lineage.search(reg, fp, None)] == ["alice/c0", "alice/c1", "alice/c2"]
    exclude = [f"someone/x{i}" for i in range(1000)] + ["alice/c1"]
    assert [r["repo"] for r in reg.lineage.search(reg, fp, None, exclude=exclude)] == ["alice/c0", "alice/c2"]
    monkeypatch.setattr(lineage_mod, "_CANDIDATE_TENSOR_BUDGET", 5)  # one candidate's 5 tensors
    assert [r["repo"] for r in reg.lineage.search(reg, fp, None)] == ["alice/c0"]


def fingerprint_blob_of(weights: dict[str, np.ndarray]) -> lineage_mod.Fingerprint:
    from cairn.governance.fingerprint import StreamingFingerprint

    data = st_save(weights)
    stream = StreamingFingerprint(len(data))
    stream.update(data)
    fp = stream.result()
    assert fp is not None
    return fp


@pytest.mark.parametrize(
    "field, value",
    [("nbytes", -1), ("nbytes", 1.5), ("shape", [float("nan")]), ("shape", [-4]), ("sketch", [float("inf")])],
)
def test_posted_fingerprint_numbers_must_be_finite_counts(field: str, value: object) -> None:
    from cairn.errors import FormatError

    tensor = {"dtype": "F32", "shape": [4], "nbytes": 16, "sha256": "0" * 64, "sketch": [1.0], field: value}
    with pytest.raises(FormatError):
        lineage_mod.Fingerprint.from_dict({"x": tensor})


def test_local_model_fingerprint_skips_training_state_and_subfolders(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from cairn.governance.fingerprint import fingerprint_model

    (tmp_path / "checkpoint-1").mkdir()
    (tmp_path / "checkpoint-1" / "pytorch_model.bin").write_bytes(_torch_bytes({"old": torch.ones(4)}))
    (tmp_path / "pytorch_model.bin").write_bytes(_torch_bytes({"w": torch.ones(4)}))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state_0.pth", "training_args.bin"):
        (tmp_path / name).write_bytes(_torch_bytes({"state": torch.zeros(4)}))
    assert list(fingerprint_model(tmp_path).tensors) == ["w"]


def test_one_blob_at_many_paths_does_not_outrank_a_repo_sharing_more(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared bytes are counted once per tensor and repo: copies of one blob under many paths (or in many
    shards) must not rank a repo above one that shares more distinct tensors."""
    monkeypatch.setattr(lineage_mod, "MAX_CANDIDATES", 1)  # cap of 4 candidates
    alice, mallory = _who(reg, "alice"), _who(reg, "mallory")
    w = _w(31, 2)
    for i in range(4):
        data = st_save({"l.0": w["l.0"], "u": np.full((1,), i, dtype=np.float32)})
        _commit_files(reg, mallory, f"spam{i}", {f"m{j}.safetensors": data for j in range(10)})
    _model(reg, alice, "real", w, private=False)
    fp = fingerprint_blob_of(w)
    found = reg.lineage._related_repos([], fp, None)
    assert [r.repo_id for r in found][:1] == ["alice/real"]
