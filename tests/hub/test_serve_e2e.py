"""End to end: ``cairn serve`` as a subprocess, a user made with ``cairn admin create-user --json``, and
the ``hf`` CLI with a clean environment (Xet installed and not disabled: the hub keeps it off Xet by
answering "regular" uploads, spec §7.6 B), then killing the server and checking nothing is half-written."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "CAIRN_"))}
    env.update(HF_HOME=str(tmp / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", NO_COLOR="1", **extra)
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    data = tmp_path / "data"
    port = _port()
    proc = subprocess.Popen(
        [str(BIN / "cairn"), "serve", "--port", str(port), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_clean_env(tmp_path),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/api/models", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError((proc.stdout.read() if proc.stdout else b"").decode()) from None
            time.sleep(0.1)
    yield url, data, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def test_cairn_serve_with_hf_cli(served: tuple[str, Path, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    url, data, proc = served
    out = subprocess.run(
        [str(BIN / "cairn"), "admin", "create-user", "carol", "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(out.stdout)["token"]
    env = _clean_env(tmp_path, HF_ENDPOINT=url, HF_TOKEN=token)
    weights = os.urandom(300_000)
    (tmp_path / "model.safetensors").write_bytes(weights)
    hf = str(BIN / "hf")
    subprocess.run([hf, "repos", "create", "carol/e2e"], env=env, check=True, capture_output=True)
    up = subprocess.run(
        [hf, "upload", "carol/e2e", str(tmp_path / "model.safetensors"), "model.safetensors"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    dest = tmp_path / "dl"
    down = subprocess.run(
        [hf, "download", "carol/e2e", "model.safetensors", "--local-dir", str(dest)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert (dest / "model.safetensors").read_bytes() == weights
    who = subprocess.run([hf, "auth", "whoami"], env=env, capture_output=True, text=True)
    assert "carol" in who.stdout + who.stderr
    page = urllib.request.urlopen(url + "/carol/e2e", timeout=5).read().decode()
    assert "model.safetensors" in page

    # Kill the server hard in the middle of a large commit: afterwards the branch still points at a
    # complete commit whose every file's bytes are present.
    big = "{" + '"key": "header", "value": {"summary": "half"}' + "}\n"
    req = urllib.request.Request(
        url + "/api/models/carol/e2e/commit/main",
        data=iter(
            [big.encode(), b'{"key": "file", "value": {"path": "x.txt", "content": "' + b"QUFB" * 500_000]
        ),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
            "Content-Length": "9999999",
        },
        method="POST",
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(req, timeout=0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    from cairn.registry import Registry

    reg = Registry.open(f"sqlite:///{data / 'hub.db'}", str(data / "blobs"))
    try:
        repo = reg.repos.get("model", "carol", "e2e", None)
        head = reg.commits.branch_head(repo, "main")
        entries = reg.commits.files(head)
        assert {e.path for e in entries} == {".gitattributes", "model.safetensors"}
        for e in entries:
            assert reg.store.size(e.sha256) == e.size
    finally:
        reg.close()
