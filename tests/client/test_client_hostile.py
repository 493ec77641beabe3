"""Hostile and broken hub answers, from a real HTTP server that lies on purpose: unsafe paths, foreign
pagination links, wrong sizes and hashes, non-JSON, 5xx, dropped connections. Nothing may be written
outside the target folders, nothing unverified may enter the cache, and every failure is typed."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cairn.client import HubResponseError, parse_repo_ref, pull
from cairn.client.cache import RepoCache
from cairn.errors import IntegrityError

SHA = "1" * 40
DATA = bytes(range(256)) * 400  # 102400 bytes
SHA256 = hashlib.sha256(DATA).hexdigest()
GIT_SHA1 = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()


def _entry(path: str, **over: Any) -> dict[str, Any]:
    entry = {
        "type": "file",
        "path": path,
        "size": len(DATA),
        "oid": GIT_SHA1,
        "lfs": {"oid": SHA256, "size": len(DATA)},
    }
    return {**entry, **over}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        s = self.server.scenario
        self.server.seen.append((self.path, self.headers.get("range"), self.headers.get("authorization")))
        if "redirect" in s and "/revision/" in self.path:
            self._send(307, b"", {"Location": s["redirect"]})
        elif "/revision/" in self.path:
            self._send(200, json.dumps(s.get("info", {"sha": SHA})).encode())
        elif "/tree/" in self.path:
            pages = s["tree"]
            page = 1 if "page=2" in self.path else 0
            headers = {"Link": f'<{s["next"]}>; rel="next"'} if page == 0 and "next" in s else {}
            self._send(
                200,
                pages[page] if isinstance(pages[page], bytes) else json.dumps(pages[page]).encode(),
                headers,
            )
        elif "/resolve/" in self.path:
            body = s.get("body", DATA)
            if s.get("drop_first") and not self.headers.get("range"):
                s["drop_first"] = False
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            rng = self.headers.get("range")
            if rng and s.get("honour_range", True):
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                part = body[start:]
                self._send(206, part, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
            else:
                self._send(s.get("status", 200), body)
        else:
            self._send(404, b'{"error": "no"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    scenario: dict[str, Any]
    seen: list[tuple[str, str | None, str | None]]


@pytest.fixture
def evil() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.scenario, server.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _pull(server: _Server, tmp_path: Path, **kw: Any) -> Any:
    return pull(
        parse_repo_ref("evil/x"), endpoint=_url(server), token="secret", cache_dir=tmp_path / "cache", **kw
    )


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "path",
    ["../evil.txt", "a/../../evil.txt", "/etc/evil", "a\\..\\evil", "a//b", "./a", "C:/evil", "a\0b", ""],
)
def test_unsafe_listed_path_is_refused_and_nothing_is_written(
    evil: _Server, tmp_path: Path, path: str
) -> None:
    evil.scenario["tree"] = [[_entry("ok.bin"), _entry(path)]]
    with pytest.raises(HubResponseError):
        _pull(evil, tmp_path, directory=tmp_path / "out")
    assert _all_files(tmp_path) == []
    assert not any("/resolve/" in p for p, _, _ in evil.seen)


def test_file_below_a_file_is_refused(evil: _Server, tmp_path: Path) -> None:
    evil.scenario["tree"] = [[_entry("a"), _entry("a/b")]]
    with pytest.raises(HubResponseError, match="below the file"):
        _pull(evil, tmp_path)


def test_pagination_link_to_another_origin_is_not_followed(evil: _Server, tmp_path: Path) -> None:
    evil.scenario.update(
        tree=[[_entry("a.bin")], [_entry("b.bin")]], next="http://203.0.113.9:80/steal?page=2"
    )
    with pytest.raises(HubResponseError, match="another origin"):
        _pull(evil, tmp_path)


def test_pagination_on_the_same_origin_works_and_keeps_the_token_there(evil: _Server, tmp_path: Path) -> None:
    evil.scenario.update(
        tree=[[_entry("a.bin")], [_entry("b.bin")]], next=f"{_url(evil)}/api/models/evil/x/tree/{SHA}?page=2"
    )
    result = _pull(evil, tmp_path)
    assert [f.path for f in result.files] == ["a.bin", "b.bin"]
    assert (result.snapshot / "b.bin").read_bytes() == DATA
    assert {auth for _, _, auth in evil.seen} == {"Bearer secret"}


@pytest.mark.parametrize(
    ("body", "error"),
    [(DATA + b"extra", HubResponseError), (DATA[:-1] + b"X", IntegrityError), (DATA[:100], HubResponseError)],
    ids=["too-long", "wrong-hash", "too-short"],
)
def test_wrong_content_never_enters_the_cache(
    evil: _Server, tmp_path: Path, body: bytes, error: type[Exception]
) -> None:
    evil.scenario.update(tree=[[_entry("m.bin")]], body=body)
    with pytest.raises(error):
        _pull(evil, tmp_path)
    cache = RepoCache(tmp_path / "cache", parse_repo_ref("evil/x"))
    assert not cache.blob(SHA256).exists()
    assert not (cache.snapshot(SHA) / "m.bin").exists()


def test_dropped_connection_resumes_within_one_pull(evil: _Server, tmp_path: Path) -> None:
    evil.scenario.update(tree=[[_entry("m.bin")]], drop_first=True)
    result = _pull(evil, tmp_path)
    assert (result.snapshot / "m.bin").read_bytes() == DATA
    ranges = [r for p, r, _ in evil.seen if "/resolve/" in p]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) > 0


def test_server_ignoring_range_restarts_from_zero(evil: _Server, tmp_path: Path) -> None:
    evil.scenario.update(tree=[[_entry("m.bin")]], honour_range=False)
    cache = RepoCache(tmp_path / "cache", parse_repo_ref("evil/x"))
    cache.prepare()
    cache.incomplete(SHA256).write_bytes(DATA[:5000])
    result = _pull(evil, tmp_path)
    assert (result.snapshot / "m.bin").read_bytes() == DATA


@pytest.mark.parametrize(
    "info",
    [{}, {"sha": "main"}, {"sha": "ABC" * 13 + "A"}, ["not", "an", "object"]],
    ids=["none", "name", "upper", "list"],
)
def test_revision_answer_without_commit_id(evil: _Server, tmp_path: Path, info: Any) -> None:
    evil.scenario.update(info=info, tree=[[]])
    with pytest.raises(HubResponseError):
        _pull(evil, tmp_path)


@pytest.mark.parametrize(
    "tree",
    [
        b"<html>not json</html>",
        {"not": "a list"},
        [_entry("a", size=-1)],
        [_entry("a", size=True)],
        [_entry("a", oid="xyz")],
        [_entry("a", lfs={"oid": "short"})],
        [_entry("a", type="symlink")],
        [_entry("a"), _entry("a", oid="2" * 40)],
    ],
    ids=["html", "object", "negative-size", "bool-size", "bad-oid", "bad-lfs", "odd-type", "duplicate"],
)
def test_malformed_tree_listing(evil: _Server, tmp_path: Path, tree: Any) -> None:
    evil.scenario["tree"] = [tree]
    with pytest.raises(HubResponseError):
        _pull(evil, tmp_path)
    assert _all_files(tmp_path) == []


def test_server_error_is_typed(evil: _Server, tmp_path: Path) -> None:
    evil.scenario.update(tree=[[_entry("m.bin")]], status=500, body=b'{"error": "boom"}')
    with pytest.raises(HubResponseError, match="500"):
        _pull(evil, tmp_path)


@pytest.mark.parametrize(
    "location", ["http://203.0.113.9/api/models/evil/x/revision/main", "/api/models/evil/x/revision/main"]
)
def test_redirects_stay_on_the_hub_and_are_bounded(evil: _Server, tmp_path: Path, location: str) -> None:
    """Another origin is never followed (the token would go along); a loop on the hub ends after 5 hops."""
    evil.scenario.update(redirect=location, tree=[[]])
    with pytest.raises(HubResponseError, match="redirect"):
        _pull(evil, tmp_path)
    assert len(evil.seen) == (1 if location.startswith("http") else 6)
