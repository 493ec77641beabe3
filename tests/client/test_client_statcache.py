"""A pull records what it hashed in the verified-file stat cache, so that ``cairn.load`` right after
it does not hash the same bytes again; a file changed after the pull is hashed again and refused."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from client_testing import ClientHub

import cairn
from cairn.cli.main import main
from cairn.client import parse_repo_ref, pull
from cairn.errors import IntegrityError
from cairn.format import statcache
from cairn.format.statcache import ENV_VAR
from file_tricks import flip_last_byte_keep_mtime

FILES = {"model.safetensors", "optimizer.safetensors", "optimizer.json"}


def _state() -> dict[str, np.ndarray]:
    return {"w": np.arange(4096, dtype=np.float32), "b": np.arange(7, dtype=np.int64)}


def _target() -> dict[str, np.ndarray]:
    return {"w": np.zeros(4096, np.float32), "b": np.zeros(7, np.int64)}


@pytest.fixture(autouse=True)
def verified_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private stat cache; recording waits out the racy-timestamp margin for small files too (by
    default only when a re-hash would cost more than the wait), as the checkpoint tests do."""
    path = tmp_path / "verified"
    monkeypatch.setenv(ENV_VAR, str(path))
    monkeypatch.setattr(statcache, "WAIT_FOR_RACY_BYTES", 0)
    return path


@pytest.fixture
def pushed(client_hub: ClientHub, tmp_path: Path) -> str:
    ckpt = tmp_path / "step-1"
    cairn.save(ckpt, model=_state(), optimizer={"step": 1, "m": np.ones(5, np.float32)}, rng_state=False)
    repo = f"alice/pulled-{uuid.uuid4().hex[:8]}"
    hub = ["--endpoint", client_hub.url, "--token", client_hub.token]
    assert main(["push", str(ckpt), repo, "--create", *hub]) == 0
    return repo


def _load(root: Path) -> dict[str, str]:
    target = _target()
    result = cairn.load(root, model=target, optimizer={"step": 0, "m": np.zeros(5, np.float32)})
    assert (target["w"] == np.arange(4096)).all()
    return dict(result.checked)


def test_load_after_cli_pull_trusts_what_the_pull_hashed(
    client_hub: ClientHub, pushed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pulled"
    hub = ["--endpoint", client_hub.url, "--token", client_hub.token, "--json"]
    assert main(["pull", pushed, str(out), "--exclude", ".gitattributes", *hub]) == 0
    snapshot = Path(json.loads(capsys.readouterr().out)["snapshot"])
    cached = dict.fromkeys(FILES, "cached")
    assert _load(out) == cached  # the copies in DIR
    assert _load(snapshot) == cached  # the cache's own snapshot (hard links to the blobs)
    assert cairn.load(out, model=_target(), verify="full").checked["model.safetensors"] == "hashed"

    flip_last_byte_keep_mtime(out / "model.safetensors")  # size and mtime kept: only ctime tells
    with pytest.raises(IntegrityError, match=r"model\.safetensors"):
        _load(out)
    assert _load(snapshot) == cached  # another inode: untouched
    flip_last_byte_keep_mtime(snapshot / "optimizer.safetensors")
    with pytest.raises(IntegrityError, match=r"optimizer\.safetensors"):
        _load(snapshot)


def test_load_of_a_hub_reference_hashes_the_download_once(
    client_hub: ClientHub, pushed: str, tmp_path: Path
) -> None:
    hub = {"endpoint": client_hub.url, "token": client_hub.token}
    target = _target()
    first = cairn.load(pushed, model=target, optimizer={"step": 0, "m": np.zeros(5, np.float32)}, **hub)
    assert (target["w"] == np.arange(4096)).all()
    assert dict(first.checked) == dict.fromkeys(FILES, "cached")  # hashed while downloading, not again
    again = cairn.load(pushed, model=_target(), optimizer={"step": 0, "m": np.zeros(5, np.float32)}, **hub)
    assert dict(again.checked) == dict.fromkeys(FILES, "cached")


def test_files_a_pull_only_size_checked_are_not_recorded(
    client_hub: ClientHub, pushed: str, tmp_path: Path, verified_cache: Path
) -> None:
    cache = tmp_path / "hf-cache"
    ref = parse_repo_ref(pushed)
    kwargs = {"endpoint": client_hub.url, "token": client_hub.token, "cache_dir": cache}
    pull(ref, exclude=[".gitattributes"], **kwargs)  # type: ignore[arg-type]
    for record in verified_cache.glob("*.json"):
        record.unlink()
    result = pull(ref, exclude=[".gitattributes"], recheck_cached=False, **kwargs)  # type: ignore[arg-type]
    assert {f.status for f in result.files} == {"cached"} and not result.verified
    assert _load(result.snapshot) == dict.fromkeys(FILES, "hashed")
    assert _load(result.snapshot) == dict.fromkeys(FILES, "cached")  # the load recorded them itself
