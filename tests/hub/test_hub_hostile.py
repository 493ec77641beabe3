"""Raw HTTP against the hub: the wire details the client depends on, and hostile or malformed input on
every kind of endpoint. Every error must have the one JSON shape and leave nothing changed."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
from hub_testing import LiveHub


def _err(resp: httpx.Response, status: int, hf_code: str | None = None) -> dict[str, str]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert isinstance(body["error"], str) and body["error"] and isinstance(body["code"], str)
    if hf_code is not None:
        assert resp.headers["x-error-code"] == hf_code
    return body


@pytest.fixture(scope="module")
def repo(hub: LiveHub) -> str:
    with httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {hub.token}"}) as c:
        c.post("/api/repos/create", json={"name": "hostile", "organization": "alice"}).raise_for_status()
        body = (
            json.dumps({"key": "header", "value": {"summary": "seed"}})
            + "\n"
            + json.dumps(
                {
                    "key": "file",
                    "value": {
                        "path": "ten.txt",
                        "content": base64.b64encode(b"0123456789").decode(),
                        "encoding": "base64",
                    },
                }
            )
            + "\n"
        )
        c.post(
            "/api/models/alice/hostile/commit/main",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        ).raise_for_status()
    return "alice/hostile"


@pytest.fixture
def client(hub: LiveHub) -> httpx.Client:
    with httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {hub.token}"}) as c:
        yield c  # type: ignore[misc]


def _head(client: httpx.Client) -> str:
    return str(client.get("/api/models/alice/hostile").json()["sha"])


def test_resolve_headers_and_ranges(client: httpx.Client, repo: str) -> None:
    sha = _head(client)
    head = client.head(f"/{repo}/resolve/main/ten.txt")
    assert head.status_code == 200 and head.headers["x-repo-commit"] == sha
    assert head.headers["etag"] == '"' + hashlib.sha1(b"blob 10\x000123456789").hexdigest() + '"'
    assert head.headers["content-length"] == "10" and "location" not in head.headers
    assert not any(h.startswith("x-xet") for h in head.headers)
    part = client.get(f"/{repo}/resolve/{sha}/ten.txt", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == b"2345"
    assert part.headers["content-range"] == "bytes 2-5/10"
    assert client.get(f"/{repo}/resolve/main/ten.txt", headers={"Range": "bytes=7-"}).content == b"789"
    assert client.get(f"/{repo}/resolve/main/ten.txt", headers={"Range": "bytes=-3"}).content == b"789"
    assert (
        client.get(f"/{repo}/resolve/main/ten.txt", headers={"Range": "bytes=0-100000"}).content
        == b"0123456789"
    )
    bad = client.get(f"/{repo}/resolve/main/ten.txt", headers={"Range": "bytes=10-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == "bytes */10"
    client.post(f"/api/models/{repo}/branch/dev%2Fx", json={}).raise_for_status()
    for rev in ("dev%2Fx", "dev/x"):  # encoded as clients send it, and unencoded as browsers do
        assert client.get(f"/{repo}/resolve/{rev}/ten.txt").content == b"0123456789"
    assert client.delete(f"/api/models/{repo}/branch/dev%2Fx").status_code == 200
    missing = client.head(f"/{repo}/resolve/main/nope.txt")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"
    assert missing.headers["x-repo-commit"] == sha
    _err(client.get(f"/{repo}/resolve/no-such-rev/ten.txt"), 404, "RevisionNotFound")
    _err(client.get("/alice/nothing-here/resolve/main/ten.txt"), 404, "RepoNotFound")
    _err(httpx.get(f"{client.base_url}/alice/nothing-here/resolve/main/ten.txt"), 401, "RepoNotFound")


def test_path_traversal_and_odd_paths_are_rejected(client: httpx.Client, repo: str) -> None:
    before = _head(client)
    for url_path in ("..%2F..%2Fetc%2Fpasswd", "a%00b", "%2Fetc%2Fpasswd", "a%5Cb", "%ff%fe"):
        _err(client.get(f"/{repo}/resolve/main/{url_path}"), 400)
    for path in ("../escape.txt", "/abs.txt", "a\x00b", "sub/../../x", ".git/config", "a\\b"):
        body = (
            json.dumps({"key": "header", "value": {"summary": "evil"}})
            + "\n"
            + json.dumps({"key": "file", "value": {"path": path, "content": "eA==", "encoding": "base64"}})
            + "\n"
        )
        _err(client.post(f"/api/models/{repo}/commit/main", content=body), 400)
        _err(
            client.post(
                f"/api/models/{repo}/preupload/main",
                json={"files": [{"path": path, "size": 1, "sample": ""}]},
            ),
            400,
        )
    assert _head(client) == before


def test_malformed_bodies(client: httpx.Client, repo: str, hub: LiveHub) -> None:
    before = _head(client)
    commit = f"/api/models/{repo}/commit/main"
    _err(client.post("/api/repos/create", content=b"{not json"), 400)
    _err(client.post("/api/repos/create", json=["a", "list"]), 400)
    _err(client.post(commit, content=b"{broken\n"), 400)
    _err(client.post(commit, content=b'{"key": "file", "value": {"path": "a", "content": "eA=="}}\n'), 400)
    _err(
        client.post(
            commit,
            content=b'{"key":"header","value":{"summary":"s"}}\n{"key":"file","value":{"path":"a","content":"!!notb64"}}\n',
        ),
        400,
    )
    _err(
        client.post(
            commit,
            content=b'{"key":"header","value":{"summary":"s"}}\n{"key":"lfsFile","value":{"path":"w.bin","oid":"'
            + b"a" * 64
            + b'","size":5}}\n',
        ),
        422,
    )
    _err(
        client.post(
            commit,
            content=b'{"key":"header","value":{"summary":"s"}}\n{"key":"mystery","value":{"path":"a"}}\n',
        ),
        400,
    )
    _err(
        client.post(
            commit, content=b'{"key":"header","value":{"summary":"s","parentCommit":"' + b"0" * 40 + b'"}}\n'
        ),
        412,
    )
    _err(client.post(f"/api/models/{repo}/preupload/main", json={"files": "nope"}), 400)
    _err(client.post(f"/{repo}.git/info/lfs/objects/batch", content=b"[]"), 400)
    _err(client.post("/api/repos/create", content=b"x" * (17 << 20)), 413)
    _err(client.get("/api/models", params={"limit": "many"}), 400)
    _err(client.get("/api/models", params={"cursor": "%%%"}), 400)
    _err(client.get("/api/no/such/route/here"), 404)
    _err(client.get(f"/api/models/{repo}/xet-write-token/main"), 404)
    assert client.post("/api/validate-yaml", json={"content": "---\n: [\n---\n"}).status_code == 400
    assert client.post("/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n"}).json() == {
        "errors": [],
        "warnings": [],
    }
    tag = client.post(f"/api/models/{repo}/tag/main", json={"tag": "../../x"})
    _err(tag, 400)
    _err(client.post(f"/api/models/{repo}/branch/{'a' * 40}", json={}), 400)
    assert _head(client) == before
    _err(httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": "Bearer " + "x" * 4000}), 401)
    _err(httpx.get(f"{hub.url}/api/models", headers={"x-padding": "a" * 100_000}), 431)
    _err(httpx.post(f"{hub.url}/api/repos/create", json={"name": "anon"}), 401)


def test_lfs_upload_checks_hash_size_and_signature(client: httpx.Client, repo: str, hub: LiveHub) -> None:
    data = b"real content" * 100
    oid = hashlib.sha256(data).hexdigest()
    batch = client.post(
        f"/{repo}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic", "xet"],
            "objects": [{"oid": oid, "size": len(data)}, {"oid": "zz", "size": 1}],
        },
    )
    assert batch.status_code == 200 and batch.json()["transfer"] == "basic"
    good, bad = batch.json()["objects"]
    assert bad["error"]["code"] == 422
    href = good["actions"]["upload"]["href"]
    assert href.startswith(hub.url)
    wrong = b"evil content" * 100
    _err(httpx.put(href, content=wrong), 422)
    _err(httpx.put(href, content=data[:-1]), 422)
    _err(httpx.put(href.replace("token=", "token=1"), content=data), 403)
    _err(httpx.put(href.replace(oid, hashlib.sha256(wrong).hexdigest()), content=wrong), 403)
    verify = good["actions"]["verify"]["href"]
    _err(client.post(verify, json={"oid": oid, "size": len(data)}), 404)
    assert hub.registry.blob(oid) is None
    assert httpx.put(href, content=data).status_code == 200
    assert httpx.put(href, content=data).status_code == 200  # idempotent retry
    assert client.post(verify, json={"oid": oid, "size": len(data)}).status_code == 200
    again = client.post(
        f"/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    )
    assert "actions" not in again.json()["objects"][0]  # already stored: nothing to upload


def test_disconnect_mid_upload_leaves_nothing(client: httpx.Client, repo: str, hub: LiveHub) -> None:
    import socket
    import time

    data = b"partial" * 50_000
    oid = hashlib.sha256(data).hexdigest()
    batch = client.post(
        f"/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    )
    href = httpx.URL(batch.json()["objects"][0]["actions"]["upload"]["href"])
    staging = hub.registry.staging_dir()
    before = set(staging.iterdir())
    with socket.create_connection((href.host, href.port)) as sock:
        target = href.raw_path.decode()
        sock.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data[:100_000]
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while set(staging.iterdir()) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(staging.iterdir()) == before
    assert hub.registry.blob(oid) is None and not hub.registry.store.exists(oid)


def test_read_only_token_cannot_write(hub: LiveHub, repo: str) -> None:
    read = hub.registry.users.create_token("alice", role="read")
    with httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {read}"}) as c:
        assert c.get(f"/api/models/{repo}").status_code == 200
        _err(c.post("/api/repos/create", json={"name": "ro"}), 403)
        body = b'{"key":"header","value":{"summary":"s"}}\n'
        _err(c.post(f"/api/models/{repo}/commit/main", content=body), 403)
        _err(c.post(f"/{repo}.git/info/lfs/objects/batch", json={"operation": "upload", "objects": []}), 403)


def test_multipart_upload_checks_parts(client: httpx.Client, repo: str, hub: LiveHub) -> None:
    chunk = 256 * 1024
    data = bytes(range(256)) * (chunk * 2 // 256) + b"tail"
    oid = hashlib.sha256(data).hexdigest()
    batch = client.post(
        f"/{repo}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "objects": [{"oid": oid, "size": len(data)}],
        },
    )
    action = batch.json()["objects"][0]["actions"]["upload"]
    header = action["header"]
    assert header["chunk_size"] == str(chunk) and sorted(k for k in header if k.isdigit()) == ["1", "2", "3"]
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    _err(httpx.put(header["1"], content=parts[0][:-1]), 422)  # short part
    _err(httpx.put(header["1"].replace("part=1", "part=9"), content=parts[0]), 400)
    etags = []
    for n, part in enumerate(parts, 1):
        resp = httpx.put(header[str(n)], content=part)
        assert resp.status_code == 200 and resp.headers["etag"]
        etags.append(resp.headers["etag"])
    completion = {"oid": oid, "parts": [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]}
    _err(httpx.post(action["href"], json={"oid": oid, "parts": completion["parts"][:2]}), 400)
    assert hub.registry.blob(oid) is None
    assert httpx.post(action["href"], json=completion).status_code == 200
    assert hub.registry.blob(oid) is not None and b"".join(hub.registry.iter_blob(oid)) == data


def test_absolute_urls_follow_the_client_origin(client: httpx.Client, hub: LiveHub) -> None:
    proxied = {"x-forwarded-host": "hub.example.test:8443", "x-forwarded-proto": "https"}
    made = client.post("/api/repos/create", json={"name": "behind-proxy"}, headers=proxied)
    assert made.json()["url"] == "https://hub.example.test:8443/alice/behind-proxy"
    plain = client.post("/api/repos/create", json={"name": "behind-proxy"})
    assert plain.status_code == 409 and plain.json()["url"] == f"{hub.url}/alice/behind-proxy"


def test_preupload_modes_and_xet_warning(client: httpx.Client, repo: str) -> None:
    files = {
        "files": [
            {"path": "w.safetensors", "size": 1000, "sample": ""},
            {"path": "notes.txt", "size": 10, "sample": base64.b64encode(b"plain text").decode()},
            {"path": "blob.dat", "size": 10, "sample": base64.b64encode(b"\0binary\0").decode()},
            {"path": "ten.txt", "size": 10, "sample": ""},
            {"path": "empty.bin", "size": 0, "sample": ""},
        ]
    }
    url = f"/api/models/{repo}/preupload/main"
    new = client.post(url, json=files, headers={"user-agent": "unknown/None; hf_hub/2.4.0; python/3.11"})
    modes = {f["path"]: f["uploadMode"] for f in new.json()["files"]}
    assert modes == {
        "w.safetensors": "lfs",
        "notes.txt": "regular",
        "blob.dat": "lfs",
        "ten.txt": "regular",
        "empty.bin": "regular",
    }
    assert all(f["shouldIgnore"] is False for f in new.json()["files"])
    assert new.headers["x-hf-warning"].startswith("xet;")  # this hub's regular_upload_cap is 0 in tests
    by_path = {f["path"]: f for f in new.json()["files"]}
    assert by_path["ten.txt"]["oid"] == hashlib.sha1(b"blob 10\x000123456789").hexdigest()
    assert new.json()["commitOid"] == _head(client)
    old = client.post(url, json=files, headers={"user-agent": "unknown/None; hf_hub/0.36.2; python/3.11"})
    assert "x-hf-warning" not in old.headers
    _err(client.post(f"/api/models/{repo}/preupload/{_head(client)}", json=files), 400)  # not a branch
