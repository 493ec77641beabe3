"""One JSON error shape for every error, plus the headers the Hugging Face client maps to its exception
classes (``X-Error-Code``, ``X-Error-Message``, ``X-Repo-Commit``; spec §1.7).

Body: ``{"error": "<human message>", "code": "<cairn error code>"}``.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from cairn.errors import (
    CairnError,
    ConflictError,
    IntegrityError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)
from cairn.registry.errors import (
    EntryNotFoundError,
    FileDeletedError,
    GatedRepoError,
    MissingBlobError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StaleParentError,
    UnauthenticatedError,
)

__all__ = ["HeadersTooLargeError", "RouteNotFoundError", "error_response", "header_safe"]

log = logging.getLogger("cairn.hub")


class RouteNotFoundError(NotFoundError):
    code = "route_not_found"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no route for {method} {path[:300]}")
        self.method = method


class HeadersTooLargeError(LimitExceededError):
    code = "headers_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request headers of {size} bytes exceed the limit of {limit}")
        self.size = size
        self.limit = limit


def header_safe(text: str, limit: int = 500) -> str:
    """``text`` as an HTTP header value: ASCII, control characters (CR, LF, ...) and DEL replaced by
    ``?`` (a raw CR or LF would end the header and make the server drop the connection)."""
    ascii_text = text[:limit].encode("ascii", "replace").decode()
    return ascii_text.translate(_CONTROLS)


_CONTROLS = {c: "?" for c in (*range(0x20), 0x7F)}


def _status_and_code(err: CairnError, anonymous: bool) -> tuple[int, str | None]:
    if isinstance(err, RepoNotFoundError):
        return (401 if anonymous else 404), "RepoNotFound"
    if isinstance(err, GatedRepoError):
        return (401 if anonymous else 403), "GatedRepo"
    if isinstance(err, RevisionNotFoundError):
        return 404, "RevisionNotFound"
    if isinstance(err, EntryNotFoundError):
        return 404, "EntryNotFound"
    if isinstance(err, FileDeletedError):
        return 410, None
    if isinstance(err, NotFoundError):
        return 404, None
    if isinstance(err, UnauthenticatedError):
        return 401, None
    if isinstance(err, PermissionDeniedError):
        return 403, None
    if isinstance(err, StaleParentError):
        return 412, None
    if isinstance(err, ConflictError):
        return 409, None
    if isinstance(err, HeadersTooLargeError):
        return 431, None
    if isinstance(err, LimitExceededError):
        return 413, None
    if isinstance(err, MissingBlobError | IntegrityError):
        return 422, None
    if isinstance(err, UsageError):
        return 400, None
    return 400, None


def error_response(err: BaseException, *, anonymous: bool, head: bool = False) -> JSONResponse:
    """The response for ``err``: typed errors by class, anything else a logged 500 without details."""
    if not isinstance(err, CairnError):
        log.exception("internal error", exc_info=err)
        return JSONResponse({"error": "Internal server error", "code": "internal"}, status_code=500)
    status, hf_code = _status_and_code(err, anonymous)
    message = err.message
    headers = {"X-Error-Message": header_safe(message)}
    if hf_code:
        headers["X-Error-Code"] = hf_code
    if isinstance(err, EntryNotFoundError) and err.commit:
        headers["X-Repo-Commit"] = err.commit
    return JSONResponse({"error": message, "code": err.code}, status_code=status, headers=headers)
