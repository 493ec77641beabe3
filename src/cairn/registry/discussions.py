"""Discussions and pull requests: the conversation rows and the status machine, over ``discussions`` and
``discussion_events``.

Discussions and pull requests share one number sequence per repo. A pull request's changes live on the
ref ``refs/pr/N`` (created here, in the same transaction as the row, at the target branch's head); its
commits and merge go through :mod:`cairn.registry.pulls`, which calls back into this service inside the
commit's own transaction so that a PR's status and its ref never disagree.

Status machine: ``draft`` (a PR opened without changes) → ``open`` (first commit) → ``merged``; any open
or draft discussion can be ``closed`` and reopened; ``merged`` is final.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import Connection, Row, and_, delete, false, func, insert, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.errors import ConflictError, LimitExceededError, NotFoundError, PermissionDeniedError, UsageError
from cairn.meta import Database, commits, now_us, refs, repos
from cairn.meta.schema import discussion_events, discussions
from cairn.registry.commits import lock_repo, pr_ref
from cairn.registry.errors import InvalidNameError, RevisionNotFoundError
from cairn.registry.models import Principal, Repo
from cairn.registry.names import check_name

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_TITLE_CHARS",
    "Discussion",
    "DiscussionNotFoundError",
    "DiscussionService",
    "DiscussionStateError",
    "Event",
    "EventNotFoundError",
    "PullRequestMovedError",
    "check_comment",
    "check_title",
    "may_moderate",
]

MIN_TITLE_CHARS = 3
MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 65_536
MAX_EDITS = 100  # per comment: the history is stored with the comment
MAX_EVENT_ID = (1 << 63) - 1  # ids are 64-bit integers in both databases
# C0/DEL/C1 controls and the bidi embeddings, overrides and isolates, which can make a title read
# differently from what it says (U+202A-U+202E, U+2066-U+2069)
_TITLE_FORBIDDEN = frozenset(
    chr(c) for span in ((0, 0x20), (0x7F, 0xA0), (0x202A, 0x202F), (0x2066, 0x206A)) for c in range(*span)
)
Status = Literal["open", "closed", "merged", "draft"]
STATUSES = ("open", "closed", "merged", "draft")
EVENT_KINDS = ("comment", "status-change", "title-change", "commit")


class DiscussionNotFoundError(NotFoundError):
    code = "discussion_not_found"

    def __init__(self, repo_id: str, num: int) -> None:
        super().__init__(f"Discussion #{num} not found in {repo_id}")
        self.repo_id = repo_id
        self.num = num


class EventNotFoundError(NotFoundError):
    code = "discussion_event_not_found"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"Comment {event_id[:40]!r} not found in this discussion")
        self.event_id = event_id[:40]


class PullRequestMovedError(ConflictError):
    """``refs/pr/N`` moved after a merge read it: the merge must be computed again."""

    code = "pull_request_moved"

    def __init__(self, num: int) -> None:
        super().__init__(f"#{num} received a commit while it was being merged; retry")
        self.num = num


class DiscussionStateError(ConflictError):
    """The discussion is not in a status that allows the action (merging a closed PR, pushing to a merged
    one, reopening a merged one)."""

    code = "discussion_state"

    def __init__(self, num: int, status: str, action: str) -> None:
        super().__init__(f"cannot {action}: #{num} is {status}")
        self.num = num
        self.status = status
        self.action = action


@dataclass(frozen=True)
class Discussion:
    id: int
    repo_id: int
    num: int
    title: str
    author: str
    is_pull_request: bool
    status: str
    target_branch: str | None
    base_commit: str | None
    merge_commit: str | None
    created_at: int
    updated_at: int

    @property
    def ref(self) -> str:
        return pr_ref(self.num)


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    author: str
    created_at: int
    hidden: bool
    data: dict[str, Any]

    @property
    def hex_id(self) -> str:
        """The event's id on the wire: 24 hex digits, like the Hub's object ids."""
        return f"{self.id:024x}"


def check_title(title: object) -> str:
    if not isinstance(title, str):
        raise UsageError("'title' must be a string")
    title = title.strip()
    if len(title) < MIN_TITLE_CHARS:  # a malformed request (400), not an oversized one (413)
        raise UsageError(f"a title must be {MIN_TITLE_CHARS}-{MAX_TITLE_CHARS} characters")
    if len(title) > MAX_TITLE_CHARS:
        raise LimitExceededError(f"a title must be {MIN_TITLE_CHARS}-{MAX_TITLE_CHARS} characters")
    if any(c in _TITLE_FORBIDDEN for c in title):
        raise UsageError("a title may not contain control characters or bidirectional overrides")
    return title


def check_comment(text: object, what: str = "comment") -> str:
    if not isinstance(text, str):
        raise UsageError(f"'{what}' must be a string")
    text = text.strip()
    if not text:
        raise UsageError(f"the {what} is empty")
    if len(text) > MAX_COMMENT_CHARS:
        raise LimitExceededError(f"a {what} may have at most {MAX_COMMENT_CHARS} characters")
    return text


def may_moderate(who: Principal | None, repo: Repo, d: Discussion) -> bool:
    """The discussion's author and the repo's writers may close, reopen and rename it."""
    return who is not None and (
        who.user.name == d.author or who.level(repo.type, repo.namespace, repo.name) >= 2
    )


def _discussion(row: Row[Any]) -> Discussion:
    return Discussion(
        row.id,
        row.repo_id,
        row.num,
        row.title,
        row.author,
        bool(row.is_pull_request),
        row.status,
        row.target_branch,
        row.base_commit,
        row.merge_commit,
        row.created_at,
        row.updated_at,
    )


def _event(row: Row[Any]) -> Event:
    return Event(row.id, row.kind, row.author, row.created_at, bool(row.hidden), json.loads(row.data))


class DiscussionService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, repo: Repo, num: int) -> Discussion:
        with self.db.read() as conn:
            row = conn.execute(
                select(discussions).where(discussions.c.repo_id == repo.id, discussions.c.num == num)
            ).first()
        if row is None:
            raise DiscussionNotFoundError(repo.repo_id, num)
        return _discussion(row)

    def find(
        self,
        repo: Repo,
        *,
        kind: str | None = None,
        status: str | None = None,
        author: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Discussion], int, int]:
        """(one page newest first, total matching, closed among all of the repo's discussions).
        ``kind``: ``pull_request`` | ``discussion``; ``status``: ``open`` (open and draft) | ``closed``
        (closed and merged) | any single status."""
        where = [discussions.c.repo_id == repo.id]
        if kind == "pull_request":
            where.append(discussions.c.is_pull_request.is_(True))
        elif kind == "discussion":
            where.append(discussions.c.is_pull_request.is_(False))
        if status == "open":
            where.append(discussions.c.status.in_(["open", "draft"]))
        elif status == "closed":
            where.append(discussions.c.status.in_(["closed", "merged"]))
        elif status is not None:
            where.append(discussions.c.status == status)
        if author is not None:
            try:
                where.append(discussions.c.author == check_name("author", author))
            except InvalidNameError:  # nobody has that name (and a NUL would upset PostgreSQL)
                where.append(false())
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(discussions).where(*where)).scalar_one()
            closed = conn.execute(
                select(func.count())
                .select_from(discussions)
                .where(discussions.c.repo_id == repo.id, discussions.c.status.in_(["closed", "merged"]))
            ).scalar_one()
            rows = conn.execute(
                select(discussions)
                .where(*where)
                .order_by(discussions.c.num.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [_discussion(r) for r in rows], int(total), int(closed)

    def events(self, d: Discussion, *, offset: int = 0, limit: int | None = None) -> list[Event]:
        """The thread's events, oldest first (``offset``/``limit``: one page of them)."""
        query = (
            select(discussion_events)
            .where(discussion_events.c.discussion_id == d.id)
            .order_by(discussion_events.c.id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_event(r) for r in rows]

    def count_events(self, d: Discussion) -> int:
        with self.db.read() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(discussion_events)
                .where(discussion_events.c.discussion_id == d.id)
            ).scalar_one()
        return int(n)

    def get_event(self, d: Discussion, event_id: int) -> Event:
        """One comment of the thread (:class:`EventNotFoundError` for any other id)."""
        with self.db.read() as conn:
            return self._comment_row(conn, d, event_id)

    # -- writing ---------------------------------------------------------------------------------------
    def create(
        self,
        repo: Repo,
        author: str,
        title: str,
        description: str | None,
        *,
        pull_request: bool = False,
        target_branch: str | None = None,
        base_commit: str | None = None,
    ) -> Discussion:
        """A new discussion (or, with ``pull_request``, a draft PR whose ref ``refs/pr/N`` starts at
        ``base_commit`` and will merge into ``target_branch``) with ``description`` as first comment."""
        title = check_title(title)
        description = check_comment(description, "description") if description else None
        if pull_request and (target_branch is None or base_commit is None):
            raise UsageError("a pull request needs a target branch and a base commit")
        for _ in range(5):  # should two writers still pick the same number, the loser retries
            try:
                return self._create(
                    repo, author, title, description, pull_request, target_branch, base_commit
                )
            except DBIntegrityError:
                continue
        raise ConflictError("could not allocate a discussion number; retry")

    def _create(
        self,
        repo: Repo,
        author: str,
        title: str,
        description: str | None,
        pull_request: bool,
        target_branch: str | None,
        base_commit: str | None,
    ) -> Discussion:
        now = now_us()
        with self.db.write() as conn:
            # one number allocator per repo: the repo's row is locked (PostgreSQL; SQLite has one writer)
            conn.execute(
                select(repos.c.id).where(repos.c.id == repo.id).with_for_update(key_share=True)
            ).first()
            if pull_request and base_commit is not None:  # a squash may have removed it since it was read
                known = conn.execute(
                    select(commits.c.id).where(commits.c.id == base_commit, commits.c.repo_id == repo.id)
                ).first()
                if known is None:
                    raise RevisionNotFoundError(repo.repo_id, base_commit)
            last = conn.execute(
                select(func.max(discussions.c.num)).where(discussions.c.repo_id == repo.id)
            ).scalar()
            num = int(last or 0) + 1
            status = "draft" if pull_request else "open"
            values = {
                "repo_id": repo.id,
                "num": num,
                "title": title,
                "author": author,
                "is_pull_request": pull_request,
                "status": status,
                "target_branch": target_branch if pull_request else None,
                "base_commit": base_commit if pull_request else None,
                "merge_commit": None,
                "created_at": now,
                "updated_at": now,
            }
            new_id = conn.execute(insert(discussions).values(**values)).inserted_primary_key[0]  # type: ignore[index]
            if description:
                self._add_event(conn, new_id, "comment", author, _comment_data(description, author, now), now)
            if pull_request:
                conn.execute(
                    insert(refs).values(repo_id=repo.id, kind="pr", name=pr_ref(num), commit_id=base_commit)
                )
        return Discussion(id=new_id, **values)  # type: ignore[arg-type]

    def delete(self, repo: Repo, d: Discussion) -> None:
        """Remove a PR that never received its first commit (the commit that opened it failed)."""
        with self.db.write() as conn:
            lock_repo(conn, repo.id)  # the lock order of every ref writer (cairn.registry.storage)
            conn.execute(delete(discussions).where(discussions.c.id == d.id))
            conn.execute(
                delete(refs).where(and_(refs.c.repo_id == repo.id, refs.c.kind == "pr", refs.c.name == d.ref))
            )

    def comment(self, d: Discussion, author: str, text: str) -> Event:
        text = check_comment(text)
        now = now_us()
        with self.db.write() as conn:
            self._touch(conn, d, now)
            return self._add_event(conn, d.id, "comment", author, _comment_data(text, author, now), now)

    def edit_comment(self, d: Discussion, event_id: int, who: str, text: str) -> Event:
        """A new version of a comment, by its author; the history keeps every version."""
        text = check_comment(text, "content")
        now = now_us()
        with self.db.write() as conn:
            event = self._comment_row(conn, d, event_id)
            if event.author != who:
                raise PermissionDeniedError("only a comment's author may edit it")
            if event.hidden:
                raise DiscussionStateError(d.num, "hidden", "edit a hidden comment")
            history = event.data["history"]
            if len(history) >= MAX_EDITS:
                raise LimitExceededError(f"a comment may be edited at most {MAX_EDITS} times")
            version = {"raw": text, "updatedAt": now, "author": who}
            data = {**event.data, "edited": True, "history": [version, *history]}
            conn.execute(
                update(discussion_events)
                .where(discussion_events.c.id == event.id)
                .values(data=json.dumps(data))
            )
            self._touch(conn, d, now)
        return replace(event, data=data)

    def hide_comment(self, d: Discussion, event_id: int) -> Event:
        """Hide a comment for good: its text (every version) is erased."""
        with self.db.write() as conn:
            event = self._comment_row(conn, d, event_id)
            data = {**event.data, "history": [{"raw": "", "updatedAt": event.created_at, "author": ""}]}
            conn.execute(
                update(discussion_events)
                .where(discussion_events.c.id == event.id)
                .values(hidden=True, data=json.dumps(data))
            )
        return replace(event, hidden=True, data=data)

    def rename(self, d: Discussion, author: str, title: str) -> Event:
        title = check_title(title)
        now = now_us()
        with self.db.write() as conn:
            conn.execute(
                update(discussions).where(discussions.c.id == d.id).values(title=title, updated_at=now)
            )
            data = {"from": d.title, "to": title}
            return self._add_event(conn, d.id, "title-change", author, data, now)

    def set_status(self, d: Discussion, author: str, status: str, comment: str | None = None) -> Event:
        """Close or reopen (``open``: a PR with no commit yet goes back to ``draft``)."""
        if status not in {"open", "closed"}:
            raise UsageError("status must be 'open' or 'closed'")
        comment = check_comment(comment) if comment else None
        now = now_us()
        with self.db.write() as conn:
            current = self._status(conn, d)
            if current == "merged":
                raise DiscussionStateError(d.num, current, f"change the status to {status}")
            if status == "open" and current == "closed" and d.is_pull_request:
                opened = conn.execute(
                    select(func.count())
                    .select_from(discussion_events)
                    .where(discussion_events.c.discussion_id == d.id, discussion_events.c.kind == "commit")
                ).scalar_one()
                status_to = "open" if opened else "draft"
            elif status == "open":
                status_to = current if current in {"open", "draft"} else "open"
            else:
                status_to = "closed"
            changed = conn.execute(
                update(discussions)
                .where(discussions.c.id == d.id, discussions.c.status == current)
                .values(status=status_to, updated_at=now)
            ).rowcount
            if changed != 1:  # another request changed the status after we read it
                raise DiscussionStateError(d.num, self._status(conn, d), f"change the status to {status}")
            if comment:
                self._add_event(conn, d.id, "comment", author, _comment_data(comment, author, now), now)
            return self._add_event(conn, d.id, "status-change", author, {"status": status_to}, now)

    # -- inside a commit's transaction (cairn.registry.pulls) ------------------------------------------
    def record_commit(self, conn: Connection, d: Discussion, author: str, commit_id: str, title: str) -> None:
        """A commit landed on ``refs/pr/N``: a draft becomes open. Refused (rolling the commit back) if the
        PR was closed or merged meanwhile. The ref row is locked like :meth:`record_merge` locks it, so
        a merge and a push to the same PR are serialised."""
        conn.execute(
            select(refs.c.commit_id)
            .where(refs.c.repo_id == d.repo_id, refs.c.kind == "pr", refs.c.name == d.ref)
            .with_for_update()
        ).first()
        now = now_us()
        opened = conn.execute(  # conditional, so a close racing this commit is never undone
            update(discussions)
            .where(discussions.c.id == d.id, discussions.c.status.in_(["open", "draft"]))
            .values(status="open", updated_at=now)
        ).rowcount
        if opened != 1:
            raise DiscussionStateError(d.num, self._status(conn, d), "push to this pull request")
        self._add_event(conn, d.id, "commit", author, {"subject": title[:200], "oid": commit_id}, now)

    def record_merge(
        self, conn: Connection, d: Discussion, author: str, commit_id: str, pr_head: str
    ) -> None:
        """The merge commit of ``pr_head`` is being written: mark the PR merged, once (a second merger
        rolls back). The ref row ``refs/pr/N`` is locked and must still point at ``pr_head``; a push
        that moved it (or is moving it: it holds the row until it commits) makes this merge roll back
        with :class:`PullRequestMovedError`, to be recomputed. A push after this commits finds the PR
        merged in :meth:`record_commit` and rolls back in turn."""
        current = conn.execute(
            select(refs.c.commit_id)
            .where(refs.c.repo_id == d.repo_id, refs.c.kind == "pr", refs.c.name == d.ref)
            .with_for_update()
        ).scalar()
        if current != pr_head:
            raise PullRequestMovedError(d.num)
        now = now_us()
        done = conn.execute(
            update(discussions)
            .where(discussions.c.id == d.id, discussions.c.status.in_(["open", "draft"]))
            .values(status="merged", merge_commit=commit_id, updated_at=now)
        ).rowcount
        if done != 1:
            raise DiscussionStateError(d.num, self._status(conn, d), "merge")
        self._add_event(conn, d.id, "status-change", author, {"status": "merged"}, now)

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _status(conn: Connection, d: Discussion) -> str:
        status: str = conn.execute(select(discussions.c.status).where(discussions.c.id == d.id)).scalar_one()
        return status

    @staticmethod
    def _touch(conn: Connection, d: Discussion, now: int) -> None:
        conn.execute(update(discussions).where(discussions.c.id == d.id).values(updated_at=now))

    @staticmethod
    def _comment_row(conn: Connection, d: Discussion, event_id: int) -> Event:
        if not 0 < event_id <= MAX_EVENT_ID:  # out of the databases' integer range: no such row
            raise EventNotFoundError(f"{event_id:024x}" if event_id >= 0 else str(event_id))
        row = conn.execute(
            select(discussion_events).where(
                discussion_events.c.id == event_id,
                discussion_events.c.discussion_id == d.id,
                discussion_events.c.kind == "comment",
            )
        ).first()
        if row is None:
            raise EventNotFoundError(f"{event_id:024x}")
        return _event(row)

    @staticmethod
    def _add_event(
        conn: Connection, discussion_id: int, kind: str, author: str, data: dict[str, Any], now: int
    ) -> Event:
        new_id = conn.execute(
            insert(discussion_events).values(
                discussion_id=discussion_id,
                kind=kind,
                author=author,
                created_at=now,
                hidden=False,
                data=json.dumps(data),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        return Event(new_id, kind, author, now, False, data)


def _comment_data(text: str, author: str, now: int) -> dict[str, Any]:
    """A comment's data: ``history`` holds every version, newest first."""
    return {"edited": False, "history": [{"raw": text, "updatedAt": now, "author": author}]}
