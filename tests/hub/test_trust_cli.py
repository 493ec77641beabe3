"""``cairn admin security`` / ``release`` and ``cairn serve``'s trust options, on the server's storage."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from cairn.cli.main import build_parser, main
from cairn.cli.trust_admin import trust_policy
from cairn.errors import UsageError
from cairn.registry import AddFile, Registry
from cairn.registry.trust import QuarantinedFileError, TrustPolicy


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def test_admin_security_and_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path / "d")]
    assert main(["admin", "create-user", "dora", "--json", *data]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    db, blobs = f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs")
    reg = Registry.open(db, blobs, trust=TrustPolicy(on_unsafe="quarantine"))
    try:
        who = reg.users.authenticate(token)
        repo = reg.repos.create(who, "model", "dora", "q", private=False)
        blob = reg.ingest_bytes(pickle.dumps(_Evil()), repo_id=repo.id)
        reg.commit(repo, "main", [AddFile("m.pkl", blob.sha256)], title="add", author="dora")
        with pytest.raises(QuarantinedFileError):
            reg.lookup_file("model", "dora", "q", "main", "m.pkl", who)
        reg.lookup_file("model", "dora", "q", "main", "m.pkl", who, content=False)  # metadata is fine
    finally:
        reg.close()
    assert main(["admin", "security", "dora/q", "--json", *data]) == 1
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert files["m.pkl"]["status"] == "unsafe" and files["m.pkl"]["severity"] == "critical"
    assert main(["admin", "release", "dora/q", blob.sha256, "--reason", "test", *data]) == 0
    assert "released" in capsys.readouterr().out
    reg = Registry.open(db, blobs, trust=TrustPolicy(on_unsafe="quarantine"))
    try:
        reg.lookup_file("model", "dora", "q", "main", "m.pkl", None)
    finally:
        reg.close()
    assert main(["admin", "release", "dora/q", blob.sha256, "--revoke", *data]) == 0
    assert main(["admin", "release", "dora/q", blob.sha256, "--revoke", *data]) == 2  # not released
    assert main(["admin", "security", "dora/missing", *data]) == 2


def test_serve_trust_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--hub-admin", "root", "--block-severity", "high"])
    monkeypatch.delenv("CAIRN_UNSAFE_FILES", raising=False)
    policy = trust_policy(args)
    assert (policy.on_unsafe, policy.block_severity, policy.admins) == ("reject", "high", ("root",))
    monkeypatch.setenv("CAIRN_UNSAFE_FILES", "quarantine")
    assert trust_policy(args).on_unsafe == "quarantine"
    flag = parser.parse_args(["serve", "--unsafe-files", "warn", "--no-scan"])
    assert trust_policy(flag).on_unsafe == "warn" and not trust_policy(flag).scan  # flag beats env
    assert trust_policy(flag).license_policy.enforcement == "warn"
    block = parser.parse_args(["serve", "--license-enforcement", "block", "--unsafe-files", "reject"])
    assert trust_policy(block).license_policy.enforcement == "block"
    assert not trust_policy(block).block_unscannable
    assert trust_policy(parser.parse_args(["serve", "--block-unscannable"])).block_unscannable
    monkeypatch.setenv("CAIRN_UNSAFE_FILES", "ignore")
    with pytest.raises(UsageError):
        trust_policy(args)
    missing = parser.parse_args(["serve", "--trusted-key", str(tmp_path / "none.pem")])
    with pytest.raises(UsageError, match="trusted key"):
        trust_policy(missing)


def test_namespace_signature_requirement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cairn.registry.trust import SignatureRequiredError
    from cairn.security.signing import sign, write_keypair

    data = ["--data", str(tmp_path / "d")]
    assert main(["admin", "create-user", "erin", "--json", *data]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    private, public = write_keypair(tmp_path / "erin")
    assert main(["admin", "signatures", "erin", "--require", "--key", str(public), "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "namespace": "erin",
        "requireSignature": True,
        "trustedKeys": 1,
    }
    assert main(["admin", "signatures", "erin", "--key", str(tmp_path / "missing.pem"), *data]) == 2
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main(["admin", "signatures", "erin", "--key", str(bad), *data]) == 2
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"a": 1}')
    sign(model, key=private)
    reg = Registry.open(f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs"))
    try:
        who = reg.users.authenticate(token)
        repo = reg.repos.create(who, "model", "erin", "r", private=False)
        config = reg.ingest_bytes((model / "config.json").read_bytes(), repo_id=repo.id)
        with pytest.raises(SignatureRequiredError):
            reg.commit(repo, "main", [AddFile("config.json", config.sha256)], title="unsigned", author="erin")
        sig = reg.ingest_bytes((model / "model.sig").read_bytes(), repo_id=repo.id)
        done = reg.commit(
            repo,
            "main",
            [AddFile("config.json", config.sha256), AddFile("model.sig", sig.sha256)],
            title="signed",
            author="erin",
        )
        record = reg.trust.revision(done.id)
        assert record is not None and record["signature"]["status"] == "verified"
    finally:
        reg.close()
    assert main(["admin", "signatures", "erin", "--no-require", *data]) == 0
    assert "not required" in capsys.readouterr().out
