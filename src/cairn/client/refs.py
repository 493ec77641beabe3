"""Repository references (``org/name[@rev]``) and the path checks that keep a hub's listing from
writing anywhere but inside the target directory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cairn.client.errors import HubResponseError
from cairn.errors import UsageError

__all__ = ["RepoRef", "check_repo_path", "is_commit_id", "looks_like_repo_ref", "parse_repo_ref", "safe_join"]

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REPO = re.compile(rf"({_SEGMENT})/({_SEGMENT})")
_COMMIT = re.compile(r"[0-9a-f]{40}")
MAX_PATH = 1024
MAX_SEGMENT_BYTES = 255  # NAME_MAX of common file systems


@dataclass(frozen=True)
class RepoRef:
    """``namespace/name`` plus an optional revision (branch, tag or commit id)."""

    repo_id: str
    revision: str | None = None

    @property
    def cache_folder(self) -> str:
        """The cache folder name huggingface_hub uses for a model repo: ``models--ns--name``."""
        return "models--" + self.repo_id.replace("/", "--")

    def __str__(self) -> str:
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"


def _check_revision(rev: str) -> str:
    if not rev or len(rev) > 256 or rev.startswith("/") or rev.endswith("/") or "//" in rev:
        raise UsageError(f"invalid revision {rev!r}")
    if any(c in rev for c in "\0\\ ~^:?*[") or ".." in rev or any(ord(c) < 32 for c in rev):
        raise UsageError(f"invalid revision {rev!r}")
    # git's ref rules: no segment "." / "..", none ending in "." or ".lock" (``refs/.`` is refs/ itself)
    if any(seg in (".", "..") or seg.endswith((".", ".lock")) for seg in rev.split("/")):
        raise UsageError(f"invalid revision {rev!r}")
    return rev


def parse_repo_ref(text: str) -> RepoRef:
    """Parse ``org/name`` or ``org/name@rev``; raise :class:`UsageError` for anything else."""
    repo, sep, rev = text.partition("@")
    if not _REPO.fullmatch(repo) or repo.endswith(".git") or ".." in repo:
        raise UsageError(f"not a repository reference (expected org/name[@revision]): {text!r}")
    return RepoRef(repo, _check_revision(rev) if sep else None)


def looks_like_repo_ref(text: object) -> bool:
    """True for strings shaped like ``org/name[@rev]`` (the checkpoint API's test before going remote)."""
    if not isinstance(text, str):
        return False
    try:
        parse_repo_ref(text)
    except UsageError:
        return False
    return True


def is_commit_id(text: str) -> bool:
    return _COMMIT.fullmatch(text) is not None


def check_repo_path(path: object) -> str:
    """A path from a hub listing, refused unless it is a plain relative POSIX path below the root."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise HubResponseError(f"hub listed an invalid path {str(path)[:80]!r}")
    parts = path.split("/")
    bad = (
        path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(ord(c) < 32 for c in path)
        or any(p in ("", ".", "..") for p in parts)
        or any(len(p.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for p in parts)
        or re.match(r"[A-Za-z]:", path) is not None
    )
    if bad:
        raise HubResponseError(f"hub listed an unsafe path {path[:200]!r}; refusing to write it")
    return path


def safe_join(root: Path, path: str) -> Path:
    """``root/path`` after :func:`check_repo_path`, refusing paths whose existing parents lead out of
    ``root`` through a symlink."""
    rel = PurePosixPath(check_repo_path(path))
    target = root.joinpath(*rel.parts)
    base = root.resolve()
    parent = target.parent.resolve()
    if parent != base and base not in parent.parents:
        raise HubResponseError(f"{path!r} would be written outside {root}; refusing")
    return target
