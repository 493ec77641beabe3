"""Lineage: read a model's declared parents and walk them into a graph.

A model is seen through a :class:`ModelSource`: a local directory here, a hub repo revision read through
the HF API in :mod:`cairn.client.governance`, or a tree in the hub's own blob store in
:mod:`cairn.registry.licensing`. A :class:`Resolver` turns a parent reference from ``base_model`` or ``trained_on_outputs_of``
into another source; :class:`LocalResolver` looks in model directories on disk. :func:`read_node` gathers
what the license check needs (card license, LICENSE/NOTICE texts, name, parents with their relation,
inferred the way spec §1.4 describes when not stated), and :func:`walk` follows parents breadth-first,
recording parents it cannot resolve instead of failing, so that the check can say "needs review".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cairn.governance.card import RELATIONS, ModelCard, parse_card, strip_managed
from cairn.governance.errors import CardError, ParentNotFoundError

__all__ = [
    "MAX_LINEAGE_NODES",
    "MAX_TEXT_BYTES",
    "Edge",
    "LineageGraph",
    "LocalResolver",
    "LocalSource",
    "ModelSource",
    "Node",
    "Resolver",
    "read_node",
    "walk",
]

MAX_TEXT_BYTES = 1 << 20  # LICENSE / NOTICE / config files larger than this are not read
MAX_LINEAGE_NODES = 256
_TEXT_PREFIXES = ("license", "notice", "use_policy", "copying")
_QUANT_SUFFIXES = (".gguf", ".ggml", ".exl2")


class ModelSource(Protocol):
    """Read access to one model (a directory, or a hub repo at a revision)."""

    @property
    def ident(self) -> str: ...

    def list_files(self) -> list[str]: ...

    def read_text(self, name: str, *, limit: int = MAX_TEXT_BYTES) -> str | None:
        """The file's text, or None when it is missing, too large or not UTF-8."""
        ...


class Resolver(Protocol):
    """Turns a parent reference into a source; raises ParentNotFoundError when it cannot."""

    def resolve(self, ref: str, *, child: ModelSource) -> ModelSource: ...


@dataclass(frozen=True)
class LocalSource:
    path: Path

    @property
    def ident(self) -> str:
        return str(self.path)

    def list_files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file())

    def read_text(self, name: str, *, limit: int = MAX_TEXT_BYTES) -> str | None:
        p = self.path / name
        if not p.is_file() or p.stat().st_size > limit:
            return None
        try:
            return p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True)
class LocalResolver:
    """Resolves repo ids (``org/name``) as ``ROOT/org/name``, ``ROOT/org--name`` or ``ROOT/name`` under each
    root in order, and ``./x``, ``../x`` and absolute paths relative to the child, as long as they stay
    inside a root or the directory that holds the child (a card cannot point cairn anywhere on disk)."""

    roots: tuple[Path, ...] = ()

    def resolve(self, ref: str, *, child: ModelSource) -> ModelSource:
        candidates: list[Path] = []
        if "\0" in ref or len(ref) > 1024:
            raise ParentNotFoundError(ref[:200], child=child.ident)
        if ref.startswith(("./", "../", "/")) and isinstance(child, LocalSource):
            target = (child.path / ref).resolve()
            fences = [r.resolve() for r in self.roots] + [child.path.resolve().parent]
            if any(target.is_relative_to(f) for f in fences):  # a card may not send us across the disk
                candidates.append(target)
        elif ".." not in ref.split("/") and not ref.startswith("~"):
            name = ref.split("/")[-1]
            for root in self.roots:
                candidates += [root / ref, root / ref.replace("/", "--"), root / name]
        for c in candidates:
            try:
                if c.is_dir():
                    return LocalSource(c)
            except (OSError, ValueError):  # a name too long, a NUL byte: not a directory we can use
                continue
        raise ParentNotFoundError(ref, child=child.ident)


@dataclass(frozen=True)
class Edge:
    ref: str
    relation: str  # adapter | merge | quantized | finetune | distillation


@dataclass(frozen=True)
class Node:
    ident: str
    name: str
    card: ModelCard | None
    license_id: str | None  # the card's license (license_name when license is "other")
    license_texts: tuple[tuple[str, str], ...]  # (file name, text) of LICENSE / NOTICE / USE_POLICY files
    readme: str
    files: tuple[str, ...]
    parents: tuple[Edge, ...]
    card_error: str | None = None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _json(source: ModelSource, name: str) -> dict[str, object]:
    text = source.read_text(name)
    if text is None:
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _infer_relation(
    meta: dict[str, object], files: list[str], parents: list[str], source: ModelSource
) -> str:
    tags = [t.lower() for t in _strings(meta.get("tags"))]
    if "adapter_config.json" in files or meta.get("library_name") == "peft":
        return "adapter"
    config = _json(source, "config.json")
    if any(f.lower().endswith(_QUANT_SUFFIXES) for f in files) or "quantization_config" in config:
        return "quantized"
    if len(parents) > 1 or "mergekit" in tags or "mergekit_config.yml" in files:
        return "merge"
    return "finetune"


def read_node(source: ModelSource, *, relation: str | None = None) -> Node:
    """What the license check needs from one model. ``relation`` overrides the card's relation."""
    files = source.list_files()
    readme = source.read_text("README.md") or ""
    card: ModelCard | None = None
    card_error = None
    if readme:
        try:
            card = parse_card(readme, path=f"{source.ident}/README.md")
        except CardError as err:
            card_error = err.message
    meta = card.metadata if card else {}
    parents = list(dict.fromkeys(p.strip() for p in _strings(meta.get("base_model")) if p.strip()))
    if not parents:
        adapter_base = _json(source, "adapter_config.json").get("base_model_name_or_path")
        if isinstance(adapter_base, str) and adapter_base.strip():
            parents = [adapter_base.strip()]
    declared = meta.get("base_model_relation")
    rel = relation or (declared if declared in RELATIONS else None)
    rel = rel or _infer_relation(meta, files, parents, source)
    edges = [Edge(p, rel) for p in parents]
    edges += [Edge(p, "distillation") for p in dict.fromkeys(_strings(meta.get("trained_on_outputs_of")))]
    license_id = meta.get("license") if isinstance(meta.get("license"), str) else None
    if license_id == "other" and isinstance(meta.get("license_name"), str):
        license_id = str(meta["license_name"])
    texts = []
    for f in files:
        if f.lower().startswith(_TEXT_PREFIXES):
            text = source.read_text(f)
            if text is not None:
                texts.append((f, text))
    name = meta.get("model_name")
    if not isinstance(name, str) or not name.strip():
        index = meta.get("model-index")
        first = index[0] if isinstance(index, list) and index and isinstance(index[0], dict) else {}
        name = (
            first.get("name")
            if isinstance(first.get("name"), str)
            else source.ident.rstrip("/").split("/")[-1]
        )
    return Node(
        ident=source.ident,
        name=str(name),
        card=card,
        license_id=license_id,
        license_texts=tuple(texts),
        readme=strip_managed(readme),
        files=tuple(files),
        parents=tuple(edges),
        card_error=card_error,
    )


@dataclass(frozen=True)
class LineageGraph:
    root: Node
    nodes: dict[str, Node]  # ident -> node
    edges: tuple[tuple[str, Edge, str | None], ...]  # (child ident, edge, parent ident or None if unresolved)
    unresolved: tuple[tuple[str, str, str], ...]  # (child ident, reference, why)

    def parents_of(self, ident: str) -> list[tuple[Edge, Node | None]]:
        return [(e, self.nodes.get(p) if p else None) for c, e, p in self.edges if c == ident]

    def ancestors(self, ident: str) -> Iterable[tuple[tuple[Edge, ...], Node]]:
        """Every ancestor with the chain of edges leading to it (nearest first); each ancestor once."""
        seen = {ident}
        frontier: list[tuple[tuple[Edge, ...], str]] = [((), ident)]
        while frontier:
            nxt: list[tuple[tuple[Edge, ...], str]] = []
            for chain, cur in frontier:
                for edge, parent in self.parents_of(cur):
                    if parent is None or parent.ident in seen:
                        continue
                    seen.add(parent.ident)
                    yield (*chain, edge), parent
                    nxt.append(((*chain, edge), parent.ident))
            frontier = nxt


def walk(source: ModelSource, resolver: Resolver, *, relation: str | None = None) -> LineageGraph:
    """Follow parents from ``source``; ``relation`` overrides the root's relation to its parents."""
    root = read_node(source, relation=relation)
    nodes = {root.ident: root}
    edges: list[tuple[str, Edge, str | None]] = []
    unresolved: list[tuple[str, str, str]] = []
    queue: list[tuple[ModelSource, Node]] = [(source, root)]
    while queue:
        src, node = queue.pop(0)
        for edge in node.parents:
            try:
                parent_src = resolver.resolve(edge.ref, child=src)
            except ParentNotFoundError as err:
                edges.append((node.ident, edge, None))
                unresolved.append((node.ident, edge.ref, err.message))
                continue
            edges.append((node.ident, edge, parent_src.ident))
            if parent_src.ident in nodes:
                continue
            if len(nodes) >= MAX_LINEAGE_NODES:
                unresolved.append((node.ident, edge.ref, f"lineage has more than {MAX_LINEAGE_NODES} models"))
                continue
            parent = read_node(parent_src)
            nodes[parent.ident] = parent
            queue.append((parent_src, parent))
    return LineageGraph(root, nodes, tuple(edges), tuple(unresolved))
