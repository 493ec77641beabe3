"""Pure parts of the client: references, the path check, settings precedence, globs, error mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.client import (
    RepoNotFoundError,
    RevisionNotFoundError,
    client_settings,
    looks_like_repo_ref,
    parse_repo_ref,
)
from cairn.client.cache import FileSpec
from cairn.client.errors import EntryNotFoundError, HubResponseError, error_from_response
from cairn.client.listing import select
from cairn.client.refs import check_repo_path, safe_join
from cairn.errors import ConflictError, LimitExceededError, NotFoundError, PermissionDeniedError, UsageError


@pytest.mark.parametrize(
    ("text", "repo", "rev"),
    [
        ("alice/m", "alice/m", None),
        ("alice/m@main", "alice/m", "main"),
        ("a-b/c.d_e@dev/x", "a-b/c.d_e", "dev/x"),
        ("o/n@" + "a" * 40, "o/n", "a" * 40),
    ],
)
def test_parse_repo_ref(text: str, repo: str, rev: str | None) -> None:
    ref = parse_repo_ref(text)
    assert (ref.repo_id, ref.revision) == (repo, rev)
    assert str(ref) == text
    assert ref.cache_folder == "models--" + repo.replace("/", "--")


@pytest.mark.parametrize(
    "text",
    [
        "alice",
        "alice/",
        "/m",
        "a/b/c",
        "../x",
        "a/..",
        "a/b@",
        "a/b@../x",
        "a/b@x y",
        "a/b@/x",
        "a/b@x//y",
        "a/m.git",
        "./x",
        "a/b@x\0",
    ],
)
def test_invalid_repo_refs(text: str) -> None:
    with pytest.raises(UsageError):
        parse_repo_ref(text)
    assert not looks_like_repo_ref(text)


def test_local_paths_do_not_look_like_refs() -> None:
    assert not looks_like_repo_ref("/tmp/ckpt")
    assert not looks_like_repo_ref("runs/a/b")
    assert not looks_like_repo_ref(Path("alice/m"))
    assert looks_like_repo_ref("runs/step-1")  # which is why the checkpoint API prefers an existing path


@pytest.mark.parametrize("path", ["a", "a/b.c", "sub dir/x #1.bin", "ünï/cödé"])
def test_safe_paths(tmp_path: Path, path: str) -> None:
    assert safe_join(tmp_path, path) == tmp_path.joinpath(*path.split("/"))


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "../up",
        "a/../../up",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "C:/x",
        "c:x",
        "a\0",
        "a\nb",
        "..",
        ".",
        "x" * 1025,
        5,
        None,
    ],
)
def test_unsafe_paths(tmp_path: Path, path: object) -> None:
    with pytest.raises(HubResponseError):
        check_repo_path(path)
    with pytest.raises(HubResponseError):
        safe_join(tmp_path, path)  # type: ignore[arg-type]


def test_symlinked_parent_leading_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(HubResponseError, match="outside"):
        safe_join(root, "link/file.txt")


def test_settings_precedence(tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": "http://env:1/", "HF_TOKEN": "env-token", "HF_HOME": str(tmp_path / "home")}
    s = client_settings(environ=env)
    assert (s.endpoint, s.token, s.cache_dir) == ("http://env:1", "env-token", tmp_path / "home" / "hub")
    s = client_settings(endpoint="http://arg:2", token="arg", cache_dir=tmp_path / "c", environ=env)
    assert (s.endpoint, s.token, s.cache_dir) == ("http://arg:2", "arg", tmp_path / "c")
    assert client_settings(environ={**env, "HF_HUB_CACHE": str(tmp_path / "hc")}).cache_dir == tmp_path / "hc"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text("stored-token\n")
    home = {"HF_HOME": str(tmp_path / "home")}
    assert client_settings(environ={**home, "HF_ENDPOINT": "http://env:1"}).token == "stored-token"
    bare = client_settings(environ={"HOME": os.environ.get("HOME", "/root")})
    assert bare.endpoint == "http://127.0.0.1:8000"
    assert bare.cache_dir == Path("~/.cache/huggingface/hub").expanduser()


def test_select_globs() -> None:
    files = [
        FileSpec(p, 1, "0" * 40)
        for p in ["a.json", "b.safetensors", "sub/c.json", "sub/d/e.bin", ".gitattributes"]
    ]
    names = lambda got: [f.path for f in got]  # noqa: E731
    assert names(select(files)) == [f.path for f in files]
    assert names(select(files, ["*.json"])) == ["a.json", "sub/c.json"]  # fnmatch: * crosses /
    assert names(select(files, ["sub/"])) == ["sub/c.json", "sub/d/e.bin"]
    assert names(select(files, exclude=["sub/*", ".*"])) == ["a.json", "b.safetensors"]
    assert names(select(files, ["*.json"], ["sub/*"])) == ["a.json"]


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind"),
    [
        (401, {"x-error-code": "RepoNotFound"}, b'{"error": "Repository not found"}', RepoNotFoundError),
        (404, {"x-error-code": "RevisionNotFound"}, b"", RevisionNotFoundError),
        (
            404,
            {"x-error-code": "EntryNotFound", "x-error-message": "Entry not found"},
            b"",
            EntryNotFoundError,
        ),
        (403, {"x-error-code": "GatedRepo"}, b"", PermissionDeniedError),
        (401, {"x-error-message": "Invalid credentials in Authorization header"}, b"", PermissionDeniedError),
        (403, {}, b'{"error": "no write access"}', PermissionDeniedError),
        (404, {}, b"<html>", NotFoundError),
        (409, {}, b'{"error": "exists"}', ConflictError),
        (412, {}, b'{"error": "A commit has happened since"}', ConflictError),
        (413, {}, b"", LimitExceededError),
        (400, {}, b'{"error": "bad"}', UsageError),
        (422, {}, b"{}", UsageError),
        (500, {}, b"boom", HubResponseError),
        (503, {}, b"", HubResponseError),
    ],
)
def test_error_mapping(status: int, headers: dict[str, str], body: bytes, kind: type[Exception]) -> None:
    err = error_from_response(status, headers, body, "http://hub/x")
    assert type(err) is kind
    data = err.to_dict()
    assert data["status"] == status and data["url"] == "http://hub/x"
    if body.startswith(b'{"error": "'):
        assert body.decode().split('"')[3] in err.message


def test_error_message_is_bounded_and_single_line() -> None:
    err = error_from_response(400, {"x-error-message": "x\n" * 5000}, b"", "u")
    assert "\n" not in err.message and len(err.message) < 700


def test_progress_bar_draws_on_its_stream() -> None:
    import io

    from cairn.client import Bar

    out = io.StringIO()
    bar = Bar(out, "pull a/b", width=10)
    bar.start(2048, 2)
    bar.advance(1024, done_file=True)
    bar.advance(1024, done_file=True)
    bar.close()
    text = out.getvalue()
    assert text.endswith("\n") and "\r" in text
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("pull a/b [##########] 100%") and "2/2 files" in last and "2.0 KiB/2.0 KiB" in last


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cairn.cli.main import main

    assert main(["push", str(tmp_path / "missing"), "alice/m", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["pull", "not a repo", "--json"]) == 2
    assert '"usage"' in capsys.readouterr().out
    assert main(["pull", "alice/m", "--endpoint", "ftp://x", "--cache-dir", str(tmp_path)]) == 2
    assert main(["pull", "alice/m", "--endpoint", "http://127.0.0.1:9", "--cache-dir", str(tmp_path)]) == 2
    assert "cannot reach the hub" in capsys.readouterr().err


def test_push_refuses_symlinks(tmp_path: Path) -> None:
    from cairn.client.push import scan_directory

    (tmp_path / "real.txt").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    assert [p for p, _ in scan_directory(tmp_path)] == ["real.txt"]
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(UsageError, match="symlink"):
        scan_directory(tmp_path)


def test_importing_the_client_imports_no_http_library() -> None:
    import subprocess
    import sys

    code = "import sys, cairn, cairn.client; print(sorted(m for m in ('httpx', 'torch', 'cryptography') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_exported_names() -> None:
    import cairn.client

    assert sorted(cairn.client.__all__) == cairn.client.__all__
    for name in cairn.client.__all__:
        assert getattr(cairn.client, name) is not None, name
    modules = [
        "cache",
        "errors",
        "http",
        "listing",
        "progress",
        "pull",
        "push",
        "refs",
        "resolve",
        "settings",
        "verify",
    ]
    import importlib

    for module in modules:
        mod = importlib.import_module(f"cairn.client.{module}")
        assert mod.__doc__ and len(mod.__doc__) > 40, module
        for name in mod.__all__:
            assert hasattr(mod, name), f"{module}.{name}"
