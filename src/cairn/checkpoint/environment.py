"""Automatic metadata: code version (git), environment (Python, libraries, device), wall time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from cairn.checkpoint.tensors import torch_or_none

__all__ = ["class_path", "code_version", "collect", "dataset", "environment"]

_LIBRARIES = ("cairn", "numpy", "safetensors", "torch", "transformers", "accelerate", "jax")
_GIT_TTL = 60.0
_git_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version(cwd: Path | None = None) -> dict[str, Any]:
    """git commit, dirty flag and branch of the working tree around ``cwd`` (None where unknown)."""
    where = (cwd or Path.cwd()).resolve()
    cached = _git_cache.get(str(where))
    if cached and time.monotonic() - cached[0] < _GIT_TTL:
        return dict(cached[1])
    commit = _git(["rev-parse", "HEAD"], where)
    status = _git(["status", "--porcelain", "--untracked-files=no"], where) if commit else None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], where) if commit else None
    info = {"git_commit": commit, "git_dirty": None if status is None else bool(status), "git_branch": branch}
    _git_cache[str(where)] = (time.monotonic(), info)
    return dict(info)


def environment() -> dict[str, Any]:
    libraries = {}
    for name in _LIBRARIES:
        if name in {"torch", "transformers", "accelerate", "jax"} and name not in sys.modules:
            continue
        try:
            libraries[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    device: dict[str, Any] = {"type": "cpu"}
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        device = {
            "type": "cuda",
            "count": torch.cuda.device_count(),
            "name": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda,
        }
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": libraries,
        "device": device,
    }


def class_path(model: Any) -> str | None:
    """``module:QualName`` of a model object (informative only: cairn never imports it on load)."""
    if model is None or isinstance(model, Mapping):
        return None
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def dataset(path: str | Path, *, name: str | None = None, split: str | None = None) -> dict[str, Any]:
    """A ``datasets`` metadata entry for a local file or directory, with its content hash.

    A directory's hash is the sha256 over its files' relative paths and sha256s, in sorted order.
    """
    from cairn.format.hashing import sha256_file

    p = Path(path)
    if p.is_dir():
        outer = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            outer.update(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)[1]}\n".encode())
        digest = outer.hexdigest()
    else:
        digest = sha256_file(p)[1]
    entry: dict[str, Any] = {"name": name or p.name, "uri": p.resolve().as_uri(), "sha256": digest}
    if split is not None:
        entry["split"] = split
    return entry


def collect(
    user: Mapping[str, Any] | None,
    *,
    step: int | None = None,
    capture: bool = True,
    model: Any = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge user metadata with the automatic fields. User values win, except ``wall_time.saved_at``."""
    meta: dict[str, Any] = {}
    if capture:
        meta["code"] = code_version()
        meta["environment"] = environment()
    if (path := class_path(model)) is not None:
        meta["class_path"] = path
    meta.update(dict(defaults or {}))
    meta.update(dict(user or {}))
    if step is not None:
        meta["step"] = step
    wall = dict(meta.get("wall_time") or {})
    wall["saved_at"] = _dt.datetime.now(_dt.UTC).isoformat().replace("+00:00", "Z")
    meta["wall_time"] = wall
    return meta
