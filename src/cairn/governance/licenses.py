"""The license knowledge base: license attributes as data, loaded and validated by code.

The facts live in ``data/licenses.json`` (one entry per Hugging Face license id), so that reviewing or
adding a license never means editing rules. :func:`load_knowledge_base` validates every entry against
:data:`REQUIRED_FIELDS` and raises :class:`~cairn.governance.errors.LicenseDataError` on anything
malformed; :meth:`KnowledgeBase.lookup` resolves ids, SPDX ids and aliases; :meth:`KnowledgeBase.detect`
recognises license texts (LICENSE / NOTICE files) by their fingerprints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from cairn.governance.errors import LicenseDataError

__all__ = [
    "OBLIGATION_KINDS",
    "REQUIRED_FIELDS",
    "KnowledgeBase",
    "License",
    "Obligation",
    "load_knowledge_base",
    "normalize_text",
    "parse_knowledge_base",
]

#: every field an entry must have, with the JSON type(s) it must hold
REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "spdx": (str,),
    "aliases": (list,),
    "family": (str,),
    "osi_approved": (bool,),
    "open_for": (list,),
    "commercial": (dict,),
    "derivatives": (bool,),
    "noncommercial": (bool,),
    "research_only": (bool,),
    "share_alike": (list, type(None)),
    "use_restrictions": (dict,),
    "outputs": (dict,),
    "obligations": (list,),
    "geo_restrictions": (list,),
    "remote_restriction": (bool,),
    "text_fingerprints": (list,),
    "confidence": (str,),
    "sources": (list,),
    "reviewed": (str,),
    "notes": (str,),
}

OBLIGATION_KINDS = frozenset(
    {
        "license_copy",
        "keep_notices",
        "modification_notice",
        "notice_file",
        "attribution_display",
        "attribution_credit",
        "name_prefix",
    }
)
_CONTENT_TYPES = frozenset({"code", "data", "document"})
_RELATIONS = frozenset({"finetune", "merge", "adapter", "quantized", "distillation"})


def normalize_text(text: str) -> str:
    """Lowercase, every run of non-alphanumerics to one space: how texts and fingerprints are compared."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


@dataclass(frozen=True)
class Obligation:
    kind: str
    text: str = ""  # notice or display text, or the name prefix
    applies_to: tuple[str, ...] = ()  # relations a name prefix applies to (empty: all)


@dataclass(frozen=True)
class License:
    id: str
    name: str
    spdx: str
    family: str
    aliases: tuple[str, ...]
    osi_approved: bool
    open_for: frozenset[str]
    commercial: bool
    mau_cap: int | None
    derivatives: bool
    noncommercial: bool
    research_only: bool
    share_alike: tuple[str, ...] | None
    passes_on_use_restrictions: bool
    policy_url: str | None
    outputs_terms_apply: bool
    outputs_may_train_other_models: bool
    obligations: tuple[Obligation, ...]
    geo_restrictions: tuple[tuple[str, str], ...]
    remote_restriction: bool
    text_fingerprints: tuple[str, ...]
    confidence: str
    sources: tuple[str, ...]
    reviewed: str
    notes: str

    @property
    def permits_commercial(self) -> bool:
        return self.commercial and not self.noncommercial and not self.research_only


def _require(entry: dict[str, Any], key: str, kinds: tuple[type, ...], ident: str) -> Any:
    value = entry.get(key)
    if key not in entry or not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        raise LicenseDataError(
            f"field {key!r} is missing or not {'/'.join(k.__name__ for k in kinds)}", entry=ident
        )
    return value


def _strings(value: list[Any], key: str, ident: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in value):
        raise LicenseDataError(f"field {key!r} must be a list of non-empty strings", entry=ident)
    return tuple(value)


def _obligation(raw: Any, ident: str) -> Obligation:
    if not isinstance(raw, dict) or raw.get("kind") not in OBLIGATION_KINDS:
        raise LicenseDataError(f"obligation {raw!r} has no known kind", entry=ident)
    kind = str(raw["kind"])
    text = raw.get("prefix") if kind == "name_prefix" else raw.get("text", "")
    if not isinstance(text, str) or (
        kind in {"notice_file", "attribution_display", "name_prefix"} and not text
    ):
        raise LicenseDataError(f"obligation {kind!r} needs its text", entry=ident)
    applies = raw.get("applies_to", [])
    if not isinstance(applies, list) or not set(applies) <= _RELATIONS:
        raise LicenseDataError(f"obligation {kind!r} has bad applies_to {applies!r}", entry=ident)
    return Obligation(kind, text, tuple(applies))


def _parse_entry(entry: Any) -> License:
    if not isinstance(entry, dict):
        raise LicenseDataError(f"entry is not an object: {entry!r:.60}")
    ident = str(entry.get("id", "?"))
    values = {key: _require(entry, key, kinds, ident) for key, kinds in REQUIRED_FIELDS.items()}
    sources = _strings(values["sources"], "sources", ident)
    if not sources or not all(s.startswith("https://") for s in sources):
        raise LicenseDataError("needs at least one https:// source link", entry=ident)
    commercial = values["commercial"]
    cap = commercial.get("mau_cap")
    if not isinstance(commercial.get("allowed"), bool) or not (cap is None or type(cap) is int):
        raise LicenseDataError("commercial must be {allowed: bool, mau_cap: int|null}", entry=ident)
    ur, outputs = values["use_restrictions"], values["outputs"]
    if not isinstance(ur.get("must_pass_on"), bool) or not isinstance(ur.get("policy_url"), str | None):
        raise LicenseDataError("use_restrictions must be {must_pass_on: bool, policy_url}", entry=ident)
    if not all(
        isinstance(outputs.get(k), bool) for k in ("derivative_terms_apply", "may_train_other_models")
    ):
        raise LicenseDataError("outputs must hold two booleans", entry=ident)
    open_for = frozenset(_strings(values["open_for"], "open_for", ident))
    if not open_for <= _CONTENT_TYPES:
        raise LicenseDataError(f"open_for must be within {sorted(_CONTENT_TYPES)}", entry=ident)
    geo = []
    for g in values["geo_restrictions"]:
        if (
            not isinstance(g, dict)
            or not isinstance(g.get("region"), str)
            or not isinstance(g.get("scope"), str)
        ):
            raise LicenseDataError("geo_restrictions entries need region and scope", entry=ident)
        geo.append((g["region"], g["scope"]))
    if values["confidence"] not in {"primary", "secondary"}:
        raise LicenseDataError("confidence must be 'primary' or 'secondary'", entry=ident)
    sa = values["share_alike"]
    return License(
        id=values["id"],
        name=values["name"],
        spdx=values["spdx"],
        family=values["family"],
        aliases=_strings(values["aliases"], "aliases", ident),
        osi_approved=values["osi_approved"],
        open_for=open_for,
        commercial=commercial["allowed"],
        mau_cap=cap,
        derivatives=values["derivatives"],
        noncommercial=values["noncommercial"],
        research_only=values["research_only"],
        share_alike=None if sa is None else _strings(sa, "share_alike", ident),
        passes_on_use_restrictions=ur["must_pass_on"],
        policy_url=ur["policy_url"],
        outputs_terms_apply=outputs["derivative_terms_apply"],
        outputs_may_train_other_models=outputs["may_train_other_models"],
        obligations=tuple(_obligation(o, ident) for o in values["obligations"]),
        geo_restrictions=tuple(geo),
        remote_restriction=values["remote_restriction"],
        text_fingerprints=tuple(
            normalize_text(f) for f in _strings(values["text_fingerprints"], "text_fingerprints", ident)
        ),
        confidence=values["confidence"],
        sources=sources,
        reviewed=values["reviewed"],
        notes=values["notes"],
    )


@dataclass(frozen=True)
class KnowledgeBase:
    licenses: tuple[License, ...]
    version: int
    reviewed: str

    def __post_init__(self) -> None:
        index: dict[str, License] = {}
        for lic in self.licenses:
            for key in (lic.id, lic.spdx, *lic.aliases):
                k = key.lower()
                if index.get(k, lic) is not lic:
                    raise LicenseDataError(f"key {key!r} is used by two entries", entry=lic.id)
                index[k] = lic
        object.__setattr__(self, "_index", index)

    def lookup(self, key: str) -> License | None:
        """The entry for a Hub license id, SPDX id or alias (case-insensitive), or None."""
        index: dict[str, License] = getattr(self, "_index")  # noqa: B009 - set in __post_init__
        return index.get(key.strip().lower())

    def get(self, key: str) -> License:
        lic = self.lookup(key)
        if lic is None:
            raise KeyError(key)
        return lic

    def detect(self, text: str) -> tuple[License, ...]:
        """Licenses whose fingerprint occurs in ``text``, most specific (longest fingerprint) first."""
        norm = normalize_text(text)
        hits: list[tuple[int, License]] = []
        for lic in self.licenses:
            best = max((len(fp) for fp in lic.text_fingerprints if fp in norm), default=0)
            if best:
                hits.append((best, lic))
        return tuple(lic for _, lic in sorted(hits, key=lambda h: -h[0]))


def parse_knowledge_base(raw: bytes) -> KnowledgeBase:
    """Validate a knowledge-base document (the JSON bytes of ``licenses.json``)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LicenseDataError(f"knowledge base is not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("licenses"), list)
        or type(doc.get("version")) is not int
    ):
        raise LicenseDataError("knowledge base must be {version: int, reviewed, licenses: [...]}")
    return KnowledgeBase(
        tuple(_parse_entry(e) for e in doc["licenses"]), doc["version"], str(doc.get("reviewed", ""))
    )


@lru_cache(maxsize=1)
def load_knowledge_base() -> KnowledgeBase:
    """The knowledge base shipped inside the package (validated once, then cached)."""
    raw = resources.files("cairn.governance").joinpath("data/licenses.json").read_bytes()
    return parse_knowledge_base(raw)
