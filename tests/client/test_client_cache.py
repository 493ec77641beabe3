"""The cache: resuming a truncated ``.incomplete`` download with Range, detecting corrupted blobs,
private repos and bad tokens as typed errors, and the CLI's exit statuses for them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from client_testing import ClientHub
from test_client_roundtrip import make_model_dir

from cairn.cli.main import main
from cairn.client import RepoNotFoundError, parse_repo_ref, pull, push
from cairn.client.cache import RepoCache
from cairn.errors import IntegrityError, NotFoundError, PermissionDeniedError


@pytest.fixture(scope="module")
def repo(client_hub: ClientHub, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    src = make_model_dir(tmp_path_factory.mktemp("cache") / "src", seed=7)
    name = f"alice/cache-{uuid.uuid4().hex[:8]}"
    push(src, parse_repo_ref(name), endpoint=client_hub.url, token=client_hub.token, create=True)
    return name, src


def _blob_of(result: object, path: str) -> str:
    return next(f.etag for f in result.files if f.path == path)  # type: ignore[attr-defined]


def test_truncated_incomplete_download_is_resumed(
    client_hub: ClientHub, repo: tuple[str, Path], tmp_path: Path
) -> None:
    name, src = repo
    ref = parse_repo_ref(name)
    first = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path)
    cache = RepoCache(tmp_path, ref)
    etag = _blob_of(first, "sub/blob.bin")
    data = (src / "sub" / "blob.bin").read_bytes()
    # as if the process died half-way: half the bytes in .incomplete, no blob, no snapshot entry
    cache.blob(etag).unlink()
    (first.snapshot / "sub" / "blob.bin").unlink()
    cache.incomplete(etag).write_bytes(data[: len(data) // 2])
    again = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path)
    assert {f.path: f.status for f in again.files}["sub/blob.bin"] == "resumed"
    assert (again.snapshot / "sub" / "blob.bin").read_bytes() == data
    assert not cache.incomplete(etag).exists()


def test_resume_appends_to_what_is_there(
    client_hub: ClientHub, repo: tuple[str, Path], tmp_path: Path
) -> None:
    """Proof that only the missing range is fetched: a wrong prefix in .incomplete makes the hash check
    fail (and the partial file is dropped), then the next pull starts over and succeeds."""
    name, src = repo
    ref = parse_repo_ref(name)
    first = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path, include=["sub/blob.bin"])
    cache = RepoCache(tmp_path, ref)
    etag = _blob_of(first, "sub/blob.bin")
    cache.blob(etag).unlink()
    cache.incomplete(etag).write_bytes(b"\xff" * 1000)
    with pytest.raises(IntegrityError) as info:
        pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path, include=["sub/blob.bin"])
    assert info.value.path == "sub/blob.bin" and info.value.what == "sha256"
    assert not cache.incomplete(etag).exists() and not cache.blob(etag).exists()
    done = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path, include=["sub/blob.bin"])
    assert (done.snapshot / "sub" / "blob.bin").read_bytes() == (src / "sub" / "blob.bin").read_bytes()


@pytest.mark.parametrize("path", ["model.safetensors", "config.json"])  # an LFS file and a regular one
def test_corrupted_cached_blob_is_detected_and_repaired(
    client_hub: ClientHub, repo: tuple[str, Path], tmp_path: Path, path: str
) -> None:
    name, src = repo
    ref = parse_repo_ref(name)
    first = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path)
    blob = RepoCache(tmp_path, ref).blob(_blob_of(first, path))
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))
    again = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path)
    status = {f.path: f.status for f in again.files}
    assert status[path] == "repaired"
    assert {s for p, s in status.items() if p != path} == {"cached"}
    assert (again.snapshot / path).read_bytes() == (src / path).read_bytes() == blob.read_bytes()


def test_private_repo_without_token_is_not_found(
    client_hub: ClientHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_model_dir(tmp_path / "src", seed=3)
    name = f"alice/private-{uuid.uuid4().hex[:8]}"
    push(
        src, parse_repo_ref(name), endpoint=client_hub.url, token=client_hub.token, create=True, private=True
    )
    with pytest.raises(RepoNotFoundError) as info:
        pull(parse_repo_ref(name), endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c")
    assert isinstance(info.value, NotFoundError) and info.value.hub_code == "RepoNotFound"  # type: ignore[attr-defined]
    # another user cannot see it either, the owner can
    with pytest.raises(RepoNotFoundError):
        pull(
            parse_repo_ref(name),
            endpoint=client_hub.url,
            token=client_hub.other_token,
            cache_dir=tmp_path / "c",
        )
    ok = pull(parse_repo_ref(name), endpoint=client_hub.url, token=client_hub.token, cache_dir=tmp_path / "c")
    assert (ok.snapshot / "config.json").read_bytes() == (src / "config.json").read_bytes()
    assert (
        main(["pull", name, "--endpoint", client_hub.url, "--cache-dir", str(tmp_path / "d"), "--token", ""])
        == 2
    )
    assert "repository not found" in capsys.readouterr().err


def test_wrong_token_is_permission_denied(
    client_hub: ClientHub, repo: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, src = repo
    with pytest.raises(PermissionDeniedError):
        pull(parse_repo_ref(name), endpoint=client_hub.url, token="not-a-real-token", cache_dir=tmp_path)
    with pytest.raises(PermissionDeniedError):
        push(src, parse_repo_ref(name), endpoint=client_hub.url, token="not-a-real-token")
    status = main(["push", str(src), name, "--endpoint", client_hub.url, "--token", "nope", "--json"])
    assert status == 2
    assert '"permission_denied"' in capsys.readouterr().out


def test_push_to_someone_elses_repo_is_refused(client_hub: ClientHub, repo: tuple[str, Path]) -> None:
    name, src = repo
    with pytest.raises(PermissionDeniedError):
        push(src, parse_repo_ref(name), endpoint=client_hub.url, token=client_hub.other_token)


def test_pull_of_missing_repo(client_hub: ClientHub, tmp_path: Path) -> None:
    with pytest.raises(RepoNotFoundError):
        pull(
            parse_repo_ref("alice/does-not-exist"),
            endpoint=client_hub.url,
            token=client_hub.token,
            cache_dir=tmp_path,
        )
