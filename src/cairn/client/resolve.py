"""Hub references for the checkpoint API: turn ``org/name[@rev]`` into a local directory.

``resolve_reference`` pulls a whole revision and returns its snapshot folder. ``resolve_checkpoint``
pulls only what a cairn checkpoint needs (its manifest, then the files the manifest lists) and returns a
directory holding exactly those files (hard links into the cache), because a checkpoint directory must
contain nothing else and a repository usually does (``.gitattributes``, a README). When the hub cannot
be reached, a checkpoint loaded before at the same revision is used from the cache (``cairn.load``
re-verifies every byte of it against its manifest).
"""

from __future__ import annotations

from pathlib import Path

from cairn.client.cache import RepoCache, place
from cairn.client.http import HubConnectionError
from cairn.client.pull import PullResult, pull, remember_verified
from cairn.client.refs import is_commit_id, parse_repo_ref, safe_join
from cairn.client.settings import client_settings
from cairn.errors import NotFoundError

__all__ = ["resolve_checkpoint", "resolve_reference"]


def resolve_reference(
    reference: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The local snapshot folder of ``org/name[@rev]``, downloaded (or checked in the cache) now.

    ``endpoint``/``token``/``cache_dir`` fall back to ``HF_ENDPOINT``/``HF_TOKEN``/the Hugging Face cache
    (see :func:`cairn.client.settings.client_settings`).
    """
    settings = client_settings(endpoint=endpoint, token=token, cache_dir=cache_dir)
    result = pull(
        parse_repo_ref(reference),
        endpoint=settings.endpoint,
        token=settings.token,
        cache_dir=settings.cache_dir,
    )
    return result.snapshot


def resolve_checkpoint(
    reference: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | Path | None = None,
    recheck_cached: bool = True,
) -> Path:
    """A directory holding exactly the cairn checkpoint stored at ``org/name[@rev]``.

    ``recheck_cached=False`` trusts cached blobs of the right size (``cairn.load`` passes it when it
    verifies every byte itself, so they are not hashed twice)."""
    from cairn.format.manifest import MANIFEST_NAME, read_manifest

    settings = client_settings(endpoint=endpoint, token=token, cache_dir=cache_dir)
    ref = parse_repo_ref(reference)

    def fetch(include: list[str]) -> PullResult:
        return pull(
            ref,
            endpoint=settings.endpoint,
            token=settings.token,
            cache_dir=settings.cache_dir,
            include=include,
        )

    cache = RepoCache(settings.cache_dir, ref)
    try:
        first = fetch([MANIFEST_NAME])
    except HubConnectionError:
        offline = _cached_view(cache, ref.revision or "main", MANIFEST_NAME)
        if offline is None:
            raise
        return offline  # the hub is unreachable, but this revision was loaded before (load re-verifies it)
    if not any(f.path == MANIFEST_NAME for f in first.files):
        raise NotFoundError(
            f"{reference} holds no cairn checkpoint (no {MANIFEST_NAME} at commit {first.commit})"
        )
    manifest = read_manifest(first.snapshot)
    # pin the commit the manifest came from, so a branch moving now cannot mix two checkpoints
    pinned = parse_repo_ref(f"{ref.repo_id}@{first.commit}")
    names = [MANIFEST_NAME, *manifest.files]
    result = pull(
        pinned,
        endpoint=settings.endpoint,
        token=settings.token,
        cache_dir=settings.cache_dir,
        include=[_glob_escape(n) for n in names],
        recheck_cached=recheck_cached,
    )
    view = cache.root / "checkpoints" / result.commit
    for f in result.files:
        place(cache.blob(f.etag), safe_join(_mkdir(view), f.path))
    remember_verified(view, result, cache)  # what this pull hashed, load need not hash again
    return view


def _cached_view(cache: RepoCache, revision: str, manifest_name: str) -> Path | None:
    """The checkpoint view an earlier load left for ``revision`` (a commit id, or a branch or tag through
    ``refs/``), if it is complete enough to try."""
    commit = revision if is_commit_id(revision) else cache.read_ref(revision)
    if commit is None:
        return None
    view = cache.root / "checkpoints" / commit
    return view if (view / manifest_name).is_file() else None


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
