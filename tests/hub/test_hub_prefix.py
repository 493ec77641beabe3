"""The hub mounted under a path prefix (``HF_ENDPOINT=http://host/hub``): every absolute URL it returns
carries the prefix, and the real client works through it."""

from __future__ import annotations

from pathlib import Path

from hub_testing import ServerThread
from huggingface_hub import HfApi, hf_hub_download
from starlette.applications import Starlette
from starlette.routing import Mount

from cairn.hub import HubConfig, create_app
from cairn.registry import Registry


def test_client_through_a_path_prefix(tmp_path: Path) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    registry.users.create_user("pia")
    token = registry.users.create_token("pia")
    outer = Starlette(routes=[Mount("/hub", app=create_app(registry, HubConfig(regular_upload_cap=0)))])
    try:
        with ServerThread(outer) as server:
            endpoint = f"http://127.0.0.1:{server.port}/hub"
            api = HfApi(endpoint=endpoint, token=token)
            assert str(api.create_repo("pia/prefixed")) == f"{endpoint}/pia/prefixed"
            info = api.upload_file(path_or_fileobj=b"\0" * 5000, path_in_repo="w.bin", repo_id="pia/prefixed")
            assert info.commit_url.startswith(endpoint + "/pia/prefixed/commit/")
            got = hf_hub_download("pia/prefixed", "w.bin", endpoint=endpoint, cache_dir=tmp_path / "c")
            assert Path(got).read_bytes() == b"\0" * 5000
    finally:
        registry.close()
