"""Repos: create (with an initial commit on ``main``), look up with access control, list and search,
change settings, delete. A private repo the caller may not see is reported exactly like a missing one."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.sql.elements import ColumnElement

from cairn.errors import NotFoundError, PermissionDeniedError, UsageError
from cairn.meta import Database, now_us, repo_access, repo_redirects, repos, users
from cairn.registry.audit import AuditService
from cairn.registry.cards import MAX_CARD_DATA_BYTES, CardInfo
from cairn.registry.errors import AlreadyExistsError, GatedRepoError, RepoNotFoundError, UnauthenticatedError
from cairn.registry.models import REPO_TYPES, Principal, Repo
from cairn.registry.names import check_name

__all__ = ["SORT_KEYS", "RepoService"]

SORT_KEYS = {
    "downloads": repos.c.downloads,
    "likes": repos.c.likes,
    "lastModified": repos.c.last_modified,
    "createdAt": repos.c.created_at,
    "trendingScore": repos.c.downloads,
    "id": repos.c.name,
}


def _repo(row: Row[Any]) -> Repo:
    return Repo(
        id=row.id,
        type=row.type,
        namespace=row.namespace,
        name=row.name,
        private=bool(row.private),
        gated=row.gated,
        created_at=row.created_at,
        last_modified=row.last_modified,
        tags=tuple(json.loads(row.tags)),
        card_data=json.loads(row.card_data),
        pipeline_tag=row.pipeline_tag,
        library_name=row.library_name,
        downloads=row.downloads,
        likes=row.likes,
    )


def _check_type(repo_type: str) -> str:
    if repo_type not in REPO_TYPES:
        raise UsageError(f"unknown repo type {repo_type!r} (expected one of {', '.join(REPO_TYPES)})")
    return repo_type


def can_see(repo: Repo, who: Principal | None) -> bool:
    return not repo.private or (who is not None and who.level(repo.type, repo.namespace, repo.name) >= 1)


def require(who: Principal | None, repo_type: str, namespace: str, name: str | None, level: int) -> None:
    """Raise unless ``who`` has permission ``level`` (2 write, 3 admin) on ``namespace/name``."""
    if who is None:
        raise UnauthenticatedError("a write token is required")
    if who.level(repo_type, namespace, name) >= level:
        return
    if not who.can_write:
        raise PermissionDeniedError("this token is read-only")
    if who.role_in(namespace) is not None and who.level(repo_type, namespace, name) == 0:
        raise PermissionDeniedError("this token is not scoped to this repo")
    what = "administer" if level >= 3 else "write to"
    raise PermissionDeniedError(
        f"you may not {what} {namespace}/{name}" if name else f"you may not {what} {namespace!r}"
    )


class RepoService:
    def __init__(
        self,
        db: Database,
        initial_commit: Callable[[Repo, str], None],
        audit: AuditService | None = None,
    ) -> None:
        self.db = db
        self._initial_commit = initial_commit
        self.audit = audit or AuditService(db)

    def create(
        self, who: Principal | None, repo_type: str, namespace: str, name: str, *, private: bool
    ) -> Repo:
        """Create a repo owned by ``namespace`` with ``main`` at an initial commit holding .gitattributes."""
        _check_type(repo_type)
        check_name("namespace", namespace)
        check_name("repo name", name)
        require(who, repo_type, namespace, name, 2)
        assert who is not None
        created = now_us()
        try:
            with self.db.write() as conn:
                pk = conn.execute(
                    insert(repos).values(
                        type=repo_type,
                        namespace=namespace,
                        name=name,
                        private=private,
                        gated="",
                        created_at=created,
                        last_modified=created,
                        tags="[]",
                        card_data="{}",
                        downloads=0,
                        likes=0,
                    )
                ).inserted_primary_key
        except DBIntegrityError:
            raise AlreadyExistsError(f"{repo_type} repo", f"{namespace}/{name}") from None
        assert pk is not None
        repo = Repo(int(pk[0]), repo_type, namespace, name, private, "", created, created)
        try:
            self._initial_commit(repo, who.user.name)
        except BaseException:
            with self.db.write() as conn:
                conn.execute(delete(repos).where(repos.c.id == repo.id))
            raise
        self.audit.record(who.user.name, "repo.create", repo=repo, detail={"private": private})
        return repo

    def get(
        self,
        repo_type: str,
        namespace: str,
        name: str,
        who: Principal | None,
        *,
        write: bool = False,
        admin: bool = False,
        manage: bool = False,
    ) -> Repo:
        """The repo if ``who`` may see it (and write to it when ``write``, administer it when ``manage``);
        else :class:`RepoNotFoundError` (or a permission error when the repo is visible but the caller
        lacks the permission). ``admin``: skip visibility (for the operator's own tools, never for
        requests)."""
        _check_type(repo_type)
        with self.db.read() as conn:
            row = conn.execute(
                select(repos).where(
                    repos.c.type == repo_type, repos.c.namespace == namespace, repos.c.name == name
                )
            ).first()
        repo = None if row is None else _repo(row)
        if repo is None or not (admin or can_see(repo, who)):
            raise RepoNotFoundError(f"{namespace}/{name}")
        if write or manage:
            require(who, repo_type, namespace, name, 3 if manage else 2)
        return repo

    def check_content_access(self, repo: Repo, who: Principal | None) -> None:
        """Raise :class:`GatedRepoError` unless ``who`` may read the files of ``repo``."""
        if not repo.gated or (who is not None and who.level(repo.type, repo.namespace, repo.name) >= 1):
            return
        if who is not None and who.token_level(repo.type, repo.namespace, repo.name) >= 1:
            with self.db.read() as conn:
                status = conn.execute(
                    select(repo_access.c.status).where(
                        repo_access.c.repo_id == repo.id, repo_access.c.user_id == who.user.id
                    )
                ).scalar()
            if status == "accepted":
                return
            if status is not None:
                raise GatedRepoError(repo.repo_id, status=status)
        raise GatedRepoError(repo.repo_id)

    def grant_access(self, repo: Repo, user_name: str, *, by: str | None = None) -> None:
        """Let ``user_name`` read the files of gated ``repo`` (idempotent; accepts a pending request)."""
        when = now_us()
        with self.db.write() as conn:
            uid = conn.execute(select(users.c.id).where(users.c.name == user_name)).scalar()
            if uid is None:
                raise NotFoundError(f"no user named {user_name!r}")
            known = conn.execute(
                select(repo_access.c.user_id).where(
                    repo_access.c.repo_id == repo.id, repo_access.c.user_id == uid
                )
            ).first()
            if known is None:
                conn.execute(
                    insert(repo_access).values(
                        repo_id=repo.id,
                        user_id=uid,
                        created_at=when,
                        status="accepted",
                        decided_by=by,
                        decided_at=when,
                    )
                )
            else:
                conn.execute(
                    update(repo_access)
                    .where(repo_access.c.repo_id == repo.id, repo_access.c.user_id == uid)
                    .values(status="accepted", decided_by=by, decided_at=when, reason=None)
                )
        self.audit.record(by, "access.grant", repo=repo, target=user_name)

    def delete(self, who: Principal | None, repo_type: str, namespace: str, name: str) -> None:
        repo = self.get(repo_type, namespace, name, who, manage=True)
        with self.db.write() as conn:
            conn.execute(delete(repos).where(repos.c.id == repo.id))
        self.audit.record(who.user.name if who else None, "repo.delete", repo=repo)

    def update_settings(
        self,
        who: Principal | None,
        repo: Repo,
        *,
        private: bool | None = None,
        gated: str | None = None,
    ) -> Repo:
        require(who, repo.type, repo.namespace, repo.name, 3)
        assert who is not None
        values: dict[str, object] = {}
        if private is not None:
            values["private"] = private
        if gated is not None:
            if gated not in {"", "auto", "manual"}:
                raise UsageError(f"gated must be false, 'auto' or 'manual', not {gated!r}")
            values["gated"] = gated
        if values:
            with self.db.write() as conn:
                conn.execute(update(repos).where(repos.c.id == repo.id).values(**values))
            self.audit.record(who.user.name, "repo.settings", repo=repo, detail=values)
        return self.get(repo.type, repo.namespace, repo.name, who)

    def set_card_info(self, repo: Repo, info: CardInfo) -> None:
        card_data = json.dumps(info.card_data, default=str)
        if len(card_data) > MAX_CARD_DATA_BYTES:  # parsed on every lookup of the repo: keep it small
            card_data = "{}"
        with self.db.write() as conn:
            conn.execute(
                update(repos)
                .where(repos.c.id == repo.id)
                .values(
                    tags=json.dumps(list(info.tags)),
                    card_data=card_data,
                    pipeline_tag=info.pipeline_tag,
                    library_name=info.library_name,
                )
            )

    def move(self, who: Principal | None, repo: Repo, namespace: str, name: str) -> Repo:
        """Rename ``repo`` to ``namespace/name``; the old name is kept as a redirect."""
        check_name("namespace", namespace)
        check_name("repo name", name)
        require(who, repo.type, repo.namespace, repo.name, 3)
        require(who, repo.type, namespace, name, 2)
        assert who is not None
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(repos).where(repos.c.id == repo.id).values(namespace=namespace, name=name)
                )
                conn.execute(
                    delete(repo_redirects).where(
                        repo_redirects.c.type == repo.type,
                        repo_redirects.c.namespace == namespace,
                        repo_redirects.c.name == name,
                    )
                )
                conn.execute(
                    insert(repo_redirects).values(
                        type=repo.type, namespace=repo.namespace, name=repo.name, repo_id=repo.id
                    )
                )
        except DBIntegrityError:
            raise AlreadyExistsError(f"{repo.type} repo", f"{namespace}/{name}") from None
        self.audit.record(who.user.name, "repo.move", repo=repo, target=f"{namespace}/{name}")
        return self.get(repo.type, namespace, name, who)

    def redirect(self, repo_type: str, namespace: str, name: str, who: Principal | None) -> Repo | None:
        """The repo an old (moved) name now points to, if ``who`` may see it."""
        with self.db.read() as conn:
            row = conn.execute(
                select(repos)
                .join(repo_redirects, repo_redirects.c.repo_id == repos.c.id)
                .where(
                    repo_redirects.c.type == repo_type,
                    repo_redirects.c.namespace == namespace,
                    repo_redirects.c.name == name,
                )
            ).first()
        repo = None if row is None else _repo(row)
        return repo if repo is not None and can_see(repo, who) else None

    def count_download(self, repo_id: int) -> None:
        with self.db.write() as conn:
            conn.execute(update(repos).where(repos.c.id == repo_id).values(downloads=repos.c.downloads + 1))

    def touch(self, repo: Repo, when: int) -> None:
        with self.db.write() as conn:
            conn.execute(update(repos).where(repos.c.id == repo.id).values(last_modified=when))

    def list(
        self,
        repo_type: str,
        who: Principal | None,
        *,
        search: str | None = None,
        author: str | None = None,
        tags: Sequence[str] = (),
        sort: str | None = None,
        offset: int = 0,
        limit: int = 100,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> list[Repo]:
        """Visible repos matching every filter, sorted descending by ``sort`` (default: newest)."""
        _check_type(repo_type)
        if sort is not None and sort not in SORT_KEYS:
            raise UsageError(f"cannot sort by {sort!r} (use one of {', '.join(SORT_KEYS)})")
        if offset < 0 or limit < 1:
            raise UsageError("offset must be >= 0 and limit >= 1")
        query = select(repos).where(repos.c.type == repo_type)
        if who is None:
            query = query.where(repos.c.private.is_(False))
        else:
            query = query.where(repos.c.private.is_(False) | _readable(who, repo_type))
        if search:
            needle = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            full = func.lower(repos.c.namespace + "/" + repos.c.name)
            query = query.where(full.like(f"%{needle}%", escape="\\"))
        if author:
            query = query.where(repos.c.namespace == author)
        for condition in where:  # extra conditions on ``repos`` (discovery filters)
            query = query.where(condition)
        for tag in tags:  # coarse filter in SQL; exact membership checked below
            query = query.where(repos.c.tags.contains(json.dumps(tag)))
        key = SORT_KEYS[sort or "createdAt"]
        query = query.order_by(key.desc(), repos.c.id.desc()).offset(offset).limit(limit)
        with self.db.read() as conn:
            rows = [_repo(r) for r in conn.execute(query)]
        return [r for r in rows if all(t in r.tags for t in tags)]


def _readable(who: Principal, repo_type: str) -> Any:
    """SQL condition: private repos ``who`` may read (member namespaces, narrowed by token scopes)."""
    namespaces = [who.user.name, *who.orgs, *(org for org, _ in who.org_roles)]
    if not who.token.scopes:
        return repos.c.namespace.in_(namespaces)
    conditions: list[ColumnElement[bool]] = [false()]
    for scope in who.token.scopes:
        if scope.kind == "org" and scope.name in namespaces:
            conditions.append(repos.c.namespace == scope.name)
        elif scope.kind == "repo" and scope.repo_type == repo_type:
            ns, _, name = scope.name.partition("/")
            if ns in namespaces:
                conditions.append(and_(repos.c.namespace == ns, repos.c.name == name))
    return or_(*conditions)
