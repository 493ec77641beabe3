"""Automatic metadata: code version (git), environment (Python, libraries, device), wall time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from cairn.checkpoint.tensors import torch_or_none

__all__ = ["code_version", "collect", "environment"]

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


def collect(
    user: Mapping[str, Any] | None, *, step: int | None = None, capture: bool = True
) -> dict[str, Any]:
    """Merge user metadata with the automatic fields. User values win, except ``wall_time.saved_at``."""
    meta: dict[str, Any] = {}
    if capture:
        meta["code"] = code_version()
        meta["environment"] = environment()
    meta.update(dict(user or {}))
    if step is not None:
        meta["step"] = step
    wall = dict(meta.get("wall_time") or {})
    wall["saved_at"] = _dt.datetime.now(_dt.UTC).isoformat().replace("+00:00", "Z")
    meta["wall_time"] = wall
    return meta
