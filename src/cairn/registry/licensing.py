"""The governance license check on every commit: hub repos as :mod:`cairn.governance` model sources.

:class:`HubSource` reads one revision's files from the blob store by the sha256s of its tree (size-limited,
UTF-8 only); :class:`HubResolver` resolves a card's ``base_model`` reference to the ``main`` of a public
model repo on this hub (anything else is "parent not found", which governance reports as needing
review). :func:`license_check` runs :func:`cairn.governance.policy.check_model` and applies the server's
:class:`~cairn.governance.policy.LicensePolicy` (default ``warn``: record and show; ``block`` refuses the
commit with :class:`~cairn.governance.policy.PolicyViolationError`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cairn.governance.lineage import MAX_TEXT_BYTES, ModelSource
from cairn.registry.models import FileEntry
from cairn.store import BlobStore

__all__ = ["HubResolver", "HubSource", "license_check"]


@dataclass(frozen=True)
class HubSource:
    """One revision of a hub repo, read through its tree's content hashes."""

    ident: str
    tree: Mapping[str, FileEntry]
    store: BlobStore

    def list_files(self) -> list[str]:
        return sorted(self.tree)

    def read_text(self, name: str, *, limit: int = MAX_TEXT_BYTES) -> str | None:
        entry = self.tree.get(name)
        if entry is None or entry.size > limit:
            return None
        try:
            return b"".join(self.store.iter_range(entry.sha256)).decode("utf-8")
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True)
class HubResolver:
    """Resolves ``namespace/name`` to the ``main`` tree of a public model repo on this hub."""

    store: BlobStore
    lookup: Callable[[str], Mapping[str, FileEntry] | None]

    def resolve(self, ref: str, *, child: ModelSource) -> ModelSource:
        from cairn.governance.errors import ParentNotFoundError

        tree = self.lookup(ref) if ref.count("/") == 1 else None
        if tree is None:
            raise ParentNotFoundError(ref, child=child.ident)
        return HubSource(ref, tree, self.store)


def license_check(
    repo_id: str,
    tree: Mapping[str, FileEntry],
    store: BlobStore,
    lookup: Callable[[str], Mapping[str, FileEntry] | None],
    policy: Any,
) -> dict[str, Any] | None:
    """The license report of ``tree`` (``None`` without a README.md) with the policy's decision; raises
    :class:`~cairn.governance.policy.PolicyViolationError` when the policy blocks."""
    if "README.md" not in tree:
        return None
    from cairn.errors import CairnError
    from cairn.governance.policy import check_model, enforce

    try:
        report = check_model(HubSource(repo_id, tree, store), HubResolver(store, lookup))
    except CairnError as err:  # a broken card must not break the commit: report it instead
        return {"status": "error", "message": str(err)[:500], "code": err.code}
    decision = enforce(report, policy)
    out = report.to_dict()
    out["decision"] = {"action": decision.action, "reasons": list(decision.reasons)}
    return out
