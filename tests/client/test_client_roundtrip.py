"""push → pull against a real hub on both backends, and huggingface_hub reading cairn's cache offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from client_testing import ClientHub
from safetensors.numpy import save_file

from cairn.cli.main import main
from cairn.client import parse_repo_ref, pull, push


def make_model_dir(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": "tiny", "seed": seed}))
    save_file({"w": rng.standard_normal((64, 64)).astype(np.float32)}, str(root / "model.safetensors"))
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_text("hello from cairn\n" * 10)
    (root / "sub" / "blob.bin").write_bytes(rng.bytes(300_000))
    (root / "empty.txt").write_bytes(b"")
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    status = main([*args, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)


def test_push_then_pull_round_trip(
    client_hub_any: ClientHub, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = client_hub_any
    src = make_model_dir(tmp_path / "src", seed=100 + len(hub.backend))
    repo = f"alice/rt-{uuid.uuid4().hex[:8]}"
    status, pushed = cli_json(
        ["push", str(src), repo, "--create", "--endpoint", hub.url, "--token", hub.token, "-m", "first"],
        capsys,
    )
    assert status == 0 and pushed["committed"] is True
    modes = {f["path"]: (f["mode"], f["status"]) for f in pushed["files"]}  # type: ignore[attr-defined]
    assert modes["model.safetensors"] == ("lfs", "uploaded")
    assert modes["sub/blob.bin"] == ("lfs", "uploaded")
    assert modes["config.json"] == ("regular", "inlined")
    import httpx

    history = httpx.get(f"{hub.url}/api/models/{repo}/commits/main").json()
    assert history[0]["title"] == "first" and history[0]["id"] == pushed["commit"]
    assert len(history) == 2  # one commit for the whole directory, on top of the repo's initial one
    status, pulled = cli_json(
        ["pull", repo, "--endpoint", hub.url, "--token", hub.token, "--cache-dir", str(cache)], capsys
    )
    assert status == 0 and pulled["commit"] == pushed["commit"]
    snapshot = Path(str(pulled["snapshot"]))
    assert snapshot == cache / f"models--{repo.replace('/', '--')}" / "snapshots" / str(pushed["commit"])
    got = files_of(snapshot)
    assert {k: v for k, v in got.items() if k != ".gitattributes"} == files_of(src)
    assert (cache / f"models--{repo.replace('/', '--')}" / "refs" / "main").read_text() == pushed["commit"]

    # into a directory of one's own: plain copies, not links into the cache
    out = tmp_path / "out"
    status, _ = cli_json(["pull", repo, str(out), "--endpoint", hub.url, "--cache-dir", str(cache)], capsys)
    assert status == 0
    assert {k: v for k, v in files_of(out).items() if k != ".gitattributes"} == files_of(src)
    assert (out / "model.safetensors").stat().st_nlink == 1


def test_huggingface_hub_finds_pulled_files_offline(
    client_hub: ClientHub, tmp_path: Path, cache: Path
) -> None:
    src = make_model_dir(tmp_path / "src", seed=1)
    ref = parse_repo_ref(f"alice/off-{uuid.uuid4().hex[:8]}")
    push(src, ref, endpoint=client_hub.url, token=client_hub.token, create=True)
    pull(ref, endpoint=client_hub.url, token=None, cache_dir=cache)
    code = (
        "import sys; from huggingface_hub import hf_hub_download\n"
        "for name in ('config.json', 'model.safetensors', 'sub/blob.bin'):\n"
        "    print(hf_hub_download(sys.argv[1], name, cache_dir=sys.argv[2]))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: only the cache can answer
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, ref.repo_id, str(cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    paths = [Path(line) for line in done.stdout.split()]
    assert [p.read_bytes() for p in paths] == [
        (src / "config.json").read_bytes(),
        (src / "model.safetensors").read_bytes(),
        (src / "sub" / "blob.bin").read_bytes(),
    ]
