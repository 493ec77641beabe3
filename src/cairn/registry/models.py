"""Frozen result types of the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "REPO_TYPES",
    "AddFile",
    "Commit",
    "DeleteFile",
    "DeleteFolder",
    "FileEntry",
    "Operation",
    "Principal",
    "Ref",
    "Repo",
    "TokenInfo",
    "User",
]

REPO_TYPES = ("model", "dataset", "space")
Role = Literal["read", "write"]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    fullname: str
    created_at: int


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: Role
    created_at: int


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user and the role of the token they presented."""

    user: User
    token: TokenInfo
    orgs: tuple[str, ...] = ()

    @property
    def can_write(self) -> bool:
        return self.token.role == "write"

    def owns(self, namespace: str) -> bool:
        """Whether ``namespace`` is this user's own or one of their organisations'."""
        return namespace == self.user.name or namespace in self.orgs


@dataclass(frozen=True)
class Repo:
    id: int
    type: str
    namespace: str
    name: str
    private: bool
    gated: str
    created_at: int
    last_modified: int
    tags: tuple[str, ...] = ()
    card_data: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    pipeline_tag: str | None = None
    library_name: str | None = None
    downloads: int = 0
    likes: int = 0

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Commit:
    id: str
    parent_id: str | None
    title: str
    message: str
    author: str
    created_at: int


@dataclass(frozen=True)
class FileEntry:
    """A file at a commit: its content's sha256 and git blob SHA-1, size, and whether it is LFS."""

    path: str
    sha256: str
    git_sha1: str
    size: int
    lfs: bool
    last_commit: str

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_sha1


@dataclass(frozen=True)
class Ref:
    kind: Literal["branch", "tag"]
    name: str
    commit_id: str


@dataclass(frozen=True)
class AddFile:
    """Put content (already in the blob store) at ``path``. ``lfs=None``: decide by name and size."""

    path: str
    sha256: str
    size: int | None = None
    lfs: bool | None = None


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | DeleteFile | DeleteFolder
