"""Review of gov-hub, client side: ``cairn lineage DIR`` with an endpoint chosen (``--endpoint`` or
``HF_ENDPOINT``, which many users set globally to huggingface.co or a mirror) posts the local model's
fingerprint to ``/api/cairn/lineage-search`` unconditionally and fails the whole command when that hub
does not have the cairn-only endpoint, or refuses the fingerprint (> 20,000 tensors)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from safetensors.numpy import save as st_save

from cairn.cli.main import main


class _NotCairn(http.server.BaseHTTPRequestHandler):
    """A hub that is not cairn (huggingface.co, a mirror): no /api/cairn/*; records what was posted."""

    posted: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        type(self).posted.append(self.path)
        body = json.dumps({"error": "Not Found"}).encode()
        self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_cairn() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotCairn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_lineage_of_a_local_model_survives_a_hub_without_lineage_search(
    tmp_path: Path, not_cairn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    rng = np.random.default_rng(1)
    base = {f"l.{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(4)}
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model.safetensors").write_bytes(st_save(base))
    ft = {n: (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32) for n, a in base.items()}
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "model.safetensors").write_bytes(st_save(ft))
    (tmp_path / "ft" / "README.md").write_text("---\nbase_model: ./../base\n---\n")
    code = main(["lineage", str(tmp_path / "ft"), "--endpoint", not_cairn, "--json"])
    out = capsys.readouterr()
    assert _NotCairn.posted == ["/api/cairn/lineage-search"]  # the local fingerprint left the machine
    assert code == 0, out.err
    assert json.loads(out.out)["declared"][0]["verdict"] == "finetune"
