"""Domain errors of the registry. Each is a :mod:`cairn.errors` subclass carrying its data; the hub maps
them to HTTP statuses and the ``X-Error-Code`` values the Hugging Face client understands."""

from __future__ import annotations

from cairn.errors import ConflictError, NotFoundError, PermissionDeniedError, UsageError

__all__ = [
    "AlreadyExistsError",
    "EntryNotFoundError",
    "FileDeletedError",
    "GatedRepoError",
    "InvalidNameError",
    "InvalidPathError",
    "LfsFileNotFoundError",
    "MissingBlobError",
    "RefMovedError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "StaleParentError",
    "UnauthenticatedError",
]


class RepoNotFoundError(NotFoundError):
    """No such repo, or one the caller may not see (the two are indistinguishable on purpose)."""

    code = "repo_not_found"

    def __init__(self, repo_id: str) -> None:
        super().__init__(f"Repository not found: {repo_id}")
        self.repo_id = repo_id


class GatedRepoError(PermissionDeniedError):
    """The repo is gated and the caller has not been granted access to its files."""

    code = "gated_repo"

    def __init__(self, repo_id: str, status: str | None = None) -> None:
        if status == "pending":
            message = f"Access to model {repo_id} is restricted: your request is awaiting review"
        elif status == "rejected":
            message = f"Access to model {repo_id} is restricted: your request was rejected"
        else:
            message = f"Access to model {repo_id} is restricted: request access to it first"
        super().__init__(message)
        self.repo_id = repo_id
        self.status = status


class RevisionNotFoundError(NotFoundError):
    code = "revision_not_found"

    def __init__(self, repo_id: str, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision!r}")
        self.repo_id = repo_id
        self.revision = revision


class EntryNotFoundError(NotFoundError):
    """A path that does not exist at an existing commit (``commit`` is that commit's id)."""

    code = "entry_not_found"

    def __init__(self, path: str, commit: str, message: str | None = None) -> None:
        super().__init__(message or f"Entry not found: {path}")
        self.path = path
        self.commit = commit


class UnauthenticatedError(PermissionDeniedError):
    """No credentials, or credentials that are not valid."""

    code = "unauthenticated"


class InvalidPathError(UsageError):
    code = "invalid_path"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid path {path[:200]!r}: {reason}")
        self.path = path[:1024]
        self.reason = reason


class InvalidNameError(UsageError):
    code = "invalid_name"

    def __init__(self, what: str, name: str, reason: str) -> None:
        super().__init__(f"invalid {what} {name[:200]!r}: {reason}")
        self.what = what
        self.name = name[:256]
        self.reason = reason


class MissingBlobError(UsageError):
    """A commit refers to content that was never uploaded."""

    code = "missing_blob"

    def __init__(self, path: str, oid: str) -> None:
        super().__init__(f"{path}: object {oid} has not been uploaded")
        self.path = path
        self.oid = oid


class AlreadyExistsError(ConflictError):
    code = "already_exists"

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what} {name!r} already exists")
        self.what = what
        self.name = name


class StaleParentError(ConflictError):
    """The commit was prepared on a parent that is no longer the head of the branch."""

    code = "stale_parent"

    def __init__(self, branch: str, expected: str, actual: str) -> None:
        super().__init__(
            f"A commit has happened since: {branch} is at {actual}, the commit was based on {expected}"
        )
        self.branch = branch
        self.expected = expected
        self.actual = actual


class RefMovedError(ConflictError):
    """Compare-and-swap of a ref failed: another writer moved it first. Nothing was changed."""

    code = "ref_moved"

    def __init__(self, ref: str, expected: str) -> None:
        super().__init__(f"{ref} moved while committing (expected {expected}); retry")
        self.ref = ref
        self.expected = expected


class FileDeletedError(NotFoundError):
    """The file's content was permanently deleted from the repo (``permanently_delete_lfs_files`` without
    history rewrite): the commit still names it, but the repo no longer holds the bytes (HTTP 410)."""

    code = "file_deleted"

    def __init__(self, path: str, sha256: str) -> None:
        super().__init__(f"{path}: its content (LFS object {sha256}) was permanently deleted from this repo")
        self.path = path
        self.sha256 = sha256


class LfsFileNotFoundError(NotFoundError):
    """Object ids that name no LFS file of the repo's history (nothing was deleted)."""

    code = "lfs_file_not_found"

    def __init__(self, repo_id: str, shas: list[str]) -> None:
        shown = ", ".join(shas[:5]) + (" ..." if len(shas) > 5 else "")
        super().__init__(f"{len(shas)} object(s) are no LFS file of {repo_id}: {shown}")
        self.repo_id = repo_id
        self.shas = tuple(shas)
