"""Hub repositories as governance sources: the license check, lineage, card, BOM and openness commands
read a repo at a revision through the Hugging Face API, never downloading its weights.

:class:`RemoteSource` pins ``org/name[@rev]`` to its commit id, lists the commit's files (tree API) and
reads only small text files (card, LICENSE/NOTICE, config, ``cairn.json``) through ``resolve``, each
bounded by the caller's limit. :class:`RemoteResolver` resolves a ``base_model`` reference to such a
source; :class:`ChainResolver` tries resolvers in order, so that a lineage can run from a local
fine-tune to its hub base and on from hub repo to hub repo. A parent the hub does not show (404, a
private repo, 401/403, an unreachable hub) becomes :class:`~cairn.governance.errors.ParentNotFoundError`
with the reason, which the license check reports as "needs review".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cairn.client.cache import FileSpec
from cairn.client.errors import HubResponseError
from cairn.client.http import HubSession, quote_rev
from cairn.client.listing import list_files, resolve_commit
from cairn.client.refs import RepoRef, parse_repo_ref
from cairn.errors import CairnError, UsageError
from cairn.governance.errors import ParentNotFoundError

if TYPE_CHECKING:
    from cairn.governance.fingerprint import Fingerprint
    from cairn.governance.lineage import ModelSource, Resolver

__all__ = ["ChainResolver", "RemoteResolver", "RemoteSource", "fetch_fingerprint", "open_remote_source"]

_MAX_TEXT = 1 << 20


@dataclass
class RemoteSource:
    """One repo revision on a hub, pinned to its commit (a ``ModelSource``)."""

    session: HubSession
    ref: RepoRef
    commit: str
    files: dict[str, FileSpec] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return str(self.ref)

    @property
    def url(self) -> str:
        return f"{self.session.endpoint}/{self.ref.repo_id}"

    def list_files(self) -> list[str]:
        """Top-level files, as a local directory lists them."""
        return sorted(p for p in self.files if "/" not in p)

    def sha256s(self) -> dict[str, str]:
        """sha256 of the top-level files whose digest the listing gives (LFS files) or that are small
        enough to read (at most 1 MiB); larger non-LFS files are left out."""
        import hashlib

        out: dict[str, str] = {}
        for name in self.list_files():
            spec = self.files[name]
            if spec.sha256 is not None:
                out[name] = spec.sha256
                continue
            data = self.read_bytes(name, limit=_MAX_TEXT)
            if data is not None:
                out[name] = hashlib.sha256(data).hexdigest()
        return out

    def read_bytes(self, name: str, *, limit: int = _MAX_TEXT) -> bytes | None:
        spec = self.files.get(name)
        if spec is None or spec.size > limit:
            return None
        path = "/".join(quote_rev(p) for p in name.split("/"))
        response = self.session.request(
            "GET", f"/{self.ref.repo_id}/resolve/{self.commit}/{path}", limit=limit
        )
        return response.content

    def read_text(self, name: str, *, limit: int = _MAX_TEXT) -> str | None:
        data = self.read_bytes(name, limit=limit)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def open_remote_source(session: HubSession, reference: str | RepoRef) -> RemoteSource:
    """Pin ``org/name[@rev]`` to a commit and list it. Hub errors propagate typed (not found, denied,
    unreachable)."""
    ref = parse_repo_ref(reference) if isinstance(reference, str) else reference
    commit = resolve_commit(session, ref)
    files = {spec.path: spec for spec in list_files(session, ref, commit)}
    return RemoteSource(session, ref, commit, files)


def fetch_fingerprint(session: HubSession, reference: str | RepoRef) -> tuple[str, Fingerprint, list[str]]:
    """(commit id, the revision's merged weight fingerprint, weight files the hub has no fingerprint
    of) from a cairn hub's ``/fingerprint`` route: the weights themselves are never downloaded. A hub
    without the route (not cairn) answers 404, a typed error."""
    from cairn.governance.fingerprint import Fingerprint

    ref = parse_repo_ref(reference) if isinstance(reference, str) else reference
    commit = resolve_commit(session, ref)
    data = session.json("GET", f"/api/models/{ref.repo_id}/fingerprint/{commit}")
    if not isinstance(data, dict):
        raise HubResponseError(f"hub gave no fingerprint object for {ref}", url=session.endpoint)
    missing = data.get("notFingerprinted") or []
    if not isinstance(missing, list):
        raise HubResponseError(f"hub gave a malformed fingerprint for {ref}", url=session.endpoint)
    return commit, Fingerprint.from_dict(data.get("tensors") or {}), [str(m) for m in missing]


@dataclass
class RemoteResolver:
    """Resolves ``base_model`` references of the form ``org/name[@rev]`` on one hub."""

    session: HubSession
    _cache: dict[str, RemoteSource] = field(default_factory=dict)

    def resolve(self, ref: str, *, child: ModelSource) -> ModelSource:
        try:
            parsed = parse_repo_ref(ref.strip())
        except UsageError:
            raise ParentNotFoundError(
                ref[:200], child=child.ident, reason="not a hub repository id"
            ) from None
        key = str(parsed)
        if key not in self._cache:
            try:
                self._cache[key] = open_remote_source(self.session, parsed)
            except CairnError as err:  # 404, private, 401/403, unreachable, a broken answer
                raise ParentNotFoundError(
                    ref, child=child.ident, reason=f"{self.session.endpoint}: {err.message}"
                ) from None
        return self._cache[key]


@dataclass(frozen=True)
class ChainResolver:
    """Tries each resolver in order; the reasons of all failures are kept in the final error."""

    resolvers: Sequence[Resolver]

    def resolve(self, ref: str, *, child: ModelSource) -> ModelSource:
        reasons = []
        for resolver in self.resolvers:
            try:
                return resolver.resolve(ref, child=child)
            except ParentNotFoundError as err:
                if err.reason:
                    reasons.append(err.reason)
        raise ParentNotFoundError(ref, child=child.ident, reason="; ".join(reasons) or None)
