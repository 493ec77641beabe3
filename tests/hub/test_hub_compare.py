"""What a commit changed and what changed between two revisions: the commit page, the compare page and
``GET /api/models/{repo}/compare/{base}...{head}``, from file trees and upload-time weight fingerprints."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from safetensors.numpy import save

from cairn.cli.main import main
from cairn.governance.fingerprint import Fingerprint, TensorPrint
from cairn.governance.fingerprint_diff import diff_fingerprints
from cairn.registry.compare import diff_trees
from cairn.registry.models import FileEntry

RNG = np.random.default_rng(11)
A = RNG.standard_normal((64, 32)).astype(np.float32)
B = RNG.standard_normal((64, 32)).astype(np.float32)
C = RNG.standard_normal((32,)).astype(np.float32)


def _add(path: str, data: bytes) -> CommitOperationAdd:
    return CommitOperationAdd(path_in_repo=path, path_or_fileobj=io.BytesIO(data))


def _two_commits(api: HfApi, repo: str) -> tuple[str, str]:
    """A first commit with weights a, b, c and a README; a second that fine-tunes b, casts c to F16,
    adds d, edits the README, adds a note and deletes config.json."""
    api.create_repo(repo)
    first = api.create_commit(
        repo,
        [
            _add("model.safetensors", save({"a": A, "b": B, "c": C})),
            _add("README.md", b"# model\n\nline one\nline two\n"),
            _add("config.json", b'{"model_type": "toy"}'),
        ],
        commit_message="first",
    ).oid
    tuned = B + RNG.standard_normal(B.shape).astype(np.float32) * 0.01
    second = api.create_commit(
        repo,
        [
            _add("model.safetensors", save({"a": A, "b": tuned, "c": C.astype(np.float16), "d": C})),
            _add("README.md", b"# model\n\nline one\nline 2 <script>alert(1)</script>\n"),
            _add("notes.txt", b"new notes\n"),
            CommitOperationDelete(path_in_repo="config.json"),
        ],
        commit_message="tune <b>",
        commit_description="longer message\nwith two lines",
    ).oid
    return first, second


def test_commit_page_shows_files_lines_and_tensors(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    first, second = _two_commits(api, "alice/cmp-commit")
    r = httpx.get(f"{hub.url}/alice/cmp-commit/commit/{second}")
    assert r.status_code == 200
    page = r.text
    assert "tune &lt;b&gt;" in page and "<b>" not in page.split("<body>")[1].split("tune")[0]
    assert "with two lines" in page and f'href="/alice/cmp-commit/commit/{first}"' in page
    assert "1 added · 1 removed · 2 modified" in page  # notes.txt; config.json; README and weights
    # the README's line diff, escaped, with the changed lines marked
    assert "<del>-line two</del>" in page
    assert "<ins>+line 2 &lt;script&gt;alert(1)&lt;/script&gt;</ins>" in page
    assert "<script>alert" not in page
    # weights: a identical, b changed (similar), c retyped to F16, d added
    assert "1 identical tensor " in page and "1 changed" in page and "1 new dtype or shape" in page
    assert "1 added · 0 removed" in page
    assert ">partial-update<" in page  # a is untouched, b moved a little
    assert "<code>c</code></td><td>retyped</td><td>F32 [32]</td><td>F16 [32]</td>" in page
    # the browse link still shows the whole tree at that commit
    tree = httpx.get(f"{hub.url}/alice/cmp-commit/tree/{second}").text
    assert "notes.txt" in tree and "config.json" not in tree


def test_compare_api_and_page_between_revisions(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    first, second = _two_commits(api, "alice/cmp-api")
    api.create_tag("alice/cmp-api", tag="v1", revision=first)
    r = httpx.get(f"{hub.url}/api/models/alice/cmp-api/compare/v1...main")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["base"], body["head"]) == (first, second)
    assert body["counts"] == {"added": 1, "removed": 1, "modified": 2, "unchanged": 1}
    files = {f["path"]: f["status"] for f in body["files"]}
    assert files == {
        "config.json": "removed",
        "notes.txt": "added",
        "README.md": "modified",
        "model.safetensors": "modified",
    }
    tensors = body["tensors"]
    assert tensors["counts"] == {"identical": 1, "changed": 1, "retyped": 1, "added": 1, "removed": 0}
    assert tensors["identicalBytes"] == A.nbytes
    changed = {c["name"]: c for c in tensors["changes"]}
    assert changed["b"]["status"] == "changed" and changed["b"]["similarity"] > 0.99
    assert changed["c"]["old"]["dtype"] == "F32" and changed["c"]["new"]["dtype"] == "F16"
    assert changed["d"]["status"] == "added" and changed["d"]["old"] is None
    # the other way round, removed and added swap
    back = httpx.get(f"{hub.url}/api/models/alice/cmp-api/compare/main...v1").json()
    assert back["counts"]["added"] == 1 and back["tensors"]["counts"]["removed"] == 1
    # the same revision against itself: nothing changed, the weights are a copy
    same = httpx.get(f"{hub.url}/api/models/alice/cmp-api/compare/main...{second}").json()
    assert same["files"] == [] and same["tensors"]["relation"] == "copy"
    page = httpx.get(f"{hub.url}/alice/cmp-api/compare/v1...main")
    assert page.status_code == 200 and "<del>-line two</del>" in page.text


def test_resharding_keeps_the_tensors_identical(hub: LiveHub) -> None:
    """Weights are compared over the revision's merged fingerprint: one file split into two shards is
    two files added and one removed, but every tensor is identical and the relation is a copy."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = "alice/cmp-shards"
    api.create_repo(repo)
    api.create_commit(repo, [_add("model.safetensors", save({"a": A, "b": B}))], commit_message="one")
    index = b'{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}'
    second = api.create_commit(
        repo,
        [
            _add("model-00001-of-00002.safetensors", save({"a": A})),
            _add("model-00002-of-00002.safetensors", save({"b": B})),
            _add("model.safetensors.index.json", index),
            CommitOperationDelete(path_in_repo="model.safetensors"),
        ],
        commit_message="shard",
    ).oid
    parent = api.list_repo_commits(repo)[1].commit_id
    body = httpx.get(f"{hub.url}/api/models/{repo}/compare/{parent}...{second}").json()
    assert body["counts"]["added"] == 3 and body["counts"]["removed"] == 1
    assert body["tensors"]["counts"] == {"identical": 2, "changed": 0, "retyped": 0, "added": 0, "removed": 0}
    assert body["tensors"]["relation"] == "copy"


def test_private_and_gated_repos_and_bad_requests(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    _, second = _two_commits(api, "alice/cmp-private")
    api.update_repo_settings("alice/cmp-private", private=True)
    for url in (
        f"{hub.url}/alice/cmp-private/commit/{second}",
        f"{hub.url}/alice/cmp-private/compare/main...main",
        f"{hub.url}/api/models/alice/cmp-private/compare/main...main",
    ):
        assert httpx.get(url).status_code in (401, 404)  # anonymous
        assert httpx.get(url, headers={"authorization": f"Bearer {hub.other_token}"}).status_code == 404
    owner = httpx.get(
        f"{hub.url}/api/models/alice/cmp-private/compare/main...main",
        headers={"authorization": f"Bearer {hub.token}"},
    )
    assert owner.status_code == 200

    _, gated_second = _two_commits(api, "alice/cmp-gated")
    api.update_repo_settings("alice/cmp-gated", gated="manual")
    bob = {"authorization": f"Bearer {hub.other_token}"}
    page = httpx.get(f"{hub.url}/alice/cmp-gated/commit/{gated_second}", headers=bob)
    assert page.status_code == 200
    assert "README.md" in page.text and "notes.txt" in page.text  # which files changed: visible
    assert "line 2" not in page.text and "Weights" not in page.text and "gated" in page.text
    api_r = httpx.get(f"{hub.url}/api/models/alice/cmp-gated/compare/main...main", headers=bob)
    assert api_r.status_code in (401, 403)

    for bad, status in (
        ("compare/main", 400),  # no "..."
        ("compare/main...", 400),
        ("compare/...main", 400),
        ("compare/main...nope", 404),
    ):
        r = httpx.get(
            f"{hub.url}/api/models/alice/cmp-gated/compare/{bad.split('/', 1)[1]}",
            headers={"authorization": f"Bearer {hub.token}"},
        )
        assert r.status_code == status, (bad, r.text)
    assert (
        httpx.get(
            f"{hub.url}/alice/cmp-gated/commit/{'0' * 40}", headers={"authorization": f"Bearer {hub.token}"}
        ).status_code
        == 404
    )


def test_first_commit_has_no_parent_and_big_or_binary_files_have_no_line_diff(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = "alice/cmp-binary"
    api.create_repo(repo)
    first_id = api.list_repo_commits(repo)[-1].commit_id  # the repo's initial commit (.gitattributes)
    page = httpx.get(f"{hub.url}/{repo}/commit/{first_id}")
    assert page.status_code == 200 and "first commit of the repo" in page.text
    big = b"line\n" * 60_000  # 300 KB of text: listed, not diffed
    second = api.create_commit(
        repo,
        [_add("big.txt", big), _add("blob.bin", b"\0\1\2" * 10), _add("small.txt", b"hello\n")],
        commit_message="files",
    ).oid
    page = httpx.get(f"{hub.url}/{repo}/commit/{second}").text
    assert "big.txt" in page and "blob.bin" in page
    assert "<ins>+hello</ins>" in page and page.count('<pre class="diff">') == 1


def _entry(path: str, sha: str) -> FileEntry:
    return FileEntry(path=path, sha256=sha * 64, git_sha1="0" * 40, size=1, lfs=False, last_commit="")


def test_tree_and_fingerprint_diffs_count_everything_but_list_a_bounded_number() -> None:
    from cairn.registry import compare

    old = [_entry(f"f{i}", "a") for i in range(compare.MAX_FILES + 5)]
    new = [_entry(f"f{i}", "b") for i in range(compare.MAX_FILES + 5)] + [_entry("x", "c")]
    changes, counts = diff_trees(old, new)
    assert counts == {"added": 1, "removed": 0, "modified": compare.MAX_FILES + 5, "unchanged": 0}
    assert len(changes) == compare.MAX_FILES and changes[0].path == "x"  # added before modified

    def tp(sha: str, dtype: str = "F32", sketch: tuple[float, ...] = (1.0, 2.0)) -> TensorPrint:
        return TensorPrint(dtype=dtype, shape=(2,), nbytes=8, sha256=sha, sketch=sketch)

    before = Fingerprint({"same": tp("1"), "moved": tp("2"), "gone": tp("3"), "cast": tp("4")})
    after = Fingerprint(
        {"same": tp("1"), "moved": tp("5", sketch=(2.0, -1.0)), "cast": tp("6", "F16"), "new": tp("7")}
    )
    found = diff_fingerprints(before, after)
    assert found.counts == {"identical": 1, "changed": 1, "retyped": 1, "added": 1, "removed": 1}
    assert [c.status for c in found.changes] == ["removed", "added", "retyped", "changed"]
    assert found.changes[-1].similarity == 0.0  # orthogonal sketches
    assert not found.truncated


def test_cairn_diff_between_hub_revisions_and_a_local_copy(
    hub: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cairn diff org/name@a org/name@b`` compares by the hub's fingerprints (nothing downloaded);
    a local folder against a hub revision fingerprints the local side; exit 0 same, 1 differs."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    first, _ = _two_commits(api, "alice/cmp-cli")
    api.create_tag("alice/cmp-cli", tag="v1", revision=first)
    hub_args = ["--endpoint", hub.url, "--token", hub.token]

    assert main(["diff", "alice/cmp-cli@v1", "alice/cmp-cli", "--json", *hub_args]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["counts"] == {"identical": 1, "changed": 1, "retyped": 1, "added": 1, "removed": 0}
    assert body["a"].startswith("alice/cmp-cli@v1 (" + first[:12])

    assert main(["diff", "alice/cmp-cli@v1", "alice/cmp-cli", *hub_args]) == 1
    text = capsys.readouterr().out
    assert "+ d" in text and "F32 [32] -> F16 [32]" in text and "partial-update" in text

    local = tmp_path / "copy"
    local.mkdir()
    (local / "model.safetensors").write_bytes(save({"a": A, "b": B, "c": C}))
    assert main(["diff", str(local), "alice/cmp-cli@v1", "--json", *hub_args]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["counts"]["identical"] == 3 and same["relation"] == "copy"

    assert main(["diff", "alice/cmp-cli@nope", "alice/cmp-cli", *hub_args]) == 2  # unknown revision
    assert main(["diff", "alice/no-such-repo", "alice/cmp-cli", *hub_args]) == 2
    capsys.readouterr()


def test_text_diff_input_is_bounded(hub: LiveHub) -> None:
    """A file of more lines than difflib is given is compared on its first lines, and says so."""
    from cairn.registry import compare

    n = compare.TEXT_INPUT_LINES + 10
    old = "".join(f"x{i}\n" for i in range(n)).encode()
    new = "".join(f"x{i}\n" if i % 2 else f"y{i}\n" for i in range(n)).encode()
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = "alice/cmp-long"
    api.create_repo(repo)
    api.create_commit(repo, [_add("long.txt", old)], commit_message="one")
    second = api.create_commit(repo, [_add("long.txt", new)], commit_message="two").oid
    page = httpx.get(f"{hub.url}/{repo}/commit/{second}").text
    assert f"only the first {compare.TEXT_INPUT_LINES} lines of each side were compared" in page
    assert "<ins>+y0</ins>" in page and f"y{compare.TEXT_INPUT_LINES + 8}" not in page


def test_pull_request_page_shows_what_it_changes(hub: LiveHub) -> None:
    """A pull request's page lists its changes against the commit it started from, tensors included,
    even after the target branch moved on; a plain discussion has no such section."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = "alice/cmp-pr"
    api.create_repo(repo)
    api.create_commit(repo, [_add("model.safetensors", save({"a": A, "b": B}))], commit_message="base")
    bob = HfApi(endpoint=hub.url, token=hub.other_token)
    tuned = B + np.float32(0.001)
    pr = bob.create_commit(
        repo,
        [_add("model.safetensors", save({"a": A, "b": tuned})), _add("NOTES.md", b"tuned b\n")],
        commit_message="tune b",
        create_pr=True,
    )
    assert pr.pr_num is not None
    api.create_commit(repo, [_add("other.txt", b"main moved on\n")], commit_message="unrelated")
    page = httpx.get(f"{hub.url}/{repo}/discussions/{pr.pr_num}").text
    assert 'href="#changes"' in page and 'id="changes"' in page
    changes = page.split('id="changes"')[1]
    assert "1 added · 0 removed · 1 modified" in changes  # NOTES.md; the weights; not other.txt
    assert "other.txt" not in changes and "<ins>+tuned b</ins>" in changes
    assert "1 identical tensor " in changes and "1 changed" in changes
    assert "<code>b</code></td><td>changed</td>" in changes

    plain = bob.create_discussion(repo, "A question about b")
    talk = httpx.get(f"{hub.url}/{repo}/discussions/{plain.num}").text
    assert 'id="changes"' not in talk
