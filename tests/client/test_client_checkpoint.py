"""Training resumes from a hub checkpoint: ``cairn.save`` → ``cairn push`` → ``cairn.load("org/name@rev")``
and ``CheckpointManager.restore("org/name@rev")`` restore it bit-exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch
from client_testing import ClientHub

import cairn
from cairn.cli.main import main
from cairn.errors import NotFoundError


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


@pytest.fixture(scope="module")
def pushed(
    client_hub: ClientHub, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, torch.nn.Module, torch.optim.Optimizer]:
    model = _model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 8)).sum().backward()
    opt.step()
    ckpt = tmp_path_factory.mktemp("ckpt") / "step-1"
    cairn.save(ckpt, model=model, optimizer=opt, metadata={"step": 1})
    repo = f"alice/ckpt-{uuid.uuid4().hex[:8]}"
    status = main(
        ["push", str(ckpt), repo, "--create", "--endpoint", client_hub.url, "--token", client_hub.token]
    )
    assert status == 0
    return repo, model, opt


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_from_hub_reference_is_bit_exact(
    client_hub: ClientHub, pushed: tuple[str, torch.nn.Module, torch.optim.Optimizer], tmp_path: Path
) -> None:
    repo, model, opt = pushed
    target = _model(1)
    target_opt = torch.optim.AdamW(target.parameters(), lr=1e-3)
    assert not _same(target, model)
    result = cairn.load(
        f"{repo}@main", model=target, optimizer=target_opt, endpoint=client_hub.url, token=client_hub.token
    )
    assert result.metadata["step"] == 1
    assert _same(target, model)
    saved, got = opt.state_dict()["state"], target_opt.state_dict()["state"]
    assert all(torch.equal(saved[k]["exp_avg"], got[k]["exp_avg"]) for k in saved)
    assert cairn.verify(repo, endpoint=client_hub.url).parts.keys() >= {"model", "optimizer"}
    state = cairn.load_state(repo, endpoint=client_hub.url, kind="torch")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_endpoint_and_token_fall_back_to_environment(
    client_hub: ClientHub,
    pushed: tuple[str, torch.nn.Module, torch.optim.Optimizer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, model, _ = pushed
    monkeypatch.setenv("HF_ENDPOINT", client_hub.url)
    monkeypatch.setenv("HF_TOKEN", client_hub.token)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    target = _model(2)
    cairn.load(repo, model=target)
    assert _same(target, model)
    assert (tmp_path / "cache" / f"models--{repo.replace('/', '--')}" / "refs" / "main").is_file()


def test_manager_restore_resumes_from_hub(
    client_hub: ClientHub,
    pushed: tuple[str, torch.nn.Module, torch.optim.Optimizer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, model, _ = pushed
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    target = _model(3)
    manager = cairn.CheckpointManager(tmp_path / "run")
    result = manager.restore(f"{repo}@main", model=target, endpoint=client_hub.url)
    assert result.metadata["step"] == 1 and _same(target, model)


def test_missing_hub_checkpoint_is_not_found(
    client_hub: ClientHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(NotFoundError):
        cairn.load("alice/no-such-checkpoint", model=_model(0), endpoint=client_hub.url)
    # a repository that exists but holds no cairn checkpoint
    src = tmp_path / "plain"
    src.mkdir()
    (src / "README.md").write_text("# not a checkpoint\n")
    repo = f"alice/plain-{uuid.uuid4().hex[:8]}"
    assert (
        main(["push", str(src), repo, "--create", "--endpoint", client_hub.url, "--token", client_hub.token])
        == 0
    )
    with pytest.raises(NotFoundError, match="no cairn checkpoint"):
        cairn.load(repo, model=_model(0), endpoint=client_hub.url)


def test_mistyped_local_path_names_both_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError, match="no such local directory") as info:
        cairn.load("runs/step-1", model=_model(0), endpoint="http://127.0.0.1:9")
    assert "cannot reach the hub" in info.value.message


def test_hub_checkpoint_loads_from_cache_when_hub_is_unreachable(
    client_hub: ClientHub,
    pushed: tuple[str, torch.nn.Module, torch.optim.Optimizer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, model, _ = pushed
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    cairn.load(f"{repo}@main", model=_model(4), endpoint=client_hub.url)
    target = _model(5)
    cairn.load(f"{repo}@main", model=target, endpoint="http://127.0.0.1:9")  # nothing listens there
    assert _same(target, model)
    with pytest.raises(NotFoundError, match="cannot reach the hub"):  # never loaded: nothing to fall back on
        cairn.load(f"{repo}@other", model=_model(6), endpoint="http://127.0.0.1:9")


def test_corrupted_cached_checkpoint_is_caught_by_load(
    client_hub: ClientHub,
    pushed: tuple[str, torch.nn.Module, torch.optim.Optimizer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cairn.load verifies every byte itself, so the pull under it does not re-hash cached blobs; a blob
    corrupted in the cache is still refused (by load, before anything is applied), and a plain pull
    repairs it."""
    from cairn.client import parse_repo_ref, pull
    from cairn.errors import IntegrityError

    repo, model, _ = pushed
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    cairn.load(repo, model=_model(7), endpoint=client_hub.url)
    blobs = tmp_path / "cache" / f"models--{repo.replace('/', '--')}" / "blobs"
    biggest = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    raw[-1] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    target = _model(8)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(IntegrityError):
        cairn.load(repo, model=target, endpoint=client_hub.url)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing applied
    repaired = pull(parse_repo_ref(repo), endpoint=client_hub.url, token=None, cache_dir=tmp_path / "cache")
    assert "repaired" in {f.status for f in repaired.files}
    cairn.load(repo, model=target, endpoint=client_hub.url)
    assert _same(target, model)
