"""``cairn lineage DIR`` and hubs: the local model's fingerprint is sent to ``/api/cairn/lineage-search``
only with ``--search-hub`` (an endpoint is often set globally, e.g. HF_ENDPOINT for a mirror), and a hub
without that cairn-only endpoint, or one that answers something else, is a note, not a failure."""

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
    """A hub that is not cairn (huggingface.co, a mirror): no /api/cairn/*; records what was posted.
    ``answer``: when set, a 200 with this body instead of a 404 (a hub answering nonsense)."""

    posted: ClassVar[list[str]] = []
    answer: ClassVar[bytes | None] = None

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        type(self).posted.append(self.path)
        body = self.answer if self.answer is not None else json.dumps({"error": "Not Found"}).encode()
        self.send_response(404 if self.answer is None else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_cairn() -> Iterator[str]:
    _NotCairn.posted.clear()
    _NotCairn.answer = None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotCairn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def finetune(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    base = {f"l.{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(4)}
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model.safetensors").write_bytes(st_save(base))
    ft = {n: (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32) for n, a in base.items()}
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "model.safetensors").write_bytes(st_save(ft))
    (tmp_path / "ft" / "README.md").write_text("---\nbase_model: ./../base\n---\n")
    return tmp_path / "ft"


def test_lineage_of_a_local_model_sends_nothing_to_the_hub_unless_asked(
    finetune: Path, not_cairn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", not_cairn)  # set globally, as many users do
    code = main(["lineage", str(finetune), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert _NotCairn.posted == []
    data = json.loads(out.out)
    assert data["declared"][0]["verdict"] == "finetune" and "hubSearch" not in data


def test_search_on_a_hub_without_lineage_search_is_a_note(
    finetune: Path, not_cairn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    code = main(["lineage", str(finetune), "--endpoint", not_cairn, "--search-hub", "--json"])
    out = capsys.readouterr()
    assert _NotCairn.posted == ["/api/cairn/lineage-search"]
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["declared"][0]["verdict"] == "finetune"
    assert data["hubSearch"].startswith("unavailable") and data["undeclared"] == []


@pytest.mark.parametrize(
    "answer", [b'{"candidates": "x"}', b"[1, 2]", b'{"candidates": [{"repo": 1}]}', b"not json"]
)
def test_search_answer_of_the_wrong_shape_is_a_note(
    finetune: Path,
    not_cairn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: bytes,
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    _NotCairn.answer = answer
    code = main(["lineage", str(finetune), "--endpoint", not_cairn, "--search-hub", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["hubSearch"].startswith("unavailable") and data["undeclared"] == []


def test_search_hub_without_an_endpoint_is_a_usage_error(
    finetune: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["lineage", str(finetune), "--search-hub"]) == 2
    assert "--search-hub needs a hub" in capsys.readouterr().err
