"""``push``: upload a directory as ONE commit through the Hugging Face protocol (spec §7), never Xet.

Order of work: walk the directory → hash every file (sha256 and git blob SHA-1, in parallel) →
``preupload`` asks the hub which files go ``regular`` (inlined in the commit) and which ``lfs``, and
which are already there unchanged → the LFS batch API hands out upload URLs for the objects it lacks
(objects it already stores get none: they are skipped) → parallel ``PUT``s of the raw bytes, each
``verify``-ed → one NDJSON commit naming every file, with the preupload's commit as ``parentCommit`` so
a branch that moved in between gives a conflict instead of a silent overwrite.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.client.cache import file_digests
from cairn.client.errors import HubResponseError, RevisionNotFoundError
from cairn.client.http import HubSession, quote_rev
from cairn.client.progress import Progress, silent
from cairn.client.refs import RepoRef, check_repo_path, is_commit_id
from cairn.errors import ConflictError, NotFoundError, UsageError

__all__ = ["PushResult", "PushedFile", "push", "scan_directory"]

_BATCH = 256
_SKIP_DIRS = {".git", ".cache"}


@dataclass(frozen=True)
class PushedFile:
    path: str
    size: int
    sha256: str
    mode: str  # "regular" | "lfs"
    status: str  # "uploaded" | "inlined" | "deduplicated" (hub had the bytes) | "unchanged"


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    revision: str
    commit: str  # the new commit, or the current head when nothing changed
    committed: bool
    files: tuple[PushedFile, ...]

    @property
    def uploaded_bytes(self) -> int:
        return sum(f.size for f in self.files if f.status in ("uploaded", "inlined"))

    def to_dict(self) -> dict[str, object]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "committed": self.committed,
            "uploaded_bytes": self.uploaded_bytes,
            "files": [vars(f) for f in self.files],
        }


@dataclass(frozen=True)
class _Local:
    path: str
    file: Path
    size: int
    sha256: str
    git_sha1: str


def scan_directory(root: Path) -> list[tuple[str, Path]]:
    """(repo path, file) for every regular file below ``root``, skipping ``.git`` and ``.cache``.
    Symlinks are refused: what a link points to is not obviously part of the upload."""
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such directory")
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in _SKIP_DIRS:
            continue
        if path.is_symlink():
            raise UsageError(f"{path}: refusing to upload a symlink")
        if path.is_file():
            found.append((check_repo_path(rel.as_posix()), path))
        elif not path.is_dir():
            raise UsageError(f"{path}: not a regular file")
    return found


def push(
    directory: Path,
    ref: RepoRef,
    *,
    endpoint: str,
    token: str | None,
    message: str | None = None,
    create: bool = False,
    private: bool = False,
    workers: int = 8,
    progress: Progress | None = None,
) -> PushResult:
    """Upload every file of ``directory`` to ``ref`` (branch, default ``main``) as one commit."""
    branch = ref.revision or "main"
    if is_commit_id(branch):
        raise UsageError("push goes to a branch, not a commit id")
    bar = progress or silent()
    entries = scan_directory(directory)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        local = list(pool.map(lambda e: _local(*e), entries))
    with HubSession(endpoint, token) as session:
        if create:
            _create_repo(session, ref, private)
        try:
            head, modes = _preupload(session, ref, branch, local)
        except RevisionNotFoundError:
            if branch == "main":
                raise
            session.request("POST", f"/api/models/{ref.repo_id}/branch/{quote_rev(branch)}", json={})
            head, modes = _preupload(session, ref, branch, local)
        files = [f for f in local if modes[f.path][0] != "ignore"]
        changed = [f for f in files if modes[f.path][0] != "unchanged"]
        lfs = [f for f in changed if modes[f.path][0] == "lfs"]
        bar.start(sum(f.size for f in lfs), len(lfs))
        uploaded = _upload_lfs(session, ref, branch, lfs, workers, bar)
        bar.close()
        results = [
            PushedFile(
                f.path,
                f.size,
                f.sha256,
                "lfs" if modes[f.path][1] else "regular",
                "unchanged"
                if modes[f.path][0] == "unchanged"
                else ("uploaded" if f.sha256 in uploaded else "deduplicated")
                if modes[f.path][0] == "lfs"
                else "inlined",
            )
            for f in files
        ]
        if not changed:
            return PushResult(ref.repo_id, branch, head, False, tuple(results))
        summary = message or f"Upload {len(changed)} file{'s' * (len(changed) != 1)} with cairn"
        body = _ndjson(summary, head, changed, {f.path: modes[f.path][0] for f in changed})
        answer = session.json(
            "POST",
            f"/api/models/{ref.repo_id}/commit/{quote_rev(branch)}",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        )
        commit = answer.get("commitOid") if isinstance(answer, dict) else None
        if not isinstance(commit, str) or not is_commit_id(commit):
            raise HubResponseError("commit answer has no valid commitOid", url=session.endpoint)
        return PushResult(ref.repo_id, branch, commit, True, tuple(results))


def _local(path: str, file: Path) -> _Local:
    size, sha256, sha1 = file_digests(file)
    return _Local(path, file, size, sha256, sha1)


def _create_repo(session: HubSession, ref: RepoRef, private: bool) -> None:
    ns, name = ref.repo_id.split("/")
    body = {"name": name, "organization": ns, "type": "model", "private": private}
    with contextlib.suppress(ConflictError):  # already there: push into it
        session.request("POST", "/api/repos/create", json=body)


def _preupload(
    session: HubSession, ref: RepoRef, branch: str, files: Sequence[_Local]
) -> tuple[str, dict[str, tuple[str, bool]]]:
    """(head commit, {path: (action, is_lfs)}) with action "regular", "lfs", "unchanged" or "ignore"."""
    head = ""
    modes: dict[str, tuple[str, bool]] = {}
    for i in range(0, max(1, len(files)), _BATCH):
        batch = files[i : i + _BATCH]
        payload = {"files": [{"path": f.path, "size": f.size, "sample": _sample(f.file)} for f in batch]}
        answer = session.json(
            "POST", f"/api/models/{ref.repo_id}/preupload/{quote_rev(branch)}", json=payload
        )
        items = answer.get("files") if isinstance(answer, dict) else None
        commit = answer.get("commitOid") if isinstance(answer, dict) else None
        if not isinstance(items, list) or not isinstance(commit, str) or not is_commit_id(commit):
            raise HubResponseError("malformed preupload answer", url=session.endpoint)
        if head and commit != head:
            raise ConflictError(f"{ref.repo_id}@{branch} moved while preparing the upload; retry")
        head = commit
        by_path = {f.path: f for f in batch}
        for item in items:
            if not isinstance(item, dict) or item.get("path") not in by_path:
                continue
            f = by_path[item["path"]]
            mode = item.get("uploadMode")
            if mode not in ("regular", "lfs"):
                raise HubResponseError(f"{f.path}: unknown upload mode {str(mode)[:20]!r}")
            lfs = mode == "lfs"
            if item.get("shouldIgnore") is True:
                modes[f.path] = ("ignore", lfs)
            elif item.get("oid") == (f.sha256 if lfs else f.git_sha1):
                modes[f.path] = ("unchanged", lfs)
            else:
                modes[f.path] = (mode, lfs)
        missing = [f.path for f in batch if f.path not in modes]
        if missing:
            raise HubResponseError(f"preupload answer lacks {missing[0]!r}", url=session.endpoint)
    return head, modes


def _sample(path: Path) -> str:
    with path.open("rb") as f:
        return base64.b64encode(f.read(512)).decode()


def _upload_lfs(
    session: HubSession, ref: RepoRef, branch: str, files: Sequence[_Local], workers: int, bar: Progress
) -> set[str]:
    """Upload the LFS objects the hub lacks; the sha256 of each one actually sent."""
    unique = {f.sha256: f for f in files}
    todo: list[tuple[_Local, dict[str, Any]]] = []
    objs = list(unique.values())
    for i in range(0, len(objs), _BATCH):
        batch = objs[i : i + _BATCH]
        answer = session.json(
            "POST",
            f"/{ref.repo_id}.git/info/lfs/objects/batch",
            json={
                "operation": "upload",
                "transfers": ["basic"],
                "objects": [{"oid": f.sha256, "size": f.size} for f in batch],
                "hash_algo": "sha256",
                "ref": {"name": branch},
            },
            headers={
                "accept": "application/vnd.git-lfs+json",
                "content-type": "application/vnd.git-lfs+json",
            },
        )
        if not isinstance(answer, dict) or answer.get("transfer", "basic") != "basic":
            raise HubResponseError("LFS batch answer is not a basic transfer", url=session.endpoint)
        objects = answer.get("objects", [])
        if not isinstance(objects, list):
            raise HubResponseError("LFS batch answer: objects is not a list", url=session.endpoint)
        for obj in objects:
            oid = obj.get("oid") if isinstance(obj, dict) else None
            f = unique.get(oid) if isinstance(oid, str) else None
            if f is None:
                continue
            if obj.get("error"):
                raise HubResponseError(f"{f.path}: hub refused the upload: {str(obj['error'])[:300]}")
            actions = obj.get("actions")
            if actions:
                todo.append((f, actions))
            else:
                bar.advance(f.size, done_file=True)  # the hub already stores these bytes
    with ThreadPoolExecutor(max(1, min(workers, 8))) as pool:
        list(pool.map(lambda item: _put(session, item[0], item[1], bar), todo))
    return {f.sha256 for f, _ in todo}


def _put(session: HubSession, f: _Local, actions: dict[str, Any], bar: Progress) -> None:
    upload = actions.get("upload") if isinstance(actions, dict) else None
    if not isinstance(upload, dict) or not isinstance(upload.get("href"), str):
        raise HubResponseError(f"{f.path}: LFS answer has no upload URL")
    href: str = upload["href"]
    if not href.startswith(("http://", "https://")):
        raise HubResponseError(f"{f.path}: LFS upload URL is not http(s)")
    if isinstance(upload.get("header"), dict) and "chunk_size" in upload["header"]:
        raise HubResponseError(f"{f.path}: hub asked for a multipart upload, which was not offered")

    def body() -> Iterator[bytes]:
        with f.file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                bar.advance(len(chunk))
                yield chunk

    # the signed href authenticates itself: no token, as the Hugging Face client does (spec §7.4)
    session.request("PUT", href, auth=False, content=body(), headers={"content-length": str(f.size)})
    bar.advance(0, done_file=True)
    verify = actions.get("verify")
    if isinstance(verify, dict) and isinstance(verify.get("href"), str):
        session.request("POST", verify["href"], json={"oid": f.sha256, "size": f.size})


def _ndjson(summary: str, parent: str, files: Sequence[_Local], modes: dict[str, str]) -> Iterator[bytes]:
    header = {"summary": summary, "description": "", "parentCommit": parent}
    yield json.dumps({"key": "header", "value": header}).encode() + b"\n"
    for f in files:
        if modes[f.path] == "lfs":
            value = {"path": f.path, "algo": "sha256", "oid": f.sha256, "size": f.size}
            yield json.dumps({"key": "lfsFile", "value": value}).encode() + b"\n"
        else:
            content = base64.b64encode(f.file.read_bytes()).decode()
            yield (
                json.dumps(
                    {"key": "file", "value": {"path": f.path, "content": content, "encoding": "base64"}}
                ).encode()
                + b"\n"
            )
