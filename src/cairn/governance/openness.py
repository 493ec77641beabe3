"""Openness class by the Model Openness Framework (MOF 1.0), as the LF AI Model Openness Tool computes it.

Class III (Open Model) ⊂ II (Open Tooling) ⊂ I (Open Science): a class is reached when every required
component of it and of every higher-numbered class is present and under an open license (spec §2.2).
A component's license is its own, else the global license for its content type, else the global
distribution license; no license is not open; custom and non-commercial model licenses are never open.
An open license of the wrong content type (Apache-2.0 on weights) counts, with a warning.

:func:`inventory_from_source` pre-fills the inventory from a model's files and card; :func:`read_mot` and
:func:`write_mot` import and export the tool's YAML so that its records interoperate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from cairn.governance.card import safe_yaml_load
from cairn.governance.errors import CardError
from cairn.governance.licenses import KnowledgeBase, load_knowledge_base
from cairn.governance.lineage import ModelSource, Node

__all__ = [
    "COMPONENTS",
    "Component",
    "Inventory",
    "Missing",
    "OpennessResult",
    "classify",
    "inventory_from_source",
    "read_mot",
    "write_mot",
]


@dataclass(frozen=True)
class Component:
    name: str
    content_type: str  # code | data | document
    mof_class: int  # 3, 2 or 1
    required: bool


COMPONENTS = (
    Component("Model architecture", "code", 3, True),
    Component("Model parameters (Final)", "data", 3, True),
    Component("Model card", "document", 3, True),
    Component("Data card", "document", 3, True),
    Component("Technical report", "document", 3, True),
    Component("Evaluation results", "document", 3, True),
    Component("Sample model outputs", "document", 3, False),
    Component("Training code", "code", 2, True),
    Component("Inference code", "code", 2, True),
    Component("Evaluation code", "code", 2, True),
    Component("Evaluation data", "data", 2, True),
    Component("Supporting libraries and tools", "code", 2, False),
    Component("Datasets", "data", 1, True),
    Component("Data preprocessing code", "code", 1, True),
    Component("Model parameters (Intermediate)", "data", 1, True),
    Component("Research paper", "document", 1, True),
    Component("Model metadata", "data", 1, False),
)
_BY_NAME = {c.name: c for c in COMPONENTS}
_CLASS_NAMES = {3: "Class III (Open Model)", 2: "Class II (Open Tooling)", 1: "Class I (Open Science)"}


@dataclass(frozen=True)
class Inventory:
    """Which components a release includes, with their licenses (None: inherit the global ones)."""

    name: str
    producer: str = "unknown"
    components: dict[str, str | None] = field(default_factory=dict)  # component name -> own license
    paths: dict[str, str] = field(default_factory=dict)
    global_licenses: dict[str, str] = field(default_factory=dict)  # distribution | code | data | document


@dataclass(frozen=True)
class Missing:
    component: str
    mof_class: int
    reason: str  # "not included" | "no license" | "not open: <license>"


@dataclass(frozen=True)
class OpennessResult:
    mof_class: int  # 0 = unclassified, else 3, 2 or 1
    label: str
    progress: dict[int, float]  # class -> share (0..1) of its required components that are met
    missing_for_next: tuple[Missing, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "class": self.mof_class,
            "label": self.label,
            "progress": {str(k): round(v, 3) for k, v in self.progress.items()},
            "missing_for_next_class": [vars(m) for m in self.missing_for_next],
            "warnings": list(self.warnings),
        }


def _license_for(inv: Inventory, comp: Component) -> str | None:
    own = inv.components.get(comp.name)
    return own or inv.global_licenses.get(comp.content_type) or inv.global_licenses.get("distribution")


def _satisfied(inv: Inventory, name: str) -> bool:
    """Present; a research paper stands in for the technical report. (Evaluation results inside the card and
    a data card folded into the model card are detected by :func:`inventory_from_source`.)"""
    if name in inv.components:
        return True
    if name == "Technical report":
        return "Research paper" in inv.components
    return False


def classify(inv: Inventory, kb: KnowledgeBase | None = None) -> OpennessResult:
    kb = kb or load_knowledge_base()
    problems: dict[int, list[Missing]] = {3: [], 2: [], 1: []}
    totals: dict[int, int] = {3: 0, 2: 0, 1: 0}
    warnings: list[str] = []
    for comp in COMPONENTS:
        if not comp.required:
            continue
        totals[comp.mof_class] += 1
        if not _satisfied(inv, comp.name):
            problems[comp.mof_class].append(Missing(comp.name, comp.mof_class, "not included"))
            continue
        lic_id = _license_for(inv, comp)
        lic = kb.lookup(lic_id) if lic_id else None
        if lic_id is None or lic_id.lower() == "unlicensed":
            problems[comp.mof_class].append(Missing(comp.name, comp.mof_class, "no license"))
        elif lic is None or not (lic.osi_approved or lic.open_for):
            problems[comp.mof_class].append(Missing(comp.name, comp.mof_class, f"not open: {lic_id}"))
        elif comp.content_type not in lic.open_for:
            warnings.append(f"{comp.name}: {lic.id} is open but not meant for {comp.content_type}")
    progress = {k: (totals[k] - len(problems[k])) / totals[k] for k in (3, 2, 1)}
    achieved = 0
    for k in (3, 2, 1):
        if problems[k]:
            break
        achieved = k
    nxt = {0: 3, 3: 2, 2: 1}.get(achieved)
    missing = tuple(problems[nxt]) if nxt else ()
    label = _CLASS_NAMES.get(achieved, "unclassified")
    return OpennessResult(achieved, label, progress, missing, tuple(warnings))


_WEIGHTS = re.compile(r".*\.(safetensors|bin|pt|pth|gguf|onnx|h5|keras|msgpack|npz)$", re.I)


def inventory_from_source(source: ModelSource, node: Node) -> Inventory:
    """What can be detected from a model's files and card; anything else stays absent (needs a human)."""
    files = set(source.list_files())
    meta: dict[str, Any] = node.card.metadata if node.card else {}
    comps: dict[str, str | None] = {}
    paths: dict[str, str] = {}

    def add(name: str, path: str) -> None:
        comps[name] = None
        paths[name] = path

    if "README.md" in files:
        add("Model card", "README.md")
    weights = sorted(f for f in files if _WEIGHTS.match(f))
    if weights:
        add("Model parameters (Final)", weights[0])
    arch = sorted(f for f in files if f.startswith("modeling_") and f.endswith(".py"))
    if arch:
        add("Model architecture", arch[0])
    elif meta.get("library_name") == "transformers" or "config.json" in files:
        comps["Model architecture"] = "apache-2.0"  # the architecture lives in transformers, Apache-2.0
        paths["Model architecture"] = "https://github.com/huggingface/transformers"
    if meta.get("model-index"):
        comps["Evaluation results"] = None
        paths["Evaluation results"] = "README.md#model-index"
    for name, patterns in (
        ("Data card", ("data_card", "datacard", "dataset_card")),
        ("Technical report", ("technical_report", "tech_report")),
        ("Training code", ("train",)),
        ("Inference code", ("inference", "predict", "generate")),
        ("Evaluation code", ("eval",)),
        ("Data preprocessing code", ("preprocess", "prepare_data")),
    ):
        hits = sorted(f for f in files if f.lower().startswith(patterns))
        if hits:
            add(name, hits[0])
    if "Data card" not in comps and re.search(
        r"^#{2,4} Training Data\s*\n+(?!\[More Information Needed\])\S", node.readme, re.M
    ):
        add("Data card", "README.md#training-data")  # a data card folded into the model card
    if "trainer_state.json" in files:
        add("Model metadata", "trainer_state.json")
    raw_tags = meta.get("tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    arxiv = [t for t in tags if isinstance(t, str) and t.startswith("arxiv:")]
    if arxiv:
        add("Research paper", f"https://arxiv.org/abs/{arxiv[0].split(':', 1)[1]}")
    globals_: dict[str, str] = {}
    if node.license_id:
        globals_["distribution"] = node.license_id
    return Inventory(node.name, str(meta.get("model_creator", "unknown")), comps, paths, globals_)


def read_mot(text: str) -> Inventory:
    """Import a Model Openness Tool record (YAML); unknown component names are a CardError."""
    doc = safe_yaml_load(text, what="MOT record")
    release = doc.get("release") if isinstance(doc, dict) else None
    if not isinstance(release, dict) or not isinstance(release.get("name"), str):
        raise CardError("MOT record needs release.name")
    comps: dict[str, str | None] = {}
    paths: dict[str, str] = {}
    raw_components = release.get("components") or []
    if not isinstance(raw_components, list):
        raise CardError("MOT record: release.components must be a list")
    for c in raw_components:
        if not isinstance(c, dict) or c.get("name") not in _BY_NAME:
            raise CardError(f"MOT record has an unknown component {c!r:.80}")
        lic = c.get("license")
        comps[c["name"]] = str(lic) if lic else None
        if isinstance(c.get("component_path"), str):
            paths[c["name"]] = c["component_path"]
    globals_: dict[str, str] = {}
    lic_block = release.get("license") or {}
    if not isinstance(lic_block, dict):
        raise CardError("MOT record: release.license must be a mapping")
    for key in ("distribution", "code", "data", "document"):
        entry = lic_block.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            globals_[key] = entry["name"]
    return Inventory(release["name"], str(release.get("producer", "unknown")), comps, paths, globals_)


def write_mot(inv: Inventory, kb: KnowledgeBase | None = None) -> str:
    """Export an inventory as a Model Openness Tool YAML record (SPDX ids where cairn knows them)."""
    kb = kb or load_knowledge_base()

    def spdx(lic: str) -> str:
        known = kb.lookup(lic)
        return known.spdx if known else lic

    components = []
    for comp in COMPONENTS:
        if comp.name not in inv.components:
            continue
        entry: dict[str, Any] = {"name": comp.name, "description": ""}
        own = inv.components[comp.name]
        if own:
            entry["license"] = spdx(own)
        if comp.name in inv.paths:
            entry["component_path"] = inv.paths[comp.name]
        components.append(entry)
    doc = {
        "framework": {"name": "Model Openness Framework", "version": "1.0", "date": "2024-12-15"},
        "release": {
            "name": inv.name,
            "producer": inv.producer,
            "license": {k: {"name": spdx(v)} for k, v in inv.global_licenses.items()},
            "components": components,
        },
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
