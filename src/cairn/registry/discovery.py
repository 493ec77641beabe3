"""Discovery: likes, the per-repo index that listing filters use, and lineage edges from model cards.

On every commit to ``main`` the registry calls :meth:`DiscoveryService.index` with the card data and the
tree: it stores the repo's total parameter count (from the safetensors headers read on upload), its
worst scan verdict, and the card's ``base_model`` edges (child → base, with the relation the card states
or ``finetune``). :func:`parse_filters` turns ``list_models`` query values (``num_parameters=min:1B``,
``scan_status=safe``, ``library``, ``pipeline_tag``, ``license``, ``base_model``) into SQL conditions for
:meth:`cairn.registry.repos.RepoService.list`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.errors import UsageError
from cairn.meta import Database, now_us, repos, users
from cairn.meta.trust_tables import likes, lineage_edges, repo_index
from cairn.registry.models import Principal, Repo

__all__ = [
    "FILTER_PARAMS",
    "SCAN_RANK",
    "DiscoveryService",
    "Liker",
    "LineageEdge",
    "parse_count",
    "parse_filters",
]

_COUNT = re.compile(r"(\d+(?:\.\d+)?)([KMBT]?)", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
#: worst first: a repo's scan status is the worst verdict among its files
SCAN_RANK = ("unsafe", "error", "caution", "unscanned", "safe")
#: the ``list_models`` query parameters :func:`parse_filters` understands
FILTER_PARAMS = ("num_parameters", "scan_status", "library", "pipeline_tag", "base_model")
_RELATIONS = {"adapter", "merge", "quantized", "finetune", "distillation"}


@dataclass(frozen=True)
class Liker:
    user: str
    fullname: str
    created_at: int


@dataclass(frozen=True)
class LineageEdge:
    child: str
    base_model: str
    relation: str


def parse_count(text: str) -> int:
    """``6B`` → 6_000_000_000, ``1.5M``, ``300``; :class:`UsageError` otherwise."""
    m = _COUNT.fullmatch(text.strip())
    if not m:
        raise UsageError(f"not a parameter count: {text[:40]!r} (use e.g. 300M, 6B)")
    return int(float(m.group(1)) * _SCALE[m.group(2).upper()])


def parse_filters(query: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    """SQL conditions on ``repos`` for the discovery filters present in ``query`` (name -> values)."""
    out: list[ColumnElement[bool]] = []
    for raw in query.get("num_parameters", []):
        lo, hi = None, None
        for part in raw.split(","):
            key, _, value = part.partition(":")
            if key == "min":
                lo = parse_count(value)
            elif key == "max":
                hi = parse_count(value)
            else:
                raise UsageError("num_parameters takes min:<count>,max:<count>")
        cond = select(repo_index.c.repo_id).where(repo_index.c.parameters.is_not(None))
        if lo is not None:
            cond = cond.where(repo_index.c.parameters >= lo)
        if hi is not None:
            cond = cond.where(repo_index.c.parameters <= hi)
        out.append(repos.c.id.in_(cond))
    for status in query.get("scan_status", []):
        if status not in SCAN_RANK:
            raise UsageError(f"scan_status must be one of {', '.join(SCAN_RANK)}")
        out.append(repos.c.id.in_(select(repo_index.c.repo_id).where(repo_index.c.scan_status == status)))
    for library in query.get("library", []):
        out.append(repos.c.library_name == library)
    for task in query.get("pipeline_tag", []):
        out.append(repos.c.pipeline_tag == task)
    for base in query.get("base_model", []):
        out.append(repos.c.id.in_(select(lineage_edges.c.repo_id).where(lineage_edges.c.base_model == base)))
    return out


def _edges(card: dict[str, Any]) -> list[tuple[str, str]]:
    bases = card.get("base_model")
    names = (
        [bases]
        if isinstance(bases, str)
        else [b for b in bases if isinstance(b, str)]
        if isinstance(bases, list)
        else []
    )
    relation = card.get("base_model_relation")
    rel = relation if isinstance(relation, str) and relation in _RELATIONS else "finetune"
    if len(names) > 1 and not isinstance(relation, str):
        rel = "merge"
    return [(n[:200], rel) for n in dict.fromkeys(names)][:50]


class DiscoveryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- index -----------------------------------------------------------------------------------------
    def index(
        self, repo: Repo, card: dict[str, Any], parameters: int | None, verdicts: Iterable[str]
    ) -> None:
        """Replace the discovery facts of ``repo`` with those of its new ``main``."""
        seen = set(verdicts)
        status = next((s for s in SCAN_RANK if s in seen), "safe")
        with self.db.write() as conn:
            conn.execute(delete(repo_index).where(repo_index.c.repo_id == repo.id))
            conn.execute(
                insert(repo_index).values(repo_id=repo.id, parameters=parameters, scan_status=status)
            )
            conn.execute(delete(lineage_edges).where(lineage_edges.c.repo_id == repo.id))
            edges = _edges(card)
            if edges:
                conn.execute(
                    insert(lineage_edges),
                    [{"repo_id": repo.id, "base_model": b, "relation": r} for b, r in edges],
                )

    def facts(self, repo: Repo) -> tuple[int | None, str | None]:
        """(total parameters, scan status) of ``main`` as indexed."""
        with self.db.read() as conn:
            row = conn.execute(select(repo_index).where(repo_index.c.repo_id == repo.id)).first()
        return (None, None) if row is None else (row.parameters, row.scan_status)

    def lineage(self, repo: Repo) -> list[LineageEdge]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(lineage_edges)
                .where(lineage_edges.c.repo_id == repo.id)
                .order_by(lineage_edges.c.base_model)
            )
            return [LineageEdge(repo.repo_id, r.base_model, r.relation) for r in rows]

    def children(self, base_model: str) -> list[int]:
        """Ids of repos whose card names ``base_model`` as a base."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(lineage_edges.c.repo_id).where(lineage_edges.c.base_model == base_model)
            )
            return [r.repo_id for r in rows]

    # -- likes -----------------------------------------------------------------------------------------
    def like(self, repo: Repo, who: Principal) -> bool:
        """Like ``repo``; ``False`` if ``who`` already did. Keeps ``repos.likes`` (the sort key) in step."""
        try:
            with self.db.write() as conn:
                known = conn.execute(
                    select(likes.c.user_id).where(likes.c.repo_id == repo.id, likes.c.user_id == who.user.id)
                ).first()
                if known is not None:
                    return False
                conn.execute(insert(likes).values(repo_id=repo.id, user_id=who.user.id, created_at=now_us()))
                conn.execute(update(repos).where(repos.c.id == repo.id).values(likes=repos.c.likes + 1))
        except DBIntegrityError:
            return False
        return True

    def unlike(self, repo: Repo, who: Principal) -> bool:
        with self.db.write() as conn:
            gone = conn.execute(
                delete(likes).where(likes.c.repo_id == repo.id, likes.c.user_id == who.user.id)
            ).rowcount
            if gone:
                conn.execute(update(repos).where(repos.c.id == repo.id).values(likes=repos.c.likes - 1))
        return bool(gone)

    def likers(self, repo: Repo) -> list[Liker]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(users.c.name, users.c.fullname, likes.c.created_at)
                .join(likes, likes.c.user_id == users.c.id)
                .where(likes.c.repo_id == repo.id)
                .order_by(likes.c.created_at.desc(), users.c.name)
            )
            return [Liker(r.name, r.fullname, r.created_at) for r in rows]

    def liked_by(self, user_name: str) -> list[tuple[Repo, int]]:
        """(repo, when) for every repo ``user_name`` likes; the caller filters visibility."""
        from cairn.registry.repos import _repo

        with self.db.read() as conn:
            rows = conn.execute(
                select(repos, likes.c.created_at.label("liked_at"))
                .join(likes, likes.c.repo_id == repos.c.id)
                .join(users, users.c.id == likes.c.user_id)
                .where(users.c.name == user_name)
                .order_by(likes.c.created_at.desc())
            ).all()
        return [(_repo(r), r.liked_at) for r in rows]
