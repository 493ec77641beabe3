"""Validation of every name a user chooses: repo paths, repo and user names, branch and tag names."""

from __future__ import annotations

import re

from cairn.registry.errors import InvalidNameError, InvalidPathError

__all__ = ["MAX_PATH", "MAX_PATH_DEPTH", "check_name", "check_path", "check_ref_name", "is_commit_id"]

MAX_PATH = 1024
MAX_PATH_DEPTH = 64  # segments; bounds the per-path work of the file/folder clash check
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")  # C0, DEL, C1 controls; backslash


def is_commit_id(value: str) -> bool:
    return bool(_HEX40.fullmatch(value))


def check_name(what: str, name: str) -> str:
    """A user, namespace or repo name: letters, digits, ``.``, ``_``, ``-``; at most 96; no ``..``."""
    if not _NAME.fullmatch(name):
        raise InvalidNameError(what, name, "use 1-96 letters, digits, '.', '_' or '-', starting alphanumeric")
    if ".." in name or "--" in name or name.endswith((".", ".git")):
        raise InvalidNameError(what, name, "must not contain '..' or '--' or end with '.' or '.git'")
    return name


def check_path(path: str) -> str:
    """A file path inside a repo: relative, ``/``-separated, no ``.``/``..`` parts, no control
    characters or backslashes, at most 1024 bytes and 64 segments. Returned unchanged when valid."""
    if not path:
        raise InvalidPathError(path, "empty")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise InvalidPathError(path, f"longer than {MAX_PATH} bytes")
    if _BAD_CHARS.search(path):
        raise InvalidPathError(path, "contains a control character, NUL or backslash")
    if path.startswith("/"):
        raise InvalidPathError(path, "absolute paths are not allowed")
    if path.count("/") >= MAX_PATH_DEPTH:
        raise InvalidPathError(path, f"deeper than {MAX_PATH_DEPTH} segments")
    for part in path.split("/"):
        if part in {"", ".", ".."}:
            raise InvalidPathError(path, "empty, '.' or '..' path segment")
        if part == ".git":
            raise InvalidPathError(path, "'.git' is reserved")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPathError(path, "not valid UTF-8") from None
    return path


def check_ref_name(what: str, name: str) -> str:
    """A branch or tag name (may contain ``/``); never a 40-hex string, which would shadow commit ids."""
    if not name or len(name) > 200:
        raise InvalidNameError(what, name, "must be 1-200 characters")
    if _BAD_CHARS.search(name) or any(c in name for c in " ~^:?*[") or ".." in name:
        raise InvalidNameError(what, name, "contains a character git does not allow in ref names")
    if name.startswith(("/", "-", "refs/")) or name.endswith(("/", ".lock", ".")) or "//" in name:
        raise InvalidNameError(what, name, "bad '/' or reserved prefix/suffix")
    if is_commit_id(name):
        raise InvalidNameError(what, name, "looks like a commit id")
    return name
