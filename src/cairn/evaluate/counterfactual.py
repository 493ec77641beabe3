"""Counterfactual probing of text classifiers: the same sentence with only the identity term swapped.

Each template holds a placeholder (``{identity}`` by default) that is replaced — by plain string
replacement, never ``str.format``, so a template cannot reach Python attributes — with every term of every
group. Per template the score of a group is the mean over its terms; the *spread* is the largest minus the
smallest group score, and the template *flips* when the thresholded prediction differs between any two
terms. The report says how often (``flip_rate``) and how much (``mean_spread``, ``max_spread``) the
prediction moves when only identity changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cairn.errors import FormatError, LimitExceededError, NotFoundError
from cairn.evaluate.errors import EvaluationError, LengthMismatchError

__all__ = [
    "MAX_TEMPLATES",
    "MAX_TERMS",
    "CounterfactualReport",
    "ProbeResult",
    "load_probe_files",
    "probe",
]

MAX_TEMPLATES = 10_000
MAX_TERMS = 200
_MAX_FILE_BYTES = 8 << 20


@dataclass(frozen=True)
class ProbeResult:
    """One template: mean score per group, their spread, and whether any prediction flipped."""

    template: str
    group_scores: Mapping[str, float]
    spread: float
    flipped: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "group_scores": dict(self.group_scores),
            "spread": self.spread,
            "flipped": self.flipped,
        }


@dataclass(frozen=True)
class CounterfactualReport:
    """How often and how much predictions change when only the identity term changes."""

    n_templates: int
    groups: tuple[str, ...]
    flip_rate: float
    mean_spread: float
    max_spread: float
    group_means: Mapping[str, float]
    results: tuple[ProbeResult, ...]
    threshold: float

    def worst(self, k: int = 10) -> tuple[ProbeResult, ...]:
        return tuple(sorted(self.results, key=lambda r: r.spread, reverse=True)[:k])

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_templates": self.n_templates,
            "groups": list(self.groups),
            "flip_rate": self.flip_rate,
            "mean_spread": self.mean_spread,
            "max_spread": self.max_spread,
            "group_means": dict(self.group_means),
            "threshold": self.threshold,
            "worst": [r.to_dict() for r in self.worst()],
        }


def _validate(templates: Sequence[str], terms: Mapping[str, Sequence[str]], placeholder: str) -> None:
    if not templates:
        raise EvaluationError("no templates to probe")
    if len(templates) > MAX_TEMPLATES:
        raise LimitExceededError(f"{len(templates)} templates, over the limit of {MAX_TEMPLATES}")
    if len(terms) < 2:
        raise EvaluationError("counterfactual probing needs at least two groups of identity terms")
    for group, words in terms.items():
        if not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise EvaluationError(f"group {group!r} needs a non-empty list of non-empty terms")
        if len(words) > MAX_TERMS:
            raise LimitExceededError(f"group {group!r} has {len(words)} terms, over the limit of {MAX_TERMS}")
    for t in templates:
        if placeholder not in t:
            raise EvaluationError(f"template {t!r} has no {placeholder} placeholder")


def probe(
    score: Callable[[Sequence[str]], np.ndarray],
    templates: Sequence[str],
    terms: Mapping[str, Sequence[str]],
    *,
    placeholder: str = "{identity}",
    threshold: float = 0.5,
) -> CounterfactualReport:
    """Score every template with every term and summarise the differences between groups."""
    _validate(templates, terms, placeholder)
    groups = tuple(terms)
    flat = [(g, w) for g in groups for w in terms[g]]
    sentences = [t.replace(placeholder, w) for t in templates for _, w in flat]
    scores = np.asarray(score(sentences), dtype=float).ravel()
    if len(scores) != len(sentences):
        raise LengthMismatchError("scores of probe sentences", len(sentences), len(scores))
    grid = scores.reshape(len(templates), len(flat))
    owner = np.array([g for g, _ in flat], dtype=object)
    results: list[ProbeResult] = []
    for i, template in enumerate(templates):
        row = grid[i]
        per_group = {g: float(row[owner == g].mean()) for g in groups}
        labels = row >= threshold
        results.append(
            ProbeResult(
                template=template,
                group_scores=per_group,
                spread=float(max(per_group.values()) - min(per_group.values())),
                flipped=bool(labels.any() and not labels.all()),
            )
        )
    spreads = np.array([r.spread for r in results])
    return CounterfactualReport(
        n_templates=len(templates),
        groups=groups,
        flip_rate=float(np.mean([r.flipped for r in results])),
        mean_spread=float(spreads.mean()),
        max_spread=float(spreads.max()),
        group_means={g: float(grid[:, owner == g].mean()) for g in groups},
        results=tuple(results),
        threshold=threshold,
    )


def load_probe_files(templates: str | Path, terms: str | Path) -> tuple[list[str], dict[str, list[str]]]:
    """Templates (one per line, ``#`` comments) and terms (JSON object: group -> list of terms)."""
    texts = []
    for path in (Path(templates), Path(terms)):
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist")
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise LimitExceededError(f"over {_MAX_FILE_BYTES} bytes", path=path)
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise FormatError(f"not UTF-8: {err}", path=path) from err
    lines = [ln.strip() for ln in texts[0].splitlines()]
    template_list = [ln for ln in lines if ln and not ln.startswith("#")]
    try:
        data = json.loads(texts[1])
    except json.JSONDecodeError as err:
        raise FormatError(f"terms file is not JSON: {err}", path=terms) from err
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise FormatError("terms file must be a JSON object of group -> list of terms", path=terms)
    return template_list, {str(k): [str(w) for w in v] for k, v in data.items()}
