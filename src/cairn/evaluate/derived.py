"""Reading a derived (threshold-mitigated) artifact back: its thresholds, its base, and lineage checks.

A derived directory holds ``thresholds.json`` but no weights. To predict with it, the base named in its
lineage (a sibling directory) supplies the scores, and the per-group thresholds turn them into labels.
Before the base's model is run, every base file recorded in the lineage is re-hashed: a base that
changed since mitigation raises :class:`~cairn.errors.IntegrityError` instead of silently giving other
predictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, IntegrityError, LimitExceededError, NotFoundError
from cairn.evaluate.mitigation import GroupThresholds
from cairn.evaluate.record import THRESHOLDS_FILE, file_digests

__all__ = ["Derived", "load_derived", "verify_base"]

_MAX_BYTES = 16 << 20


@dataclass(frozen=True)
class Derived:
    """A threshold-mitigated artifact: rules, the seed its predictions are drawn with, and its base."""

    path: Path
    thresholds: GroupThresholds
    random_state: int
    base: Path
    base_files: dict[str, str]


def load_derived(root: Path) -> Derived | None:
    """The derived artifact in ``root``, or None when ``root`` has no ``thresholds.json``."""
    path = root / THRESHOLDS_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > _MAX_BYTES:
        raise LimitExceededError(f"{THRESHOLDS_FILE} is over {_MAX_BYTES} bytes", path=path)
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"not JSON: {err}", path=path) from err
    if not isinstance(doc, dict) or doc.get("schema") != "cairn.thresholds/1":
        raise FormatError("not a cairn.thresholds/1 document", path=path)
    lineage = doc.get("lineage")
    if not isinstance(lineage, dict):
        raise FormatError("thresholds.json has no lineage", path=path)
    base = lineage.get("base")
    if not isinstance(base, str) or not base or base in {".", ".."} or "/" in base or "\\" in base:
        raise FormatError(f"lineage base must be a plain directory name, got {base!r}", path=path)
    files = lineage.get("base_files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise FormatError("lineage base_files must map file names to sha256", path=path)
    seed = doc.get("random_state", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise FormatError(f"random_state must be an integer in [0, 2**32), got {seed!r}", path=path)
    return Derived(
        path=root,
        thresholds=GroupThresholds.from_dict(doc.get("thresholds")),
        random_state=seed,
        base=root.resolve().parent / base,
        base_files={str(k): v for k, v in files.items()},
    )


def verify_base(derived: Derived) -> None:
    """Raise unless the base directory still holds exactly the files the lineage recorded."""
    if not derived.base.is_dir():
        raise NotFoundError(f"base {derived.base} of {derived.path} does not exist")
    actual = file_digests(derived.base)
    for name in sorted(set(derived.base_files) | set(actual)):
        expected, got = derived.base_files.get(name), actual.get(name)
        if expected != got:
            raise IntegrityError(derived.base / name, what="sha256", expected=expected, actual=got)
