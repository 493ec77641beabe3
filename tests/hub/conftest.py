"""Fixtures for the hub tests: a real hub served by uvicorn on a loopback port, over each backend pair
(SQLite + local blobs; PostgreSQL + S3 on SeaweedFS), and users with real tokens.

The Hugging Face client reads its settings at import, so they are fixed here, before any test imports it:
a private HF_HOME, no telemetry, no safetensors auto-conversion, and Xet off (the LFS batch path).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
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

from hub_testing import BACKENDS, Backend, LiveHub, ServerThread  # noqa: E402

from cairn.hub import HubConfig, create_app  # noqa: E402
from cairn.registry import Registry  # noqa: E402
from cairn.registry.trust import TrustPolicy  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _hf_client_settings() -> Iterator[None]:
    """The client reads most settings once at import; if another test package imported it before this
    conftest set the environment, set the values that matter directly (and restore them afterwards)."""
    from huggingface_hub import constants

    wanted = {
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_CACHE": os.path.join(_HF_HOME, "hub"),
        "HF_HUB_ETAG_TIMEOUT": 30,
        "HF_HUB_DOWNLOAD_TIMEOUT": 30,
    }
    saved = {name: getattr(constants, name) for name in wanted if hasattr(constants, name)}
    for name, value in wanted.items():
        setattr(constants, name, value)
    yield
    for name, value in saved.items():
        setattr(constants, name, value)


@pytest.fixture(scope="session", params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    factory = BACKENDS[request.param]
    with factory(tmp_path_factory.mktemp(request.param)) as b:
        yield b


def _serve(registry: Registry, config: HubConfig) -> Iterator[LiveHub]:
    """Serve ``registry`` on a loopback port with tokens for alice and bob; close it afterwards."""
    with ServerThread(create_app(registry, config)) as server:
        yield LiveHub(
            url=f"http://127.0.0.1:{server.port}",
            registry=registry,
            token=registry.users.create_token("alice"),
            other_token=registry.users.create_token("bob"),
        )
    registry.close()


@pytest.fixture(scope="session")
def hub(backend: Backend) -> Iterator[LiveHub]:
    registry = Registry.open(backend.db_url, backend.blobs_url)
    registry.users.create_user("alice")
    registry.users.create_user("bob")
    yield from _serve(
        registry, HubConfig(page_size=3, regular_upload_cap=0, multipart_chunk_bytes=256 * 1024)
    )


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture(scope="module")
def quarantine_hub(backend: Backend, hub: LiveHub) -> Iterator[LiveHub]:
    """A second server on the same backend whose policy quarantines unsafe files instead of refusing
    them (alice is a hub admin), so pages and downloads of flagged files can be tested."""
    policy = TrustPolicy(on_unsafe="quarantine", admins=("alice",))
    registry = Registry.open(backend.db_url, backend.blobs_url, trust=policy)
    yield from _serve(registry, HubConfig(regular_upload_cap=0))
