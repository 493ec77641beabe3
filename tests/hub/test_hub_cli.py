"""``cairn admin``: users and tokens on the same storage the server uses; errors exit 2 with JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.cli.main import main
from cairn.registry import Registry


def test_admin_create_user_and_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path / "d")]
    assert main(["admin", "create-user", "dora", "--json", *data]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["user"] == "dora" and created["token"].startswith("cairn_")
    assert main(["admin", "create-token", "dora", "--role", "read", *data]) == 0
    read_token = capsys.readouterr().out.strip()
    reg = Registry.open(f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs"))
    try:
        assert reg.users.authenticate(created["token"]).can_write
        assert not reg.users.authenticate(read_token).can_write
    finally:
        reg.close()
    reg = Registry.open(f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs"))
    try:
        who = reg.users.authenticate(created["token"])
        reg.repos.create(who, "model", "dora", "secret", private=True)
    finally:
        reg.close()
    assert main(["admin", "grant-access", "dora/secret", "dora", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out)["granted"] is True
    assert main(["admin", "create-org", "dlab", "--member", "dora", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out) == {"org": "dlab", "members": ["dora"]}
    assert main(["admin", "create-org", "dlab", *data]) == 2
    assert main(["admin", "create-org", "x-lab", "--member", "ghost", *data]) == 2
    assert main(["admin", "grant-access", "dora/missing", "dora", *data]) == 2
    assert main(["admin", "grant-access", "dora/secret", "nobody", *data]) == 2
    capsys.readouterr()
    assert main(["admin", "create-user", "dora", "--json", *data]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "already_exists" and err["name"] == "dora"
    assert main(["admin", "create-user", "../x", *data]) == 2
    assert main(["admin", "create-token", "nobody", *data]) == 2


def test_storage_precedence_flag_env_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import argparse

    from cairn.cli.commands.serve import storage_urls

    ns = argparse.Namespace(data=None, db=None, blobs=None)
    monkeypatch.delenv("CAIRN_DB", raising=False)
    monkeypatch.delenv("CAIRN_BLOBS", raising=False)
    monkeypatch.setenv("CAIRN_DATA", str(tmp_path / "env"))
    db, blobs = storage_urls(ns)
    assert db == f"sqlite:///{tmp_path / 'env' / 'hub.db'}" and blobs == str(tmp_path / "env" / "blobs")
    ns.data = str(tmp_path / "flag")
    assert storage_urls(ns)[1] == str(tmp_path / "flag" / "blobs")
    monkeypatch.setenv("CAIRN_DB", "postgresql://x/y")
    assert storage_urls(ns)[0] == "postgresql://x/y"
