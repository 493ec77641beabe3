"""Two weight fingerprints compared tensor by tensor: identical bytes, changed values (with the cosine
similarity of their value sketches), a new dtype or shape, added and removed names, and what the new
weights are to the old as a whole. The hub's commit and compare pages and ``cairn diff`` between hub
revisions use it; neither side's weights are read, only the fingerprints taken when they were stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from cairn.governance.fingerprint import Fingerprint, TensorPrint, compare, sketch_cosine

__all__ = ["MAX_TENSOR_CHANGES", "TensorChange", "TensorDiff", "diff_fingerprints"]

#: tensor changes listed (the counts are always complete)
MAX_TENSOR_CHANGES = 2000

TensorStatus = Literal["added", "removed", "retyped", "changed"]
_ORDER = {"removed": 0, "added": 1, "retyped": 2, "changed": 3}


@dataclass(frozen=True)
class TensorChange:
    name: str
    status: TensorStatus
    old: TensorPrint | None
    new: TensorPrint | None
    similarity: float | None = None  # sketch cosine, for "changed" tensors whose sketches compare

    def to_dict(self) -> dict[str, Any]:
        def side(t: TensorPrint | None) -> dict[str, Any] | None:
            return None if t is None else {"dtype": t.dtype, "shape": list(t.shape), "nbytes": t.nbytes}

        return {"name": self.name, "status": self.status, "old": side(self.old), "new": side(self.new),
                "similarity": self.similarity}  # fmt: skip


@dataclass(frozen=True)
class TensorDiff:
    counts: dict[str, int]  # identical, changed, retyped, added, removed
    identical_bytes: int
    changes: list[TensorChange]  # the first MAX_TENSOR_CHANGES, removed/added/retyped/changed by name
    relation: str | None = None  # the new weights against the old: copy, finetune, partial-update...
    not_fingerprinted: list[str] = field(default_factory=list)  # weight files without a fingerprint

    @property
    def truncated(self) -> bool:
        return sum(v for k, v in self.counts.items() if k != "identical") > len(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "identicalBytes": self.identical_bytes,
            "changes": [c.to_dict() for c in self.changes],
            "truncated": self.truncated,
            "relation": self.relation,
            "notFingerprinted": self.not_fingerprinted,
        }


def diff_fingerprints(old: Fingerprint, new: Fingerprint) -> TensorDiff:
    """Tensor by tensor: identical bytes, changed values (with the sketches' cosine similarity), a new
    dtype or shape (``retyped``), added and removed names; and what the new weights are to the old as a
    whole (:func:`cairn.governance.fingerprint.compare`: ``copy``, ``quantized``, ``partial-update``,
    ``finetune``, ``weakly-related``, ``unrelated``)."""
    changes: list[TensorChange] = []
    identical = identical_bytes = 0
    for name, t in new.tensors.items():
        was = old.tensors.get(name)
        if was is None:
            changes.append(TensorChange(name, "added", None, t))
        elif was.dtype != t.dtype or was.shape != t.shape:
            changes.append(TensorChange(name, "retyped", was, t))
        elif was.sha256 == t.sha256:
            identical += 1
            identical_bytes += t.nbytes
        else:
            similar = sketch_cosine(was.sketch, t.sketch) if was.sketch and t.sketch else None
            changes.append(TensorChange(name, "changed", was, t, similar))
    changes += [TensorChange(n, "removed", t, None) for n, t in old.tensors.items() if n not in new.tensors]
    counts = Counter(c.status for c in changes)
    changes.sort(key=lambda c: (_ORDER[c.status], c.name))
    return TensorDiff(
        counts={"identical": identical, **{k: counts[k] for k in ("changed", "retyped", "added", "removed")}},
        identical_bytes=identical_bytes,
        changes=changes[:MAX_TENSOR_CHANGES],
        relation=compare(new, old).verdict if old.tensors and new.tensors else None,
    )
