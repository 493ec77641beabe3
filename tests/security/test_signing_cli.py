"""``cairn keygen``, ``cairn sign`` and ``cairn verify``: output, --json and exit statuses 0 / 1 / 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.cli.main import main


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"\x01\x02" * 1000)
    (root / "config.json").write_text("{}")
    return root


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_keygen_sign_verify_and_tamper(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "me"
    assert main(["keygen", "--out", str(prefix), "--json"]) == 0
    made = _json(capsys)
    assert made["private_key"] == f"{prefix}.pem" and made["public_key"] == f"{prefix}.pub.pem"
    assert (Path(f"{prefix}.pem").stat().st_mode & 0o777) == 0o600

    assert main(["sign", str(model), "--key", f"{prefix}.pem", "--json"]) == 0
    signed = _json(capsys)
    assert signed["signature"] == str(model / "model.sig")
    assert signed["files"] == ["config.json", "weights.bin"]

    assert main(["verify", str(model), "--key", f"{prefix}.pub.pem"]) == 0
    assert "verified: 2 files signed by key sha256:" in capsys.readouterr().out

    (model / "weights.bin").write_bytes(b"evil")
    (model / "extra.py").write_text("import os")
    assert main(["verify", str(model), "--key", f"{prefix}.pub.pem", "--json"]) == 1
    report = _json(capsys)
    assert report["verified"] is False
    assert report["changed"] == ["weights.bin"] and report["added"] == ["extra.py"]

    assert main(["verify", str(model), "--key", f"{prefix}.pub.pem"]) == 1
    text = capsys.readouterr().out
    assert "VERIFICATION FAILED" in text and "changed: weights.bin" in text and "added: extra.py" in text


def test_wrong_key_exits_1_with_typed_json_error(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keygen", "--out", str(tmp_path / "a")])
    main(["keygen", "--out", str(tmp_path / "b"), "--curve", "secp521r1"])
    main(["sign", str(model), "--key", str(tmp_path / "a.pem"), "--signature", str(tmp_path / "m.sig")])
    capsys.readouterr()
    argv = [
        "verify",
        str(model),
        "--key",
        str(tmp_path / "b.pub.pem"),
        "--signature",
        str(tmp_path / "m.sig"),
    ]
    assert main([*argv, "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "wrong_key"
    assert "not by the given key" in captured.err
    assert main([*argv, "--key", str(tmp_path / "a.pub.pem")]) == 0  # any of several trusted signers
    assert main([*argv[:2], "--signature", str(tmp_path / "m.sig")]) == 2  # neither --key nor --trust


def test_errors_exit_2(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keygen", "--out", str(tmp_path / "k")])
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 2  # refuses to overwrite
    (model / "model.sig").write_text('{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsse')
    capsys.readouterr()
    assert main(["verify", str(model), "--key", str(tmp_path / "k.pub.pem"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad_signature"
    assert main(["verify", str(tmp_path / "missing"), "--key", str(tmp_path / "k.pub.pem")]) == 2
    assert main(["sign", str(model), "--key", str(tmp_path / "k.pub.pem")]) == 2  # public key cannot sign
    (model / "link").symlink_to(model / "config.json")
    assert main(["sign", str(model), "--key", str(tmp_path / "k.pem"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["error"]["code"] == "symlink_refused"
    assert main(["sign", str(model), "--key", str(tmp_path / "k.pem"), "--allow-symlinks"]) == 0


def test_shards_ignore_and_console_script(model: Path, tmp_path: Path) -> None:
    """The installed entry point, end to end, with the options that change the manifest."""
    cairn = [sys.executable, "-m", "cairn"]
    subprocess.run([*cairn, "keygen", "--out", str(tmp_path / "k")], check=True, capture_output=True)
    (model / "notes.txt").write_text("not signed")
    out = subprocess.run(
        [
            *cairn,
            "sign",
            str(model),
            "--key",
            str(tmp_path / "k.pem"),
            "--method",
            "shards",
            "--shard-size",
            "512",
            "--ignore",
            "notes.txt",
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(out.stdout)["resources"] == 5  # 2000 bytes in 512-byte shards, plus config.json
    (model / "notes.txt").write_text("changed, still not signed")
    ok = subprocess.run(
        [*cairn, "verify", str(model), "--key", str(tmp_path / "k.pub.pem")], capture_output=True
    )
    assert ok.returncode == 0, ok.stderr


def test_import_cairn_and_cli_frame_do_not_load_cryptography() -> None:
    code = (
        "import sys, cairn, cairn.cli.main as m; m.build_parser(); "
        "assert 'cryptography' not in sys.modules, 'cryptography imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_signing_option_is_documented() -> None:
    from cairn.cli.main import build_parser

    docs = (Path(__file__).parents[2] / "docs" / "signing.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("keygen", "sign", "verify"):
        parser = sub.choices[command]  # type: ignore[index]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert re.search(re.escape(flag) + r"(?![\w-])", docs), (
                        f"cairn {command} {flag} undocumented"
                    )
