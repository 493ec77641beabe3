"""The lineage-aware license check (spec §4.1): conflicts, obligations, and what needs review.

For every model in a :class:`~cairn.governance.lineage.LineageGraph` the declared license is resolved
against the knowledge base (and compared with its LICENSE files), then checked against the propagating
terms of every ancestor, per relation: quantized copies keep the parent's license, fine-tunes and merges
inherit every parent's terms, adapters report the combined obligations, and distillation carries terms
only where the parent's license says so. Obligations (NOTICE text, license copy, "Built with ...", name
prefix) are checked against the root's files. The result never says "compliant": at best it found no
conflict, and anything it cannot decide is listed under ``needs_review``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

from cairn.governance.licenses import KnowledgeBase, License, load_knowledge_base, normalize_text
from cairn.governance.lineage import Edge, LineageGraph, Node

__all__ = ["USES", "CheckReport", "Finding", "check_lineage", "resolve_license"]

USES = ("commercial", "research", "internal")
_UNVERIFIABLE = {
    "keep_notices": "keep the upstream copyright and license notices",
    "modification_notice": "mark the files you modified with a prominent notice",
    "attribution_credit": "credit the licensor and link the license",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # "conflict" | "obligation" | "review"
    code: str
    node: str  # the model the finding is about
    message: str
    license: str | None = None  # the license the finding comes from
    source: str | None = None  # the ancestor it comes from
    status: str = ""  # obligations: "met" | "missing" | "todo" | "info"


@dataclass(frozen=True)
class CheckReport:
    root: str
    license: str | None
    use: str | None
    inherited: tuple[str, ...]  # license ids whose terms reach the root
    conflicts: tuple[Finding, ...]
    obligations: tuple[Finding, ...]
    needs_review: tuple[Finding, ...]

    @property
    def status(self) -> str:
        if self.conflicts:
            return "conflict"
        return "needs_review" if self.needs_review else "no_conflict_found"

    @property
    def exit_code(self) -> int:
        return {"conflict": 1, "needs_review": 2}.get(self.status, 0)

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "license": self.license,
            "use": self.use,
            "status": self.status,
            "inherited": list(self.inherited),
            "conflicts": [asdict(f) for f in self.conflicts],
            "obligations": [asdict(f) for f in self.obligations],
            "needs_review": [asdict(f) for f in self.needs_review],
            "disclaimer": "A screening aid, not legal advice.",
        }


def resolve_license(node: Node, kb: KnowledgeBase) -> tuple[License | None, list[Finding]]:
    """The node's license entry and the findings its resolution raised."""
    out: list[Finding] = []
    detected = {lic.id: lic for _, text in node.license_texts for lic in kb.detect(text)[:1]}
    if node.card_error:
        out.append(Finding("review", "bad_card", node.ident, node.card_error))
    declared = node.license_id
    if declared is None:
        if len(detected) == 1:
            lic = next(iter(detected.values()))
            msg = f"the card declares no license; the LICENSE file reads as {lic.id}: add `license: {lic.id}`"
            out.append(Finding("obligation", "declare_license", node.ident, msg, lic.id, status="missing"))
            return lic, out
        out.append(Finding("review", "no_license", node.ident, "no license declared (all rights reserved)"))
        return None, out
    if declared.lower() in {"unknown", "other"}:
        msg = f"license is {declared!r} without a license_name cairn knows"
        out.append(Finding("review", "unknown_license", node.ident, msg, declared))
        return None, out
    known = kb.lookup(declared)
    if known is None:
        msg = f"license {declared!r} is not in the knowledge base"
        out.append(Finding("review", "unknown_license", node.ident, msg, declared))
        return None, out
    if detected and known.id not in detected:
        msg = f"the card declares {known.id} but the LICENSE files read as {', '.join(sorted(detected))}"
        out.append(Finding("review", "license_file_disagrees", node.ident, msg, known.id))
    return known, out


def _declares_restrictions(node: Node, parent: License) -> bool:
    texts = normalize_text(node.readme + " " + " ".join(t for _, t in node.license_texts))
    keys = [normalize_text(parent.name)] + ([normalize_text(parent.policy_url)] if parent.policy_url else [])
    return any(k in texts for k in keys)


def _edge_findings(
    node: Node, lic: License, chain: tuple[Edge, ...], anc: Node, alic: License
) -> list[Finding]:
    rel = chain[0].relation
    adapter = rel == "adapter"
    out: list[Finding] = []

    def add(code: str, message: str) -> None:
        if adapter:  # the adapter's own terms may differ; its use still needs the base
            msg = f"when used with its base: {message}"
            out.append(Finding("obligation", f"combined_{code}", node.ident, msg, alic.id, anc.ident, "info"))
        else:
            out.append(Finding("conflict", code, node.ident, message, alic.id, anc.ident))

    if not alic.derivatives:
        out.append(
            Finding(
                "conflict",
                "no_derivatives",
                node.ident,
                f"{anc.name} is {alic.id}: no derivatives may be shared",
                alic.id,
                anc.ident,
            )
        )
    if not alic.permits_commercial and lic.permits_commercial:
        kind = "research-only" if alic.research_only else "non-commercial"
        add(
            "noncommercial_parent",
            f"{anc.name} is {kind} ({alic.id}) but {node.name} declares {lic.id}, which permits commercial use",
        )
    if alic.share_alike is not None and lic.id not in alic.share_alike:
        add(
            "share_alike",
            f"{anc.name} is {alic.id}: derivatives must use one of {', '.join(alic.share_alike)}, not {lic.id}",
        )
    if (
        alic.passes_on_use_restrictions
        and lic.family != alic.family
        and not _declares_restrictions(node, alic)
    ):
        add(
            "use_restrictions_dropped",
            f"{anc.name}'s use restrictions ({alic.id}) must be passed on, but {node.name} declares {lic.id} without them",
        )
    if len(chain) == 1 and rel == "quantized" and lic.id != alic.id:
        msg = f"a quantized copy keeps its parent's license: declare {alic.id}, not {lic.id} (license drift)"
        out.append(Finding("obligation", "license_drift", node.ident, msg, alic.id, anc.ident, "missing"))
    return out


def _obligation_findings(root: Node, rel: str, anc: Node, alic: License, kb: KnowledgeBase) -> list[Finding]:
    texts = " ".join(t for _, t in root.license_texts)
    everything = normalize_text(texts + " " + root.readme)
    out: list[Finding] = []
    for ob in alic.obligations:
        if ob.kind == "license_copy":
            met = any(alic in kb.detect(t) for _, t in root.license_texts)
            msg = f"ship a copy of the {alic.name} (e.g. LICENSE or LICENSE.{alic.id})"
        elif ob.kind == "notice_file":
            met = normalize_text(ob.text) in everything
            msg = f'include the notice "{ob.text}" (NOTICE file)'
        elif ob.kind == "attribution_display":
            met = normalize_text(ob.text) in normalize_text(root.readme)
            msg = f'display "{ob.text}" in the model card'
        elif ob.kind == "name_prefix":
            if ob.applies_to and rel not in ob.applies_to:
                continue
            met = normalize_text(root.name).startswith(normalize_text(ob.text))
            msg = f'the model name must begin with "{ob.text}" (is "{root.name}")'
        else:
            msg = _UNVERIFIABLE.get(ob.kind, ob.kind)
            out.append(Finding("obligation", ob.kind, root.ident, msg, alic.id, anc.ident, "todo"))
            continue
        out.append(
            Finding("obligation", ob.kind, root.ident, msg, alic.id, anc.ident, "met" if met else "missing")
        )
    for region, scope in alic.geo_restrictions:
        eu = bool(root.card and root.card.metadata.get("extra_gated_eu_disallowed") is True)
        msg = f"{alic.id}: {scope} models are not licensed to {region}-domiciled users; gate the repo"
        out.append(
            Finding(
                "obligation", "geo_restriction", root.ident, msg, alic.id, anc.ident, "met" if eu else "info"
            )
        )
    if alic.remote_restriction:
        msg = f"{alic.id}: the licensor may restrict usage remotely; users must try to use the latest version"
        out.append(Finding("obligation", "remote_restriction", root.ident, msg, alic.id, anc.ident, "info"))
    return out


def _use_findings(root: Node, use: str | None, inherited: list[tuple[Node, License]]) -> list[Finding]:
    out: list[Finding] = []
    for node, lic in inherited:
        if use == "commercial" and not lic.permits_commercial:
            msg = f"commercial use is not permitted by {lic.id} ({node.name})"
            out.append(Finding("conflict", "use_not_permitted", root.ident, msg, lic.id, node.ident))
        if use == "commercial" and lic.mau_cap:
            msg = f"{lic.id}: above {lic.mau_cap:,} monthly active users a separate license is needed"
            out.append(Finding("obligation", "user_cap", root.ident, msg, lic.id, node.ident, "info"))
        if use == "internal" and not lic.permits_commercial:
            msg = f"{lic.id} ({node.name}) limits use to non-commercial or research purposes: is this internal use one?"
            out.append(Finding("review", "internal_use", root.ident, msg, lic.id, node.ident))
    return out


def _parents_compatible(root: Node, inherited: list[tuple[Node, License]]) -> list[Finding]:
    out: list[Finding] = []
    for (n1, l1), (n2, l2) in combinations(inherited, 2):
        if l1.family == l2.family:
            continue
        clash = (
            l1.share_alike is not None
            and l2.id not in l1.share_alike
            and (l2.passes_on_use_restrictions or l2.share_alike)
        ) or (
            l2.share_alike is not None
            and l1.id not in l2.share_alike
            and (l1.passes_on_use_restrictions or l1.share_alike)
        )
        if clash:
            msg = f"the terms of {l1.id} ({n1.name}) and {l2.id} ({n2.name}) cannot both hold"
            out.append(Finding("conflict", "incompatible_parents", root.ident, msg, f"{l1.id}+{l2.id}"))
    return out


def check_lineage(
    graph: LineageGraph, *, use: str | None = None, kb: KnowledgeBase | None = None
) -> CheckReport:
    """Check every model in ``graph`` against its ancestors; obligations and use are checked for the root."""
    kb = kb or load_knowledge_base()
    findings: list[Finding] = []
    licenses: dict[str, License | None] = {}
    for ident, node in graph.nodes.items():
        licenses[ident], found = resolve_license(node, kb)
        findings += [f for f in found if f.kind == "review" or ident == graph.root.ident]
    for child, ref, why in graph.unresolved:
        findings.append(Finding("review", "parent_not_found", child, why, source=ref))
    root = graph.root
    inherited: list[tuple[Node, License]] = []
    root_lic = licenses[root.ident]
    if root_lic is not None:
        inherited.append((root, root_lic))
    for ident, node in graph.nodes.items():
        lic = licenses[ident]
        for chain, anc in graph.ancestors(ident):
            alic = licenses[anc.ident]
            if alic is None:
                continue
            distilled = any(e.relation == "distillation" for e in chain)
            if distilled and not alic.outputs_terms_apply:
                if not alic.outputs_may_train_other_models and lic is not None and lic.family != alic.family:
                    msg = f"{alic.id} forbids using {anc.name}'s outputs to improve models outside its family"
                    findings.append(Finding("conflict", "outputs_training", ident, msg, alic.id, anc.ident))
                continue
            if lic is not None:
                findings += _edge_findings(node, lic, chain, anc, alic)
            if ident == root.ident:
                inherited.append((anc, alic))
                rel = "distillation" if distilled else chain[0].relation
                findings += _obligation_findings(root, rel, anc, alic, kb)
    for node, lic in inherited:
        if lic.confidence == "secondary":
            msg = f"cairn's entry for {lic.id} rests on a secondary summary: verify the terms in its text"
            findings.append(
                Finding("obligation", "verify_terms", root.ident, msg, lic.id, node.ident, "info")
            )
    findings += _use_findings(root, use, inherited)
    findings += _parents_compatible(root, inherited)
    unique = list(dict.fromkeys(findings))
    return CheckReport(
        root=root.ident,
        license=root_lic.id if root_lic else root.license_id,
        use=use,
        inherited=tuple(dict.fromkeys(lic.id for _, lic in inherited)),
        conflicts=tuple(f for f in unique if f.kind == "conflict"),
        obligations=tuple(f for f in unique if f.kind == "obligation"),
        needs_review=tuple(f for f in unique if f.kind == "review"),
    )
