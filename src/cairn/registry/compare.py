"""What changed between two revisions of a repo: files added, removed and modified, and, for model
weights, tensor by tensor from the fingerprints taken on upload (never by reading the weights again).

The tensor comparison is over each revision's *merged* weight fingerprint (top-level weight files, as
:meth:`~cairn.registry.lineage.LineageService.tree_fingerprint` picks them), so resharding a checkpoint
or moving from ``pytorch_model.bin`` to ``model.safetensors`` shows as what it is for the weights: the
same tensors, not one file removed and others added. A tensor is ``identical`` when the sha256 of its
bytes (C order, little-endian) is unchanged; ``changed`` tensors carry the cosine similarity of their
value sketches (64 evenly spaced elements), an estimate of how far they moved.

Text files are compared line by line (:func:`text_diff`) when both sides are small enough to read.
Everything is bounded: at most :data:`MAX_FILES` file changes and
:data:`~cairn.governance.fingerprint_diff.MAX_TENSOR_CHANGES` tensor changes are listed (the counts are
always complete), and a text diff reads at most :data:`TEXT_BYTES` per side, compares at most
:data:`TEXT_INPUT_LINES` lines of each and prints at most :data:`TEXT_LINES` lines.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cairn.governance.fingerprint import Fingerprint
from cairn.governance.fingerprint_diff import TensorDiff, diff_fingerprints
from cairn.registry.models import FileEntry

if TYPE_CHECKING:
    from cairn.registry.service import Registry

__all__ = [
    "MAX_FILES",
    "TEXT_BYTES",
    "TEXT_INPUT_LINES",
    "TEXT_LINES",
    "FileChange",
    "RevisionDiff",
    "compare_revisions",
    "diff_trees",
    "text_diff",
    "text_diffable",
]

MAX_FILES = 1000
TEXT_BYTES = 256 * 1024
TEXT_LINES = 2000
#: the most lines per side handed to difflib: its matching is quadratic in the worst case (two
#: 2,000-line files that differ on every other line take 0.2 s; 5,000 lines took 1.2 s)
TEXT_INPUT_LINES = 2000

FileStatus = Literal["added", "removed", "modified"]
_ORDER = {"removed": 0, "added": 1, "modified": 2}


@dataclass(frozen=True)
class FileChange:
    path: str
    status: FileStatus
    old: FileEntry | None
    new: FileEntry | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "oldSize": None if self.old is None else self.old.size,
            "newSize": None if self.new is None else self.new.size,
            "oldOid": None if self.old is None else self.old.etag,
            "newOid": None if self.new is None else self.new.etag,
            "lfs": any(e is not None and e.lfs for e in (self.old, self.new)),
        }


@dataclass(frozen=True)
class RevisionDiff:
    base: str
    head: str
    files: list[FileChange]  # the first MAX_FILES, removed/added/modified by path
    counts: dict[str, int]  # added, removed, modified, unchanged
    tensors: TensorDiff | None  # None when neither revision has fingerprinted model weights

    @property
    def truncated(self) -> bool:
        return self.counts["added"] + self.counts["removed"] + self.counts["modified"] > len(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "counts": self.counts,
            "files": [f.to_dict() for f in self.files],
            "truncated": self.truncated,
            "tensors": None if self.tensors is None else self.tensors.to_dict(),
        }


def diff_trees(old: Sequence[FileEntry], new: Sequence[FileEntry]) -> tuple[list[FileChange], dict[str, int]]:
    """The file changes from ``old`` to ``new`` (a file is modified when its content hash differs) and
    the counts of each kind, ``unchanged`` included."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    changes: list[FileChange] = []
    unchanged = 0
    for path, entry in after.items():
        was = before.get(path)
        if was is None:
            changes.append(FileChange(path, "added", None, entry))
        elif was.sha256 != entry.sha256:
            changes.append(FileChange(path, "modified", was, entry))
        else:
            unchanged += 1
    changes += [FileChange(path, "removed", e, None) for path, e in before.items() if path not in after]
    counts = Counter(c.status for c in changes)
    changes.sort(key=lambda c: (_ORDER[c.status], c.path))
    return changes[:MAX_FILES], {
        "added": counts["added"],
        "removed": counts["removed"],
        "modified": counts["modified"],
        "unchanged": unchanged,
    }


def compare_revisions(reg: Registry, base: str, head: str) -> RevisionDiff:
    """Files and weights changed from commit ``base`` to commit ``head`` (ids already resolved and
    access-checked by the caller)."""
    old, new = reg.commits.files(base), reg.commits.files(head)
    files, counts = diff_trees(old, new)
    old_fp, old_missing = reg.lineage.tree_fingerprint(old)
    new_fp, new_missing = reg.lineage.tree_fingerprint(new)
    tensors: TensorDiff | None = None
    if old_fp is not None or new_fp is not None or old_missing or new_missing:
        found = diff_fingerprints(old_fp or Fingerprint({}), new_fp or Fingerprint({}))
        missing = sorted(set(old_missing) | set(new_missing))
        tensors = dataclasses.replace(found, not_fingerprinted=missing)
    return RevisionDiff(base, head, files, counts, tensors)


def text_diffable(change: FileChange) -> bool:
    """Whether :func:`text_diff` may diff this change: no side is an LFS file or larger than
    :data:`TEXT_BYTES` (decided from the tree, before any byte is read)."""
    return all(e is None or (not e.lfs and e.size <= TEXT_BYTES) for e in (change.old, change.new))


def text_diff(reg: Registry, change: FileChange) -> list[str] | None:
    """A unified diff of a text file's two sides (an added or removed file against nothing) over their
    first :data:`TEXT_INPUT_LINES` lines, at most :data:`TEXT_LINES` lines; None when the change is not
    :func:`text_diffable` or a side is not text (a NUL byte in its first 8 KiB)."""
    if not text_diffable(change):
        return None
    sides: list[list[str]] = []
    cut = False
    for entry in (change.old, change.new):
        if entry is None:
            sides.append([])
            continue
        raw = reg.read_blob(entry.sha256, TEXT_BYTES)
        if raw is None or b"\0" in raw[:8192]:
            return None
        text = raw.decode("utf-8", "replace").splitlines()
        cut = cut or len(text) > TEXT_INPUT_LINES
        sides.append(text[:TEXT_INPUT_LINES])
    lines = difflib.unified_diff(sides[0], sides[1], "a/" + change.path, "b/" + change.path, lineterm="", n=3)
    out: list[str] = []
    for line in lines:
        if len(out) == TEXT_LINES:
            out.append(f"… diff cut at {TEXT_LINES} lines")
            break
        out.append(line)
    if cut:
        out.append(f"… only the first {TEXT_INPUT_LINES} lines of each side were compared")
    return out
