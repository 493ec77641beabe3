"""Per-request context for handlers: parsed path parameters, the caller, body readers with limits, query
helpers that accept both client generations' spellings, absolute URLs on the client's own origin, and the
thread-pool bridge to the synchronous registry."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cairn.errors import LimitExceededError, UsageError
from cairn.hub.config import HubConfig
from cairn.registry import Principal, Registry, Repo
from cairn.registry.errors import UnauthenticatedError

__all__ = ["Ctx", "parse_bool", "ua_version"]

P = ParamSpec("P")
T = TypeVar("T")
_UA = re.compile(r"hf_hub/(\d+)\.(\d+)")
_INT = re.compile(r"-?[0-9]{1,18}")
MAX_CURSOR = 1 << 62  # offsets reach SQL as 64-bit integers
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def parse_bool(value: str | None, default: bool = False) -> bool:
    """``true``/``True``/``1`` and ``false``/``False``/``0``, case-insensitively (spec §1.3)."""
    if value is None or value == "":
        return default
    low = value.lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise UsageError(f"not a boolean: {value[:50]!r}")


def ua_version(user_agent: str) -> tuple[int, int] | None:
    """The ``huggingface_hub`` version a user-agent announces (``hf_hub/X.Y``), if any."""
    m = _UA.search(user_agent)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _no_nul(name: str, value: T) -> T:
    if isinstance(value, str) and "\0" in value:
        raise UsageError(f"query parameter {name[:50]!r} contains NUL")
    return value


@dataclass
class Ctx:
    request: Request
    registry: Registry
    config: HubConfig
    params: dict[str, str] = field(default_factory=dict)
    rest: list[str] = field(default_factory=list)
    principal: Principal | None = None
    secret: bytes = b""
    has_token: bool = False

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a synchronous registry call in the thread pool."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def authenticate(self) -> None:
        header = self.request.headers.get("authorization", "")
        if not header:
            return
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("Invalid credentials in Authorization header")
        self.has_token = True
        self.principal = await self.call(self.registry.users.authenticate, token.strip())

    def require_user(self) -> Principal:
        if self.principal is None:
            raise UnauthenticatedError("You must be authenticated to do this: send a write token")
        return self.principal

    # -- request parsing -------------------------------------------------------------------------------
    async def body(self, limit: int) -> bytes:
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise LimitExceededError(f"request body of {declared} bytes exceeds the limit of {limit}")
        chunks: list[bytes] = []
        total = 0
        async for chunk in self.request.stream():
            total += len(chunk)
            if total > limit:
                raise LimitExceededError(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json(self, *, required: bool = True) -> dict[str, Any]:
        raw = await self.body(self.config.max_json_bytes)
        if not raw.strip() and not required:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise UsageError(f"malformed JSON body: {err}") from None
        except RecursionError:
            raise UsageError("malformed JSON body: nested too deeply") from None
        if not isinstance(data, dict):
            raise UsageError("the JSON body must be an object")
        return data

    def q(self, name: str) -> str | None:
        """Query parameter ``name`` (the last one given); a NUL in it is a 400 (PostgreSQL text cannot
        hold NUL: it would reach SQL as a 500)."""
        return _no_nul(name, self.request.query_params.get(name))

    def qlist(self, name: str) -> list[str]:
        values = self.request.query_params.getlist(name) + self.request.query_params.getlist(name + "[]")
        return [_no_nul(name, v) for v in values]

    def qbool(self, name: str, default: bool = False) -> bool:
        return parse_bool(self.q(name), default)

    def qint(self, name: str, default: int, *, lo: int = 0, hi: int = 1 << 62) -> int:
        raw = self.q(name)
        if raw is None or raw == "":
            return default
        if not _INT.fullmatch(raw):  # not isdigit(): it accepts '²', and '--5' passed lstrip
            raise UsageError(f"query parameter {name} must be an integer")
        return max(lo, min(hi, int(raw)))

    def cursor(self) -> int:
        raw = self.q("cursor")
        if not raw:
            return 0
        try:
            value = json.loads(base64.urlsafe_b64decode(raw.encode() + b"==").decode())
        except (ValueError, RecursionError):
            raise UsageError("invalid cursor") from None
        if not isinstance(value, int) or not 0 <= value < MAX_CURSOR:
            raise UsageError("invalid cursor")
        return value

    # -- URLs ------------------------------------------------------------------------------------------
    def base_url(self) -> str:
        """scheme://host[:port][/prefix] as the client sees us (spec §1.1)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        headers = self.request.headers
        scheme = headers.get("x-forwarded-proto", self.request.url.scheme).split(",")[0].strip()
        host = headers.get("x-forwarded-host", headers.get("host", "")).split(",")[0].strip()
        if not host:
            host = f"{self.request.url.hostname}:{self.request.url.port}"
        return f"{scheme}://{host}{self.request.scope.get('root_path', '')}".rstrip("/")

    def next_link(self, offset: int) -> str:
        """A ``Link`` header value pointing at the same request with ``cursor`` set to ``offset``."""
        cursor = base64.urlsafe_b64encode(json.dumps(offset).encode()).decode().rstrip("=")
        items = [(k, v) for k, v in self.request.query_params.multi_items() if k != "cursor"]
        items.append(("cursor", cursor))
        from urllib.parse import urlencode

        raw_path = self.request.scope.get("raw_path", b"").decode("latin-1") or self.request.url.path
        root = str(self.request.scope.get("root_path", ""))
        if root and raw_path.startswith(root):
            raw_path = raw_path[len(root) :]
        return f'<{self.base_url()}{raw_path}?{urlencode(items)}>; rel="next"'

    def repo_url(self, repo: Repo) -> str:
        return f"{self.base_url()}/{PREFIX[repo.type]}{repo.repo_id}"

    # -- common lookups --------------------------------------------------------------------------------
    async def repo(self, *, write: bool = False, content: bool = False, manage: bool = False) -> Repo:
        """The repo of this request, checked for visibility, write (or ``manage``: admin) access, and
        (``content``) gating."""
        repo = await self.call(
            self.registry.repos.get,
            self.params["type"],
            self.params["ns"],
            self.params["name"],
            self.principal,
            write=write,
            manage=manage,
        )
        if content:
            await self.call(self.registry.repos.check_content_access, repo, self.principal)
        return repo
