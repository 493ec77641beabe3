"""``cairn pull --verify``: the pulled snapshot's ``model.sig`` checked against publisher keys."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from client_testing import ClientHub
from test_client_roundtrip import make_model_dir

from cairn.cli.main import main
from cairn.client import parse_repo_ref, push
from cairn.security.signing import sign
from cairn.security.signing.keys import write_keypair


@pytest.fixture(scope="module")
def signed_repo(
    client_hub: ClientHub, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Path, Path]:
    root = tmp_path_factory.mktemp("signed")
    src = make_model_dir(root / "src", seed=21)
    private, public = write_keypair(root / "alice")
    _, other = write_keypair(root / "mallory")
    sign(src, key=private)
    repo = f"alice/signed-{uuid.uuid4().hex[:8]}"
    push(src, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token, create=True)
    return repo, src, public, other


def _pull(client_hub: ClientHub, ref: str, cache: Path, *extra: str) -> list[str]:
    return ["pull", ref, "--endpoint", client_hub.url, "--cache-dir", str(cache), "--json", *extra]


def test_signed_snapshot_verifies(
    client_hub: ClientHub,
    signed_repo: tuple[str, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _, public, _ = signed_repo
    assert main(_pull(client_hub, repo, tmp_path, "--verify", "--key", str(public))) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verification"]["verified"] is True
    assert "model.safetensors" in out["verification"]["files"]


def test_wrong_key_fails_with_exit_1(
    client_hub: ClientHub,
    signed_repo: tuple[str, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _, _, other = signed_repo
    assert main(_pull(client_hub, repo, tmp_path, "--verify", "--key", str(other))) == 1
    assert "wrong_key" in capsys.readouterr().out


def test_changed_file_is_listed(
    client_hub: ClientHub,
    signed_repo: tuple[str, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _, public, _ = signed_repo
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "config.json").write_text('{"model_type": "evil"}')
    done = push(tampered, parse_repo_ref(f"{repo}@tampered"), endpoint=client_hub.url, token=client_hub.token)
    assert done.committed  # branch "tampered": the signed files plus a changed config.json
    status = main(_pull(client_hub, f"{repo}@tampered", tmp_path, "--verify", "--key", str(public)))
    assert status == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verification"]["verified"] is False
    assert out["verification"]["changed"] == ["config.json"]
    # and without --json the differing file is named on stdout
    assert (
        main(
            [
                "pull",
                f"{repo}@tampered",
                "--endpoint",
                client_hub.url,
                "--cache-dir",
                str(tmp_path),
                "--key",
                str(public),
            ]
        )
        == 1
    )
    assert "changed: config.json" in capsys.readouterr().out


def test_unsigned_snapshot_with_verify_is_a_negative_answer(
    client_hub: ClientHub,
    signed_repo: tuple[str, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, public, _ = signed_repo
    src = make_model_dir(tmp_path / "src", seed=22)
    repo = f"alice/unsigned-{uuid.uuid4().hex[:8]}"
    push(src, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token, create=True)
    assert main(_pull(client_hub, repo, tmp_path / "c", "--verify", "--key", str(public))) == 1
    assert json.loads(capsys.readouterr().out)["verification"] == {
        "verified": False,
        "reason": "no model.sig in the snapshot",
    }
    assert main(_pull(client_hub, repo, tmp_path / "c", "--verify")) == 2  # nothing to verify with
