"""Domain services of the hub: users and hashed tokens, repos with access control, immutable commits
with 40-hex ids, branches and tags moved only by compare-and-swap, trees, and blobs by content hash.

Data flows in one direction: ``hub`` -> :class:`Registry` -> ``meta`` (rows) and ``store`` (bytes).
Nothing here knows about HTTP, reads the environment or prints.
"""

from __future__ import annotations

from cairn.registry.access import AccessRequest, AccessService, NotGatedError
from cairn.registry.audit import AuditEvent, AuditService
from cairn.registry.errors import (
    AlreadyExistsError,
    EntryNotFoundError,
    GatedRepoError,
    InvalidNameError,
    InvalidPathError,
    MissingBlobError,
    RefMovedError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StaleParentError,
    UnauthenticatedError,
)
from cairn.registry.models import (
    AddFile,
    Commit,
    DeleteFile,
    DeleteFolder,
    FileEntry,
    Operation,
    Principal,
    Ref,
    Repo,
    TokenInfo,
    TokenScope,
    User,
)
from cairn.registry.names import check_path
from cairn.registry.orgs import LastAdminError, Member, OrgNotFoundError, OrgService
from cairn.registry.service import BlobInfo, Registry

__all__ = [
    "AccessRequest",
    "AccessService",
    "AddFile",
    "AlreadyExistsError",
    "AuditEvent",
    "AuditService",
    "BlobInfo",
    "Commit",
    "DeleteFile",
    "DeleteFolder",
    "EntryNotFoundError",
    "FileEntry",
    "GatedRepoError",
    "InvalidNameError",
    "InvalidPathError",
    "LastAdminError",
    "Member",
    "MissingBlobError",
    "NotGatedError",
    "Operation",
    "OrgNotFoundError",
    "OrgService",
    "Principal",
    "Ref",
    "RefMovedError",
    "Registry",
    "Repo",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "StaleParentError",
    "TokenInfo",
    "TokenScope",
    "UnauthenticatedError",
    "User",
    "check_path",
]
