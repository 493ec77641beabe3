"""Fixtures for the client tests: a real hub (uvicorn on a loopback port) over the backends of
``tests/hub/hub_testing.py`` (whose server thread it reuses), users with real tokens, and a private cache folder per test.

``client_hub`` runs over SQLite + local blobs (cheap, used by most tests); ``client_hub_any`` over both
backend pairs (PostgreSQL + SeaweedFS S3 too), for the push/pull round trip.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hub"))

from client_testing import ClientHub
from hub_testing import BACKENDS, ServerThread

from cairn.hub import HubConfig, create_app
from cairn.registry import Registry


@contextlib.contextmanager
def _hub(name: str, tmp: Path) -> Iterator[ClientHub]:
    with BACKENDS[name](tmp) as backend:
        registry = Registry.open(backend.db_url, backend.blobs_url)
        app = create_app(registry, HubConfig(page_size=3, regular_upload_cap=0))
        registry.users.create_user("alice")
        registry.users.create_user("bob")
        try:
            with ServerThread(app) as server:
                yield ClientHub(
                    f"http://127.0.0.1:{server.port}",
                    registry,
                    registry.users.create_token("alice"),
                    registry.users.create_token("bob"),
                    name,
                )
        finally:
            registry.close()


@pytest.fixture(scope="session")
def client_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientHub]:
    with _hub("sqlite-local", tmp_path_factory.mktemp("client-hub")) as hub:
        yield hub


@pytest.fixture(scope="module", params=list(BACKENDS), ids=list(BACKENDS))
def client_hub_any(
    request: pytest.FixtureRequest, client_hub: ClientHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClientHub]:
    if request.param == "sqlite-local":
        yield client_hub
        return
    with _hub(request.param, tmp_path_factory.mktemp(request.param)) as hub:
        yield hub


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture(autouse=True)
def _private_hf_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's token or writes the user's cache: HF_HOME points into the test's folder."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
