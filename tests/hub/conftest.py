"""Fixtures for the hub tests: a real hub served by uvicorn on a loopback port, over each backend pair
(SQLite + local blobs; PostgreSQL + S3 on SeaweedFS), and users with real tokens.

The Hugging Face client reads its settings at import, so they are fixed here, before any test imports it:
a private HF_HOME, no telemetry, no safetensors auto-conversion, and Xet off (the LFS batch path).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_HF_HOME = tempfile.mkdtemp(prefix="cairn-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ.update(
    HF_HOME=_HF_HOME,
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_XET="1",
    DISABLE_SAFETENSORS_CONVERSION="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    HF_HUB_ETAG_TIMEOUT="30",
    HF_HUB_DOWNLOAD_TIMEOUT="30",
    TRANSFORMERS_VERBOSITY="error",
)
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_ENDPOINT", None)

from hub_backends import BACKENDS, Backend  # noqa: E402

from cairn.hub import HubConfig, create_app  # noqa: E402
from cairn.registry import Registry  # noqa: E402


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


@pytest.fixture(scope="session", params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    factory = BACKENDS[request.param]
    with factory(tmp_path_factory.mktemp(request.param)) as b:
        yield b


@pytest.fixture(scope="session")
def hub(backend: Backend) -> Iterator[LiveHub]:
    registry = Registry.open(backend.db_url, backend.blobs_url)
    app = create_app(registry, HubConfig(page_size=3, regular_upload_cap=0, multipart_chunk_bytes=256 * 1024))
    registry.users.create_user("alice")
    registry.users.create_user("bob")
    with ServerThread(app) as server:
        yield LiveHub(
            url=f"http://127.0.0.1:{server.port}",
            registry=registry,
            token=registry.users.create_token("alice"),
            other_token=registry.users.create_token("bob"),
        )
    registry.close()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"
