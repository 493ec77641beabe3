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
    "TokenScope",
    "User",
]

REPO_TYPES = ("model", "dataset", "space")
Role = Literal["read", "write"]
OrgRole = Literal["read", "write", "admin"]
LEVELS = {"read": 1, "write": 2, "admin": 3}


@dataclass(frozen=True)
class User:
    id: int
    name: str
    fullname: str
    created_at: int


@dataclass(frozen=True)
class TokenScope:
    """One grant of a fine-grained token: ``kind`` "repo" (``name`` = "ns/name" of a ``repo_type``
    repo) or "org" (``name`` = a namespace: an organisation or the user's own), with a permission."""

    kind: Literal["repo", "org"]
    name: str
    permission: Role
    repo_type: str = "model"

    def covers(self, repo_type: str, namespace: str, name: str | None) -> bool:
        if self.kind == "org":
            return self.name == namespace
        return name is not None and self.repo_type == repo_type and self.name == f"{namespace}/{name}"


@dataclass(frozen=True)
class TokenInfo:
    """A token as stored (never its secret). ``scopes`` empty: the token acts for the whole account."""

    name: str
    role: Role
    created_at: int
    id: int = 0
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    scopes: tuple[TokenScope, ...] = ()

    @property
    def fine_grained(self) -> bool:
        return bool(self.scopes)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, the token they presented, and their roles in organisations.

    The permission on a repo is the lower of the user's role in its namespace (their own namespace:
    admin; an organisation: their member role) and what the token allows there (its role, or for a
    fine-grained token the best scope that covers the repo; a write token can use an admin role)."""

    user: User
    token: TokenInfo
    orgs: tuple[str, ...] = ()
    org_roles: tuple[tuple[str, OrgRole], ...] = ()

    @property
    def can_write(self) -> bool:
        return self.token.role == "write"

    def role_in(self, namespace: str) -> OrgRole | None:
        """The user's own role in ``namespace`` (ignoring the token)."""
        if namespace == self.user.name:
            return "admin"
        for org, role in self.org_roles:
            if org == namespace:
                return role
        if namespace in self.orgs:  # principals built without roles: members write
            return "write"
        return None

    def token_level(self, repo_type: str, namespace: str, name: str | None) -> int:
        """What the token allows on a repo (or, with ``name`` None, on a whole namespace): 0..3."""
        if not self.token.scopes:
            return 3 if self.token.role == "write" else 1
        best = 0
        for scope in self.token.scopes:
            if scope.covers(repo_type, namespace, name):
                best = max(best, 3 if scope.permission == "write" else 1)
        return best

    def level(self, repo_type: str, namespace: str, name: str | None = None) -> int:
        """0 none, 1 read, 2 write, 3 admin: the effective permission on ``namespace/name``."""
        role = self.role_in(namespace)
        if role is None:
            return 0
        return min(LEVELS[role], self.token_level(repo_type, namespace, name))

    def owns(self, namespace: str) -> bool:
        """Whether ``namespace`` is this user's own or one of their organisations'."""
        return self.role_in(namespace) is not None


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
    kind: Literal["branch", "tag", "pr"]  # "pr": a pull request's ref refs/pr/N
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
