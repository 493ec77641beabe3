"""Regression tests for the hub security review (one section per finding): each failed before its fix.

They talk raw HTTP to the live ``hub`` fixture (both backends), as the reviewer's reproductions did."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hub_testing import LiveHub


def _client(hub: LiveHub, token: str | None) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=hub.url, headers=headers, timeout=30)


@pytest.fixture
def alice(hub: LiveHub) -> Iterator[httpx.Client]:
    with _client(hub, hub.token) as c:
        yield c


@pytest.fixture
def bob(hub: LiveHub) -> Iterator[httpx.Client]:
    with _client(hub, hub.other_token) as c:
        yield c


def _create(c: httpx.Client, name: str, *, private: bool = False) -> None:
    c.post("/api/repos/create", json={"name": name, "private": private}).raise_for_status()


def _commit(c: httpx.Client, repo: str, *ops: dict[str, object]) -> httpx.Response:
    lines = [{"key": "header", "value": {"summary": "t"}}, *ops]
    body = "\n".join(json.dumps(line) for line in lines)
    return c.post(
        f"/api/models/{repo}/commit/main", content=body, headers={"content-type": "application/x-ndjson"}
    )


def _inline(path: str, data: bytes) -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode()}}


def _lfs(path: str, data: bytes) -> dict[str, object]:
    oid = hashlib.sha256(data).hexdigest()
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": len(data)}}


def _batch(c: httpx.Client, repo: str, data: bytes) -> dict[str, object]:
    oid = hashlib.sha256(data).hexdigest()
    resp = c.post(
        f"/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    )
    assert resp.status_code == 200, resp.text
    obj: dict[str, object] = resp.json()["objects"][0]
    return obj


def _upload(c: httpx.Client, repo: str, data: bytes, path: str) -> httpx.Response:
    obj = _batch(c, repo, data)
    if "actions" in obj:
        actions = obj["actions"]
        assert isinstance(actions, dict)
        assert httpx.put(actions["upload"]["href"], content=data).status_code == 200
    return _commit(c, repo, _lfs(path, data))


def _json_error(resp: httpx.Response, status: int) -> dict[str, str]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body: dict[str, str] = resp.json()
    assert body["error"] and body["code"]
    return body


# -- 1: shared blobs must not bypass gating or privacy; no existence oracle ---------------------------
def test_gated_blob_cannot_be_committed_by_another_repo(alice: httpx.Client, bob: httpx.Client) -> None:
    secret = b"GATED-WEIGHTS-" + b"g" * 64
    _create(alice, "f1-gated")
    assert _upload(alice, "alice/f1-gated", secret, "model.safetensors").status_code == 200
    alice.put("/api/models/alice/f1-gated/settings", json={"gated": "manual"}).raise_for_status()
    assert bob.get("/alice/f1-gated/resolve/main/model.safetensors").status_code == 403
    _create(bob, "f1-loot")
    assert "actions" in _batch(bob, "bob/f1-loot", secret)  # no oracle: bob is asked to upload
    oid = hashlib.sha256(secret).hexdigest()
    verify = bob.post("/api/lfs-verify/models/bob/f1-loot", json={"oid": oid, "size": len(secret)})
    _json_error(verify, 404)
    _json_error(_commit(bob, "bob/f1-loot", _lfs("stolen.safetensors", secret)), 422)
    _json_error(bob.get("/bob/f1-loot/resolve/main/stolen.safetensors"), 404)


def test_private_blob_is_no_oracle_and_owner_with_bytes_still_dedupes(
    alice: httpx.Client, bob: httpx.Client, hub: LiveHub
) -> None:
    data = b"PRIVATE-" + b"p" * 100
    _create(alice, "f1-private", private=True)
    assert _upload(alice, "alice/f1-private", data, "w.bin").status_code == 200
    _create(bob, "f1-guess")
    assert "actions" in _batch(bob, "bob/f1-guess", data)
    _json_error(_commit(bob, "bob/f1-guess", _lfs("w.bin", data)), 422)
    # bob really has the bytes: he uploads them (hash checked) and may then use the stored blob
    assert _upload(bob, "bob/f1-guess", data, "w.bin").status_code == 200
    assert bob.get("/bob/f1-guess/resolve/main/w.bin").content == data
    assert "actions" not in _batch(bob, "bob/f1-guess", data)
    # a forged PUT for the stored oid with other bytes is refused and grants nothing
    other = b"not the bytes" * 5
    _create(bob, "f1-forge")
    href = _batch(bob, "bob/f1-forge", data)["actions"]["upload"]["href"]  # type: ignore[index]
    assert httpx.put(href, content=other + b"x" * (len(data) - len(other))).status_code == 422
    _json_error(_commit(bob, "bob/f1-forge", _lfs("w.bin", data)), 422)
    assert (
        hub.registry.repo_blob(
            hub.registry.repos.get("model", "bob", "f1-forge", None).id, hashlib.sha256(data).hexdigest()
        )
        is None
    )


def test_upload_token_is_bound_to_its_repo(alice: httpx.Client, bob: httpx.Client) -> None:
    data = b"bound-" + b"b" * 64
    _create(bob, "f1-bound")
    href = _batch(bob, "bob/f1-bound", data)["actions"]["upload"]["href"]  # type: ignore[index]
    tampered = href.replace("token=", "token=").split("token=")
    expires, size, repo_id, mac = tampered[1].split(".")
    forged = f"{tampered[0]}token={expires}.{size}.{int(repo_id) + 1}.{mac}"
    assert httpx.put(forged, content=data).status_code == 403


# -- 2: YAML alias bomb in README front matter --------------------------------------------------------
def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "---\n" + "\n".join(lines) + "\n---\n# hi\n"


def test_yaml_alias_bomb_is_not_expanded_or_stored(bob: httpx.Client, hub: LiveHub) -> None:
    readme = _bomb(6).encode()  # 10**6 strings once expanded
    _create(bob, "f2-bomb")
    assert _commit(bob, "bob/f2-bomb", _inline("README.md", readme)).status_code == 200
    info = bob.get("/api/models/bob/f2-bomb", params={"cardData": "true"})
    assert info.status_code == 200 and len(info.content) < 10_000
    assert hub.registry.repos.get("model", "bob", "f2-bomb", None).card_data == {}
    check = bob.post("/api/validate-yaml", json={"content": readme.decode()})
    assert check.status_code == 400 and "alias" in check.json()["errors"][0]["message"]
    fine = bob.post("/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n"})
    assert fine.status_code == 200 and fine.json()["errors"] == []


def test_stored_card_data_is_capped(hub: LiveHub) -> None:
    from cairn.registry.cards import MAX_CARD_DATA_BYTES, CardInfo

    who = hub.registry.users.authenticate(hub.token)
    repo = hub.registry.repos.create(who, "model", "alice", "f2-cap", private=False)
    big = {"k": ["x" * 1000] * (MAX_CARD_DATA_BYTES // 1000 + 1)}
    hub.registry.repos.set_card_info(repo, CardInfo(tags=("t",), card_data=big))
    assert hub.registry.repos.get("model", "alice", "f2-cap", who).card_data == {}
    hub.registry.repos.set_card_info(repo, CardInfo(card_data={"license": "mit"}))
    assert hub.registry.repos.get("model", "alice", "f2-cap", who).card_data == {"license": "mit"}


# -- 3: deep paths; clash check per added path --------------------------------------------------------
def test_paths_deeper_than_the_limit_are_refused(alice: httpx.Client) -> None:
    from cairn.registry.names import MAX_PATH_DEPTH

    _create(alice, "f3-deep")
    ok = "/".join(["d"] * MAX_PATH_DEPTH)
    assert _commit(alice, "alice/f3-deep", _inline(ok, b"1")).status_code == 200
    deep = "/".join(["d"] * (MAX_PATH_DEPTH + 1))
    body = _json_error(_commit(alice, "alice/f3-deep", _inline(deep, b"1")), 400)
    assert "deeper" in body["error"]


def test_file_folder_clashes_are_still_refused(alice: httpx.Client) -> None:
    _create(alice, "f3-clash")
    assert _commit(alice, "alice/f3-clash", _inline("a/b/c.txt", b"1")).status_code == 200
    _json_error(_commit(alice, "alice/f3-clash", _inline("a/b", b"2")), 409)  # file over a folder
    _json_error(_commit(alice, "alice/f3-clash", _inline("a/b/c.txt/d", b"3")), 409)  # folder over a file
    _json_error(_commit(alice, "alice/f3-clash", _inline("x", b"4"), _inline("x/y", b"5")), 409)
    assert _commit(alice, "alice/f3-clash", _inline("a/b2", b"6"), _inline("a/bc/d", b"7")).status_code == 200


def test_clash_check_scales_with_the_change_not_the_tree(hub: LiveHub) -> None:
    """Counts calls instead of timing: before the fix every commit rebuilt every folder of the tree."""
    from cairn.registry import AddFile
    from cairn.registry import commits as commits_module

    who = hub.registry.users.authenticate(hub.token)
    repo = hub.registry.repos.create(who, "model", "alice", "f3-scale", private=False)
    blob = hub.registry.ingest_bytes(b"z", repo_id=repo.id)
    deep = "/".join(["s"] * 60)
    ops = [AddFile(f"{deep}/f{i}", blob.sha256) for i in range(300)]
    hub.registry.commit(repo, "main", ops, title="many", author="alice")
    seen: list[int] = []
    real = commits_module._check_clashes

    def spy(tree: dict[str, object], added: set[str]) -> None:
        seen.append(len(added))
        real(tree, added)  # type: ignore[arg-type]

    commits_module._check_clashes = spy  # type: ignore[assignment]
    try:
        hub.registry.commit(repo, "main", [AddFile("one.txt", blob.sha256)], title="one", author="alice")
    finally:
        commits_module._check_clashes = real
    assert seen == [1]


# -- 4: paths-info amplification ----------------------------------------------------------------------
def test_paths_info_dedupes_and_answers_folders_from_one_read(alice: httpx.Client, hub: LiveHub) -> None:
    _create(alice, "f4-paths")
    assert (
        _commit(
            alice, "alice/f4-paths", _inline("dir/a.txt", b"a"), _inline("dir/sub/b.txt", b"b")
        ).status_code
        == 200
    )
    calls: list[str] = []
    real = hub.registry.commits.files

    def spy(commit_id: str, prefix: str = "") -> object:
        calls.append(prefix)
        return real(commit_id, prefix)

    hub.registry.commits.files = spy  # type: ignore[method-assign]
    try:
        resp = alice.post(
            "/api/models/alice/f4-paths/paths-info/main",
            json={"paths": ["dir"] * 5000 + ["dir/sub", "dir/a.txt", "nope", "nope/deeper"]},
        )
    finally:
        del hub.registry.commits.files
    assert resp.status_code == 200, resp.text
    got = {(item["type"], item["path"]) for item in resp.json()}
    assert got == {("directory", "dir"), ("directory", "dir/sub"), ("file", "dir/a.txt")}
    assert len(resp.json()) == 3 and len(calls) == 1
    tree = {i["path"]: i["oid"] for i in alice.get("/api/models/alice/f4-paths/tree/main/dir").json()}
    assert {i["path"]: i["oid"] for i in resp.json() if i["type"] == "directory"}["dir/sub"] == tree[
        "dir/sub"
    ]


# -- 5: control characters in header values; the catch-all answers every path ------------------------
def _raw_get(hub: LiveHub, target: str) -> bytes:
    import socket

    url = httpx.URL(hub.url)
    assert url.host is not None and url.port is not None
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while data := sock.recv(65536):
            out += data
    return out


@pytest.mark.parametrize("rev", ["a%0Db", "a%0DX-Injected:%20yes", "a%0Ab", "a%7Fb"])
def test_control_characters_in_a_revision_give_a_json_error(
    hub: LiveHub, alice: httpx.Client, rev: str
) -> None:
    _create(alice, f"f5-{rev[2:5].lower()}")
    for path in [
        "/api/models/alice/{}/revision/{}",
        "/alice/{}/resolve/{}/x",
        "/api/models/alice/{}/tree/{}",
    ]:
        answer = _raw_get(hub, path.format(f"f5-{rev[2:5].lower()}", rev))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404"), head
        assert b"\r\nx-injected" not in head.lower()  # no header line of its own
        assert b"x-error-code: RevisionNotFound" in head
        assert json.loads(body)["code"] == "revision_not_found"


def test_unmatched_paths_and_methods_get_the_json_shape(hub: LiveHub) -> None:
    head, _, body = _raw_get(hub, "/no%0Awhere").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and json.loads(body)["code"] == "route_not_found"
    resp = httpx.request("TRACE", f"{hub.url}/api/models")
    _json_error(resp, 404)


def test_header_values_are_made_safe() -> None:
    from cairn.hub.errors import header_safe

    assert header_safe("a\rb\nc\x00d\x7fé") == "a?b?c?d??"
    assert len(header_safe("x" * 2000)) == 500


# -- 6: active content served as plain text, never executed -------------------------------------------
@pytest.mark.parametrize("name", ["page.html", "img.svg", "feed.xml", "app.js", "doc.xhtml", "style.css"])
def test_active_content_is_served_inert(alice: httpx.Client, name: str) -> None:
    repo = "f6-" + name.replace(".", "-")
    _create(alice, repo)
    payload = b"<script>alert(document.domain)</script>"
    assert _commit(alice, f"alice/{repo}", _inline(name, payload)).status_code == 200
    resp = alice.get(f"/alice/{repo}/resolve/main/{name}")
    assert resp.status_code == 200 and resp.content == payload
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["content-security-policy"] == "sandbox"


def test_passive_types_keep_their_content_type() -> None:
    from cairn.hub.download import content_type

    assert content_type("config.json") == "application/json"
    assert content_type("cat.png") == "image/png"
    assert content_type("w.safetensors") == "application/octet-stream"
    assert content_type("PAGE.HTM").startswith("text/plain")


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("mail.eml", "application/octet-stream"),  # message/rfc822: a type browsers render
        ("paper.pdf", "application/octet-stream"),  # a viewer with scripting
        ("sheet.xlsx", "application/octet-stream"),
        ("notes.rtf", "application/octet-stream"),
        ("data.csv", "text/csv"),
        ("page.xhtml", "text/plain; charset=utf-8"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_types_off_the_allowlist_are_never_served_as_themselves(name: str, served: str) -> None:
    """Only types a browser merely displays or saves keep their guessed type; the host's mime database
    (which may map .eml, .pdf, Office or any new extension) cannot widen what is served inline."""
    from cairn.hub.download import content_type

    assert content_type(name) == served


# -- 7: hostile integers, cursors and deep JSON are a typed 400 ---------------------------------------
@pytest.mark.parametrize("limit", ["%C2%B2", "--5", "1" * 30, "5e3", " 5"])
def test_bad_integers_are_400(hub: LiveHub, limit: str) -> None:
    _json_error(httpx.get(f"{hub.url}/api/models?limit={limit}"), 400)


def test_huge_and_malformed_cursors_are_400(hub: LiveHub) -> None:
    for value in ["100000000000000000000", str(1 << 62), "-1", "[" * 5000]:
        cursor = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        _json_error(httpx.get(f"{hub.url}/api/models", params={"cursor": cursor}), 400)
    assert httpx.get(f"{hub.url}/api/models", params={"limit": "-3"}).status_code == 200


def test_deeply_nested_json_is_400(hub: LiveHub, alice: httpx.Client) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    json_type = {"content-type": "application/json"}
    _json_error(httpx.post(f"{hub.url}/api/validate-yaml", content=deep, headers=json_type), 400)
    _json_error(alice.post("/api/repos/create", content=deep, headers=json_type), 400)
    _create(alice, "f7-deep")
    body = json.dumps({"key": "header", "value": {"summary": "x"}}) + "\n" + deep
    _json_error(alice.post("/api/models/alice/f7-deep/commit/main", content=body), 400)
    _json_error(alice.post("/api/models/alice/f7-deep/paths-info/main", content=deep, headers=json_type), 400)


# -- 8: moved repo redirects built from parsed segments -----------------------------------------------
def test_moved_repo_redirect_with_encoded_names(alice: httpx.Client, hub: LiveHub) -> None:
    _create(alice, "f8-old")
    moved = alice.post("/api/repos/move", json={"fromRepo": "alice/f8-old", "toRepo": "alice/f8-new"})
    assert moved.status_code == 200
    cases = {
        "/api/models/%61lice/f8-old": "/api/models/alice/f8-new",
        "/api/models/alice/f8%2dold?x=1": "/api/models/alice/f8-new?x=1",
        "/%61lice/f8-old/resolve/main/.gitattributes": "/alice/f8-new/resolve/main/.gitattributes",
        "/%61lice/f8-old/resolve/main/%61lice/f8-old": "/alice/f8-new/resolve/main/%61lice/f8-old",
    }
    with httpx.Client(base_url=hub.url) as anon:
        for old, new in cases.items():
            resp = anon.get(old)
            assert resp.status_code == 307 and resp.headers["location"] == new, (old, resp.headers)
        final = anon.get("/api/models/%61lice/f8-old", follow_redirects=True)
        assert final.status_code == 200 and final.json()["id"] == "alice/f8-new"


# -- 1 (migration): existing trees are backfilled into repo_objects -----------------------------------
def test_migration_backfills_repo_objects_from_existing_trees(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import insert, select

    from cairn.meta import Database, commits, files, repo_objects, repos
    from cairn.meta.migrate import _config, migrate

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        command.upgrade(_config(db), "0004")  # type: ignore[arg-type]
        with db.write() as conn:
            for rid in (1, 2):
                conn.execute(
                    insert(repos).values(
                        id=rid, type="model", namespace="a", name=f"r{rid}", created_at=0, last_modified=0
                    )
                )
                conn.execute(
                    insert(commits).values(id=f"{rid}" * 40, repo_id=rid, title="t", author="a", created_at=0)
                )
            rows = [("1" * 40, "x", "a" * 64), ("1" * 40, "y", "a" * 64), ("2" * 40, "z", "b" * 64)]
            for commit_id, path, sha in rows:
                conn.execute(
                    insert(files).values(
                        commit_id=commit_id,
                        path=path,
                        sha256=sha,
                        git_sha1="0" * 40,
                        size=1,
                        lfs=False,
                        last_commit=commit_id,
                    )
                )
        migrate(db)
        with db.read() as conn:
            got = sorted(tuple(r) for r in conn.execute(select(repo_objects)))
        assert got == [(1, "a" * 64), (2, "b" * 64)]
    finally:
        db.dispose()


def test_multipart_upload_of_a_stored_blob_is_verified_and_bound(
    alice: httpx.Client, bob: httpx.Client, hub: LiveHub
) -> None:
    chunk = 256 * 1024  # the hub fixture's multipart_chunk_bytes
    data = bytes(range(256)) * (chunk // 256) + b"multipart-tail"
    _create(alice, "f1-mp-a")
    assert _upload(alice, "alice/f1-mp-a", data, "w.bin").status_code == 200
    _create(bob, "f1-mp-b")
    oid = hashlib.sha256(data).hexdigest()
    batch = bob.post(
        "/bob/f1-mp-b.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["multipart"],
            "objects": [{"oid": oid, "size": len(data)}],
        },
    )
    action = batch.json()["objects"][0]["actions"]["upload"]
    parts = [data[:chunk], b"\0" * (len(data) - chunk)]  # right sizes, wrong bytes
    for n, part in enumerate(parts, 1):
        assert httpx.put(action["header"][str(n)], content=part).status_code == 200
    done = {"oid": oid, "parts": [{"partNumber": 1}, {"partNumber": 2}]}
    _json_error(httpx.post(action["href"], json=done), 422)  # a stored blob does not excuse the hash
    _json_error(_commit(bob, "bob/f1-mp-b", _lfs("w.bin", data)), 422)
    for n, part in enumerate([data[:chunk], data[chunk:]], 1):
        assert httpx.put(action["header"][str(n)], content=part).status_code == 200
    assert httpx.post(action["href"], json=done).status_code == 200
    assert httpx.post(action["href"], json=done).status_code == 200  # a retried completion
    assert _commit(bob, "bob/f1-mp-b", _lfs("w.bin", data)).status_code == 200
    assert bob.get("/bob/f1-mp-b/resolve/main/w.bin").content == data
