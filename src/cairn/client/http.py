"""The HTTP session of the client: one ``httpx.Client`` per operation, the bearer token, a cairn
user-agent, and every non-2xx answer turned into a typed error (:mod:`cairn.client.errors`).

The token is only ever sent to the configured endpoint: URLs the hub hands back (pagination links,
upload hrefs) are checked against its origin before they are fetched with credentials.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from cairn import __version__
from cairn.client.errors import HubResponseError, error_from_response
from cairn.errors import CairnError

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_ERROR_BYTES", "MAX_JSON_BYTES", "HubConnectionError", "HubSession", "parse_json", "quote_rev"]

MAX_JSON_BYTES = 64 << 20
MAX_ERROR_BYTES = 64 << 10
_MAX_REDIRECTS = 5


def quote_rev(rev: str) -> str:
    return quote(rev, safe="")


class HubConnectionError(CairnError):
    code = "hub_unreachable"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the hub at {url}: {detail}")
        self.url = url


class HubSession:
    """Requests against one hub endpoint. Use as a context manager; safe to share between threads."""

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        deadline: float = 300.0,
        min_rate: int = 1024,
        rate_window: float = 60.0,
    ) -> None:
        """``timeout`` bounds each read, ``deadline`` a whole JSON/error answer; a download fails when
        fewer than ``min_rate`` bytes arrive in any ``rate_window`` seconds (a dripping server)."""
        import httpx

        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            from cairn.errors import UsageError

            raise UsageError(f"hub endpoint must be an http(s) URL, not {endpoint!r}")
        self.origin = (parts.scheme, parts.netloc)
        self.token = token
        self.deadline = deadline
        self.min_rate = min_rate
        self.rate_window = rate_window
        headers = {"user-agent": f"cairn/{__version__}"}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=15.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    def __enter__(self) -> HubSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return self.endpoint + path

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self.origin

    def _next_hop(self, method: str, full: str, response: httpx.Response, hops: int) -> str | None:
        """Where to go after a redirect: only for reads, only on the hub's own origin (how a moved
        repository answers its old name), at most ``_MAX_REDIRECTS`` times; else ``None``."""
        if response.status_code not in (301, 302, 303, 307, 308) or method not in ("GET", "HEAD"):
            return None
        target = urljoin(full, response.headers.get("location", ""))
        return target if hops < _MAX_REDIRECTS and self.same_origin(target) else None

    def request(
        self, method: str, url: str, *, auth: bool = True, limit: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request (``url`` absolute or a path), raise the typed error for a non-2xx answer.
        The body is read as it streams in and refused past ``limit`` bytes or ``self.deadline``
        seconds, so a hostile answer can neither exhaust memory nor hang the caller."""
        import httpx

        full = url if url.startswith(("http://", "https://")) else self.url(url)
        extra = kwargs.pop("headers", None)
        start = time.monotonic()
        for hops in range(_MAX_REDIRECTS + 1):
            try:
                with self.client.stream(
                    method, full, headers=self._headers(full, auth, extra), **kwargs
                ) as response:
                    target = self._next_hop(method, full, response, hops)
                    if target is None:
                        cap = MAX_ERROR_BYTES if response.status_code >= 300 else limit or MAX_JSON_BYTES
                        body = self._read_bounded(response, cap, start, full)
                        break
                    full = target
            except httpx.TransportError as err:
                raise HubConnectionError(full, f"{type(err).__name__}: {err}") from None
        self.raise_for_status(response, body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=response.request
        )

    def _read_bounded(self, response: httpx.Response, limit: int, start: float, url: str) -> bytes:
        """The body, or ``HubResponseError`` once it passes ``limit`` bytes or the deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                if response.status_code >= 300:  # an error body is only read for its message
                    break
                raise HubResponseError(f"hub answer larger than {limit} bytes", url=url)
            chunks.append(chunk)
            if time.monotonic() - start > self.deadline:
                raise HubResponseError(f"hub answer took longer than {self.deadline:g} s", url=url)
        return b"".join(chunks)

    def iter_download(self, response: httpx.Response, url: str) -> Iterator[bytes]:
        """The chunks of a download, failing (``HubConnectionError``, so the caller resumes) when fewer
        than ``min_rate`` bytes arrived within ``rate_window`` seconds."""
        window_start, window_bytes = time.monotonic(), 0
        for chunk in response.iter_bytes():
            window_bytes += len(chunk)
            now = time.monotonic()
            if now - window_start >= self.rate_window:
                if window_bytes < self.min_rate:
                    raise HubConnectionError(
                        url, f"transfer slower than {self.min_rate} bytes per {self.rate_window:g} s"
                    )
                window_start, window_bytes = now, 0
            yield chunk

    @contextmanager
    def stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        import httpx

        full = url if url.startswith(("http://", "https://")) else self.url(url)
        extra = kwargs.pop("headers", None)
        try:
            for hops in range(_MAX_REDIRECTS + 1):
                with self.client.stream(
                    method, full, headers=self._headers(full, True, extra), **kwargs
                ) as response:
                    target = self._next_hop(method, full, response, hops)
                    if target is not None:
                        full = target
                        continue
                    if response.status_code >= 300:
                        body = self._read_bounded(response, MAX_ERROR_BYTES, time.monotonic(), full)
                        self.raise_for_status(response, body)
                    yield response
                    return
        except httpx.TransportError as err:
            raise HubConnectionError(full, f"{type(err).__name__}: {err}") from None

    def _headers(self, url: str, auth: bool, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if auth and self.token and self.same_origin(url):  # the token goes to the hub itself, nowhere else
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    @staticmethod
    def raise_for_status(response: httpx.Response, body: bytes = b"") -> None:
        if response.status_code < 300:
            return
        url = str(response.request.url).split("?", 1)[0]
        if 300 <= response.status_code < 400:
            raise HubResponseError(f"unexpected redirect HTTP {response.status_code}", url=url)
        raise error_from_response(response.status_code, response.headers, body[:MAX_ERROR_BYTES], url)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The JSON body of a request, bounded in size and checked to parse."""
        return parse_json(self.request(method, url, **kwargs))


def parse_json(response: httpx.Response) -> Any:
    """The JSON of an answer already read by :meth:`HubSession.request` (so already bounded)."""
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        raise HubResponseError(
            "hub answered with something that is not JSON", url=str(response.url)
        ) from None
