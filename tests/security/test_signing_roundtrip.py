"""Sign and verify real directories: what verification reports for every kind of change, key and policy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cairn.errors import ConflictError, IntegrityError, NotFoundError, UnsupportedFormatError, UsageError
from cairn.security import sign, verify
from cairn.security.signing import (
    ContentMismatchError,
    InvalidSignatureError,
    SymlinkRefusedError,
    WrongKeyError,
    authenticate,
    check,
    hash_model,
    write_keypair,
)
from cairn.security.signing.manifest import Manifest, Resource, Serialization


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_keypair(tmp_path_factory.mktemp("keys") / "signer")


@pytest.fixture(scope="module")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_keypair(tmp_path_factory.mktemp("keys") / "other", curve="secp384r1")


def make_model(root: Path) -> Path:
    model = root / "model"
    (model / "sub" / "deeper").mkdir(parents=True)
    (model / "model.safetensors").write_bytes(os.urandom(5000))
    (model / "config.json").write_text('{"hidden": 8}')
    (model / "sub" / "deeper" / "tok.bin").write_bytes(b"\x00\x01" * 300)
    (model / "empty.txt").write_bytes(b"")
    return model


def test_sign_then_verify_reports_signer_and_files(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    signed = sign(model, key=keypair[0])
    assert signed.signature_path == str(model / "model.sig")
    result = verify(model, key=keypair[1])
    assert result.ok
    assert result.files == ("config.json", "empty.txt", "model.safetensors", "sub/deeper/tok.bin")
    assert result.signer.kind == "key" and result.signer.fingerprint == signed.signer.fingerprint
    assert result.root_digest == signed.root_digest
    assert (result.changed, result.added, result.removed) == ((), (), ())
    result.raise_for_mismatch()  # does not raise


def test_changed_added_removed_files_are_named(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keypair[0])
    (model / "config.json").write_text('{"hidden": 9}')
    (model / "sub" / "new.py").write_text("print('hi')")
    (model / "sub" / "deeper" / "tok.bin").unlink()
    result = verify(model, key=keypair[1])
    assert not result.ok
    assert result.changed == ("config.json",)
    assert result.added == ("sub/new.py",)
    assert result.removed == ("sub/deeper/tok.bin",)
    signed_digest, actual_digest = result.differences["config.json"]
    assert signed_digest and actual_digest and signed_digest != actual_digest
    assert result.differences["sub/new.py"][0] == ""
    with pytest.raises(ContentMismatchError) as exc:
        result.raise_for_mismatch()
    assert exc.value.changed == ["config.json"] and exc.value.removed == ["sub/deeper/tok.bin"]


def test_added_empty_file_is_detected_in_files_mode(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keypair[0])
    (model / "__init__.py").write_bytes(b"")
    assert verify(model, key=keypair[1]).added == ("__init__.py",)


def test_wrong_key_is_a_typed_error(
    tmp_path: Path, keypair: tuple[Path, Path], other_keypair: tuple[Path, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keypair[0])
    with pytest.raises(WrongKeyError) as exc:
        verify(model, key=other_keypair[1])
    assert exc.value.expected != exc.value.actual


def test_signature_made_with_another_key_but_same_hint_fails(
    tmp_path: Path, keypair: tuple[Path, Path], other_keypair: tuple[Path, Path]
) -> None:
    # an attacker re-signs with their key but leaves the victim's hint in place
    model = make_model(tmp_path)
    sign(model, key=other_keypair[0])
    doc = json.loads((model / "model.sig").read_bytes())
    from cairn.security.signing.keys import fingerprint, load_public_key

    doc["verificationMaterial"]["publicKey"]["hint"] = fingerprint(load_public_key(keypair[1]))
    (model / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(InvalidSignatureError) as exc:
        verify(model, key=keypair[1])
    assert not isinstance(exc.value, WrongKeyError)


def test_tampered_payload_fails_signature_check(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    import base64

    model = make_model(tmp_path)
    sign(model, key=keypair[0])
    doc = json.loads((model / "model.sig").read_bytes())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).replace(b'"config.json"', b'"config.jsom"')
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    (model / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(InvalidSignatureError):
        verify(model, key=keypair[1])


def test_git_and_signature_are_ignored_and_recorded(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    (model / ".git" / "objects").mkdir(parents=True)
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")
    signed = sign(model, key=keypair[0], ignore=["notes"])
    (model / "notes").mkdir()
    (model / "notes" / "todo.md").write_text("later")
    (model / ".git" / "HEAD").write_text("changed\n")
    assert ".git/HEAD" not in signed.manifest.files()
    result = verify(model, key=keypair[1])
    assert result.ok
    assert {".git", ".gitattributes", "model.sig", "notes"} <= set(result.serialization.ignore_paths)


def test_no_ignore_git_signs_git_files(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    (model / ".gitignore").write_text("*.tmp\n")
    signed = sign(model, key=keypair[0], ignore_git=False)
    assert ".gitignore" in signed.manifest.files()


def test_signature_outside_the_directory(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    sig = tmp_path / "elsewhere.sig"
    signed = sign(model, key=keypair[0], signature=sig)
    assert "elsewhere.sig" not in signed.manifest.serialization.ignore_paths
    assert verify(model, key=keypair[1], signature=sig).ok
    with pytest.raises(NotFoundError):
        verify(model, key=keypair[1])  # no DIR/model.sig


def test_symlinks_refused_unless_allowed(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    (model / "link.bin").symlink_to(model / "model.safetensors")
    with pytest.raises(SymlinkRefusedError) as exc:
        sign(model, key=keypair[0])
    assert exc.value.path == "link.bin"
    assert not (model / "model.sig").exists()
    signed = sign(model, key=keypair[0], allow_symlinks=True)
    assert "link.bin" in signed.manifest.files()
    assert verify(model, key=keypair[1]).ok
    # retargeting the link changes the signed content
    (model / "link.bin").unlink()
    (model / "link.bin").symlink_to(model / "config.json")
    assert verify(model, key=keypair[1]).changed == ("link.bin",)


def test_symlink_to_directory_refused_even_when_allowed(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    (model / "alias").symlink_to(model / "sub")
    with pytest.raises(SymlinkRefusedError):
        sign(model, key=keypair[0], allow_symlinks=True)


def test_symlink_added_after_signing_is_refused_on_verify(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keypair[0])
    (model / "evil").symlink_to("/etc/passwd")
    with pytest.raises(SymlinkRefusedError):
        verify(model, key=keypair[1])


def test_fifo_is_refused(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    os.mkfifo(model / "pipe")
    with pytest.raises(UnsupportedFormatError):
        sign(model, key=keypair[0])


def test_shards_mode_names_the_changed_file(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    signed = sign(model, key=keypair[0], method="shards", shard_size=1024)
    names = [r.name for r in signed.manifest.resources]
    assert "model.safetensors:0:1024" in names and "model.safetensors:4096:5000" in names
    assert all(r.algorithm == "sha256-sharded-1024" for r in signed.manifest.resources)
    data = bytearray((model / "model.safetensors").read_bytes())
    data[2500] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    result = verify(model, key=keypair[1], workers=2)
    assert result.changed == ("model.safetensors",)
    assert list(result.differences) == ["model.safetensors:2048:3072"]


def test_shards_mode_detects_truncation(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keypair[0], method="shards", shard_size=1000)
    with (model / "model.safetensors").open("r+b") as f:
        f.truncate(4000)
    assert verify(model, key=keypair[1]).changed == ("model.safetensors",)


def test_parallel_and_serial_hashing_agree(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    ser = Serialization("shards", 777)
    assert hash_model(model, ser, workers=1) == hash_model(model, ser, workers=4)


def test_canonical_order_is_by_path_components() -> None:
    ser = Serialization()
    m = Manifest.build("m", ser, [Resource("a-c", "sha256", "0" * 64), Resource("a/b", "sha256", "1" * 64)])
    assert [r.name for r in m.resources] == ["a/b", "a-c"]
    shards = Serialization("shards", 10)
    m2 = Manifest.build(
        "m", shards, [Resource(f"f:{s}:{s + 10}", shards.algorithm, "0" * 64) for s in (100, 20, 0)]
    )
    assert [r.name for r in m2.resources] == ["f:0:10", "f:20:30", "f:100:110"]


def test_hub_style_check_from_stored_digests(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """The hub has the signature bytes and each file's sha256; with method=files that is enough."""
    import hashlib

    model = make_model(tmp_path)
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")
    sign(model, key=keypair[0])
    signed = authenticate((model / "model.sig").read_bytes(), key=keypair[1])
    stored = {
        p.relative_to(model).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in model.rglob("*")
        if p.is_file()
    }
    ser = signed.manifest.serialization
    assert check(signed, Manifest.from_file_digests(stored, ser)).ok  # model.sig, .gitattributes left out
    stored["config.json"] = "0" * 64
    assert check(signed, Manifest.from_file_digests(stored, ser)).changed == ("config.json",)
    with pytest.raises(UsageError):
        Manifest.from_file_digests(stored, Serialization("shards", 10))


def test_any_of_several_trusted_keys(
    tmp_path: Path, keypair: tuple[Path, Path], other_keypair: tuple[Path, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=other_keypair[0])
    result = verify(model, key=[keypair[1], other_keypair[1]])
    assert result.ok and result.signer.fingerprint == sign(model, key=other_keypair[0]).signer.fingerprint
    with pytest.raises(WrongKeyError):
        verify(model, key=[keypair[1]])


def test_usage_errors(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    model = make_model(tmp_path)
    with pytest.raises(NotFoundError):
        sign(tmp_path / "missing", key=keypair[0])
    with pytest.raises(UsageError):
        sign(model, key=keypair[0], shard_size=0, method="shards")
    with pytest.raises(NotFoundError):
        sign(model, key=keypair[0], signature=tmp_path / "no-such-dir" / "x.sig")
    for bad in ("../outside", "/etc", "a/../../b", ".", ""):
        with pytest.raises(UsageError):
            sign(model, key=keypair[0], ignore=[bad])
    sign(model, key=keypair[0])
    with pytest.raises(UsageError):
        verify(model)  # neither key nor trusted roots
    with pytest.raises(NotFoundError):
        verify(model, key=keypair[1], signature=model)  # a directory is not a signature file
    with pytest.raises(ConflictError):
        write_keypair(keypair[0].with_suffix("").with_suffix(""))  # refuses to overwrite


def test_files_swapped_after_the_walk_are_refused(tmp_path: Path) -> None:
    """A file replaced by a FIFO or a symlink between listing and reading fails instead of hanging or following."""
    from cairn.security.signing.hashing import _hash_range

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsupportedFormatError):
        _hash_range(tmp_path / "fifo", 0, 10, 10)
    (tmp_path / "real").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SymlinkRefusedError):
        _hash_range(tmp_path / "link", 0, 10, 10)
    followed = _hash_range(tmp_path / "link", 0, 10, 10, follow_symlinks=True)
    assert followed == _hash_range(tmp_path / "real", 0, 10, 10)
    with pytest.raises(IntegrityError):  # the listing said 12 bytes; the file has 10 now
        _hash_range(tmp_path / "real", 0, 10, 12)
