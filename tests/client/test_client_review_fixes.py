"""Regression tests for the hub client review (concurrent pulls, token scope, revisions, temp names,
bounded and timed answers, typed errors), each against a real HTTP server that misbehaves on purpose."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import cairn.client
from cairn.cli.hubapi import HubClient, client_from_args
from cairn.cli.main import main
from cairn.client import HubResponseError, client_settings, parse_repo_ref, pull
from cairn.client import http as client_http
from cairn.client.cache import CacheError, RepoCache, place
from cairn.client.http import HubConnectionError, HubSession
from cairn.client.progress import silent
from cairn.client.push import _Local, _upload_lfs
from cairn.errors import UsageError

SHA = "2" * 40
DATA = bytes(range(256)) * 800  # 204800 bytes
SHA256 = hashlib.sha256(DATA).hexdigest()
GIT_SHA1 = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
REF = parse_repo_ref("evil/x")


def _entry(path: str) -> dict[str, Any]:
    return {"type": "file", "path": path, "size": len(DATA), "oid": GIT_SHA1, "lfs": {"oid": SHA256}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client hung up on purpose (a body past its limit)
            self.close_connection = True

    def stream(self, status: int, chunks: Iterator[bytes], total: int, pause: float = 0.0) -> None:
        """Send ``chunks`` under a Content-Length of ``total``, counting what the client accepted."""
        self.send_response(status)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                self.server.sent += len(chunk)
                time.sleep(pause)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        self.server.auth.append(self.headers.get("authorization"))
        parts = self.path.split("/")
        key = (
            parts[5]
            if self.path.startswith("/api/models/")
            else "resolve"
            if "/resolve/" in self.path
            else self.path
        )
        hook = self.server.hooks.get(key)
        if hook is not None:
            hook(self)
        elif "/revision/" in self.path:
            self.send(200, json.dumps({"sha": SHA}).encode())
        elif "/tree/" in self.path:
            self.send(200, json.dumps(self.server.tree).encode())
        else:
            rng = self.headers.get("range")
            start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
            status, headers = (
                (206, {"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"}) if rng else (200, {})
            )
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(DATA) - start))
            self.end_headers()
            for i in range(start, len(DATA), 20480):  # slowly, so that concurrent pulls overlap
                self.wfile.write(DATA[i : i + 20480])
                self.wfile.flush()
                time.sleep(self.server.pause)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send(200, self.server.post_answer, {"content-type": "application/vnd.git-lfs+json"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hooks: dict[str, Callable[[_Handler], None]] = {}
        self.tree: list[Any] = [_entry("m.bin")]
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        self.sent = 0
        self.pause = 0.0
        self.post_answer = b"{}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def evil() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _pull(server: _Server, cache: Path, **kw: Any) -> Any:
    return pull(REF, endpoint=server.url, token="secret", cache_dir=cache, **kw)


# 1. concurrent pulls ---------------------------------------------------------------------------


def test_concurrent_pulls_of_one_blob_share_it_without_corruption(evil: _Server, tmp_path: Path) -> None:
    evil.pause = 0.01
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(_pull(evil, tmp_path / "cache"))
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.03)  # the second starts while the first is mid-download
    for t in threads:
        t.join()
    assert errors == []
    cache = RepoCache(tmp_path / "cache", REF)
    assert cache.blob(SHA256).read_bytes() == DATA
    assert (cache.snapshot(SHA) / "m.bin").read_bytes() == DATA
    assert sorted(r.files[0].status for r in results) == ["cached", "downloaded"]
    assert (tmp_path / "cache" / ".locks" / "models--evil--x" / f"{SHA256}.lock").is_file()
    assert [p for p in cache.root.rglob("*") if "tmp" in p.name or p.name.endswith(".incomplete")] == []


def test_blob_finished_by_another_process_while_waiting_counts_as_cached(
    evil: _Server, tmp_path: Path
) -> None:
    cache = RepoCache(tmp_path / "cache", REF)
    cache.prepare()
    out: list[Any] = []
    with cache.lock(SHA256):  # as huggingface_hub's filelock would hold it
        worker = threading.Thread(target=lambda: out.append(_pull(evil, tmp_path / "cache")))
        worker.start()
        time.sleep(0.3)
        assert out == []  # waits for the lock
        cache.blob(SHA256).write_bytes(DATA)
    worker.join()
    assert out[0].files[0].status == "cached"
    assert not any("/resolve/" in p for p in evil.seen)


# 2. token scope --------------------------------------------------------------------------------


def test_stored_and_environment_tokens_never_go_to_the_default_endpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("hf_SECRET\n")
    env = {"HF_HOME": str(home), "HF_TOKEN": "hf_ENV"}
    assert client_settings(environ=env).token is None
    assert client_settings(environ={"HF_HOME": str(home)}).token is None
    with pytest.raises(UsageError, match="explicit"):
        client_settings(token="t", environ=env)
    assert client_settings(endpoint="http://hub:1", environ={"HF_HOME": str(home)}).token == "hf_SECRET"
    assert client_settings(environ={**env, "HF_ENDPOINT": "http://hub:1"}).token == "hf_ENV"


def test_cli_hub_commands_keep_the_token_off_default_endpoints_and_redirects(
    evil: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _Server()  # another origin (port), where a redirect points
    threading.Thread(target=other.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        evil.hooks["/api/whoami-v2"] = lambda h: h.send(302, b"", {"Location": other.url + "/api/whoami-v2"})
        other.hooks["/api/whoami-v2"] = lambda h: h.send(200, b'{"name": "x"}')
        client = HubClient(evil.url, "secret")
        assert client.call("GET", "/api/whoami-v2") == {"name": "x"}
        assert evil.auth == ["Bearer secret"] and other.auth == [None]
    finally:
        other.shutdown()
        other.server_close()
    monkeypatch.setenv("HF_TOKEN", "hf_ENV")
    args = argparse.Namespace(endpoint=None, token=None)
    assert client_from_args(args).token is None
    with pytest.raises(UsageError, match="explicit"):
        client_from_args(argparse.Namespace(endpoint=None, token="t"))
    assert client_from_args(argparse.Namespace(endpoint=evil.url, token=None)).token == "hf_ENV"


# 5. revisions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rev", [".", "a/.", "./a", "x/..", "main.lock", "v1.", "a/b.lock/c"])
def test_revisions_with_dot_segments_or_lock_suffix_are_refused(rev: str) -> None:
    with pytest.raises(UsageError):
        parse_repo_ref(f"evil/x@{rev}")


def test_a_ref_never_replaces_the_refs_folder(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path, REF)
    cache.write_ref("main", SHA)
    with pytest.raises(HubResponseError):
        cache.write_ref(".", SHA)
    assert cache.refs.is_dir() and cache.read_ref("main") == SHA
    assert cache.read_ref(".") is None


# 6. temp names ---------------------------------------------------------------------------------


def test_a_listed_file_named_like_a_temp_file_survives(evil: _Server, tmp_path: Path) -> None:
    evil.tree = [_entry("x"), _entry(".x.cairn-tmp"), _entry(".x.tmp")]
    result = _pull(evil, tmp_path / "cache", directory=tmp_path / "out")
    for root in (result.snapshot, tmp_path / "out"):
        assert sorted(p.name for p in root.iterdir()) == [".x.cairn-tmp", ".x.tmp", "x"]
        assert all(p.read_bytes() == DATA for p in root.iterdir())


# 3 and 4. bounded and timed answers ------------------------------------------------------------


def test_endless_error_body_is_cut_short(evil: _Server, tmp_path: Path) -> None:
    total = 32 << 20
    evil.hooks["resolve"] = lambda h: h.stream(500, (b"x" * (1 << 20) for _ in range(32)), total)
    with pytest.raises(HubResponseError, match="HTTP 500"):
        _pull(evil, tmp_path / "cache")
    assert evil.sent < total  # the client hung up instead of reading it all


def test_tree_listing_larger_than_the_limit_is_refused(
    evil: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_http, "MAX_JSON_BYTES", 1 << 20)
    body = b"[" + b" " * (3 << 20) + json.dumps(_entry("m.bin")).encode() + b"]"  # valid, too large
    evil.hooks["tree"] = lambda h: h.send(200, body)
    with pytest.raises(HubResponseError, match="larger than"):
        _pull(evil, tmp_path / "cache")
    assert not any("/resolve/" in p for p in evil.seen)


def test_dripping_json_answer_hits_the_deadline(evil: _Server) -> None:
    body = json.dumps({"sha": SHA}).encode()
    evil.hooks["revision"] = lambda h: h.stream(
        200, (body[i : i + 1] for i in range(len(body))), len(body), 0.05
    )
    with HubSession(evil.url, deadline=0.3) as session, pytest.raises(HubResponseError, match="longer than"):
        session.json("GET", "/api/models/evil/x/revision/main")


def test_dripping_download_fails_on_minimum_rate(
    evil: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil.hooks["resolve"] = lambda h: h.stream(200, (DATA[i : i + 1] for i in range(40)), len(DATA), 0.02)

    def slow_session(endpoint: str, token: str | None = None) -> HubSession:
        return HubSession(endpoint, token, min_rate=1 << 20, rate_window=0.2)

    monkeypatch.setattr(sys.modules["cairn.client.pull"], "HubSession", slow_session)
    with pytest.raises(HubConnectionError, match="slower than"):
        _pull(evil, tmp_path / "cache")


# 7. typed errors -------------------------------------------------------------------------------


def test_overlong_path_segment_is_refused_before_writing(evil: _Server, tmp_path: Path) -> None:
    evil.tree = [_entry("a/" + "n" * 300)]
    with pytest.raises(HubResponseError, match="unsafe path"):
        _pull(evil, tmp_path / "cache")
    assert not any("/resolve/" in p for p in evil.seen)


def test_deeply_nested_json_is_a_typed_error(evil: _Server, tmp_path: Path) -> None:
    evil.hooks["revision"] = lambda h: h.send(200, b"[" * 200_000)
    with pytest.raises(HubResponseError, match="not JSON"):
        _pull(evil, tmp_path / "cache")


def test_deeply_nested_error_body_is_a_typed_error(evil: _Server, tmp_path: Path) -> None:
    evil.hooks["revision"] = lambda h: h.send(500, b"[" * 60_000)
    with pytest.raises(HubResponseError, match="HTTP 500"):
        _pull(evil, tmp_path / "cache")


def test_os_error_while_placing_is_a_cache_error(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"abc")
    with pytest.raises(CacheError):
        place(source, tmp_path / ("n" * 300))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]


def test_lfs_batch_answer_with_non_list_objects_is_typed(evil: _Server, tmp_path: Path) -> None:
    evil.post_answer = b'{"transfer": "basic", "objects": 5}'
    f = tmp_path / "w.bin"
    f.write_bytes(DATA)
    local = _Local("w.bin", f, len(DATA), SHA256, GIT_SHA1)
    with HubSession(evil.url) as session, pytest.raises(HubResponseError, match="not a list"):
        _upload_lfs(session, REF, "main", [local], 1, silent())


def test_cli_maps_an_unexpected_exception_to_exit_2_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cairn.client, "pull", boom)
    status = main(
        ["pull", "evil/x", "--endpoint", "http://127.0.0.1:9", "--cache-dir", str(tmp_path), "--json"]
    )
    assert status == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "internal" and "RuntimeError" in error["message"]
