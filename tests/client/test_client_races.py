"""Races with other writers: a branch that moves during a pull or a push. The progress hook runs at a
known point (after the revision is pinned / after preupload), so the race is deterministic."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from client_testing import ClientHub
from test_client_roundtrip import files_of, make_model_dir

from cairn.client import parse_repo_ref, pull, push
from cairn.errors import ConflictError


class _Hook:
    """A silent Progress whose ``start`` runs ``action`` once."""

    def __init__(self, action: object) -> None:
        self.action = action

    def start(self, total_bytes: int, total_files: int) -> None:
        if self.action is not None:
            action, self.action = self.action, None
            action()  # type: ignore[operator]

    def advance(self, nbytes: int, *, done_file: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def test_branch_moving_during_pull_does_not_mix_commits(client_hub: ClientHub, tmp_path: Path) -> None:
    src = make_model_dir(tmp_path / "v1", seed=31)
    ref = parse_repo_ref(f"alice/race-{uuid.uuid4().hex[:8]}")
    first = push(src, ref, endpoint=client_hub.url, token=client_hub.token, create=True)
    v2 = make_model_dir(tmp_path / "v2", seed=32)

    def move_main() -> None:
        push(v2, ref, endpoint=client_hub.url, token=client_hub.token)

    got = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c", progress=_Hook(move_main))
    assert got.commit == first.commit
    assert {k: v for k, v in files_of(got.snapshot).items() if k != ".gitattributes"} == files_of(src)
    again = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c")
    assert again.commit != first.commit
    assert {k: v for k, v in files_of(again.snapshot).items() if k != ".gitattributes"} == files_of(v2)


def test_branch_moving_during_push_is_a_conflict(client_hub: ClientHub, tmp_path: Path) -> None:
    ref = parse_repo_ref(f"alice/race-{uuid.uuid4().hex[:8]}")
    push(
        make_model_dir(tmp_path / "v1", seed=33),
        ref,
        endpoint=client_hub.url,
        token=client_hub.token,
        create=True,
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "theirs.txt").write_text("someone else's commit\n")
    mine = make_model_dir(tmp_path / "mine", seed=34)

    def someone_else_commits() -> None:
        push(other, ref, endpoint=client_hub.url, token=client_hub.token)

    with pytest.raises(ConflictError):
        push(mine, ref, endpoint=client_hub.url, token=client_hub.token, progress=_Hook(someone_else_commits))
    # nothing of ours was committed: main holds v1 plus their file
    got = pull(ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c")
    files = files_of(got.snapshot)
    assert "theirs.txt" in files
    assert files["config.json"] == (tmp_path / "v1" / "config.json").read_bytes()
