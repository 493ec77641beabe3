"""Model cards: the repo's ``README.md``, a YAML front-matter block followed by Markdown.

Reading is defensive: the file size and the front matter's size are checked before parsing, YAML goes
through ``yaml.SafeLoader`` only, and a composer that refuses aliases (no "billion laughs") and caps the
node count and nesting depth. Every problem is a :class:`~cairn.governance.errors.CardError` carrying the
README line. :func:`validate_card` checks the Hugging Face metadata fields (spec §1.1, §1.2) and returns
line-numbered :class:`CardIssue` s; :func:`render_card` / :func:`write_card` write a card back.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cairn.governance.errors import CardError, CardLimitError

__all__ = [
    "MAX_CARD_BYTES",
    "MAX_FRONT_MATTER_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "RELATIONS",
    "CardIssue",
    "ModelCard",
    "parse_card",
    "read_card",
    "render_card",
    "safe_yaml_load",
    "strip_managed",
    "validate_card",
    "write_card",
]

MAX_CARD_BYTES = 4 << 20
MAX_FRONT_MATTER_BYTES = 256 << 10
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 32
RELATIONS = ("adapter", "merge", "quantized", "finetune")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class CardIssue:
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line if self.line is not None else '?'}: {self.field}: {self.message}"


@dataclass(frozen=True)
class ModelCard:
    metadata: dict[str, Any]
    body: str
    lines: dict[Path_, int] = field(default_factory=dict, repr=False)  # YAML path -> README line (1-based)

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


class _CardLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and bounds node count and depth while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise CardError("YAML aliases are not allowed in a model card", line=mark.line + 1)
        self._nodes += 1
        self._depth += 1
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self._nodes > MAX_YAML_NODES:
            raise CardLimitError(
                f"front matter has more than {MAX_YAML_NODES} YAML nodes", line=mark.line + 1
            )
        if self._depth > MAX_YAML_DEPTH:
            raise CardLimitError(
                f"front matter nests deeper than {MAX_YAML_DEPTH} levels", line=mark.line + 1
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _split(text: str) -> tuple[str | None, str, int]:
    """(front matter or None, body, README line of the front matter's first line)."""
    if not text.startswith("---"):
        return None, text, 0
    first_nl = text.find("\n")
    if first_nl < 0 or text[:first_nl].strip() != "---":
        return None, text, 0
    pos = first_nl + 1
    while True:
        nl = text.find("\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        if line.rstrip() in {"---", "..."}:
            return text[first_nl + 1 : pos], ("" if nl < 0 else text[nl + 1 :]), 2
        if nl < 0:
            raise CardError("front matter starts with '---' but is never closed", line=1)
        pos = nl + 1
        if pos - first_nl > MAX_FRONT_MATTER_BYTES:
            raise CardLimitError(f"front matter is larger than {MAX_FRONT_MATTER_BYTES} bytes", line=1)


def _record_lines(node: yaml.Node, path: Path_, offset: int, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + offset
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[(*path, key.value)] = key.start_mark.line + offset
                _record_lines(value, (*path, key.value), offset, out)
                out[(*path, key.value)] = key.start_mark.line + offset
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), offset, out)


def safe_yaml_load(text: str, *, what: str = "YAML", path: str | Path | None = None) -> Any:
    """Load untrusted YAML with the card limits (size, no aliases, node count, depth); errors are CardErrors."""
    if len(text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise CardLimitError(f"{what} is larger than {MAX_FRONT_MATTER_BYTES} bytes", path=path)
    loader = _CardLoader(text)
    try:
        return loader.get_single_data()
    except CardError as err:
        raise type(err)(err.reason, path=path, line=err.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise CardError(
            f"{what} is not valid YAML: {getattr(exc, 'problem', None) or exc}", path=path, line=line
        ) from None
    finally:
        loader.dispose()


def parse_card(text: str, *, path: str | Path | None = None) -> ModelCard:
    """Parse README text into metadata and body. A README without front matter has empty metadata."""
    if len(text) > MAX_CARD_BYTES:
        raise CardLimitError(f"model card is larger than {MAX_CARD_BYTES} bytes", path=path)
    try:
        front, body, first_line = _split(text)
    except CardError as err:
        raise type(err)(err.reason, path=path, line=err.line) from None
    if front is None:
        return ModelCard({}, body)
    if len(front.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise CardLimitError(f"front matter is larger than {MAX_FRONT_MATTER_BYTES} bytes", path=path, line=1)
    loader = _CardLoader(front)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except CardError as err:
        line = None if err.line is None else err.line + first_line - 1
        raise type(err)(err.reason, path=path, line=line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + first_line
        raise CardError(
            f"front matter is not valid YAML: {getattr(exc, 'problem', None) or exc}", path=path, line=line
        ) from None
    finally:
        loader.dispose()
    if data is None or node is None:
        return ModelCard({}, body)
    if not isinstance(data, dict):
        raise CardError("front matter must be a YAML mapping", path=path, line=first_line)
    lines: dict[Path_, int] = {}
    _record_lines(node, (), first_line, lines)
    return ModelCard({str(k): v for k, v in data.items()}, body, lines)


_MANAGED = re.compile(r"<!-- cairn:begin ([\w-]+) -->.*?<!-- cairn:end \1 -->", re.S)


def strip_managed(text: str) -> str:
    """README text without the sections cairn writes itself (so they never count as the author's)."""
    return _MANAGED.sub("", text)


def read_card(directory: str | Path) -> ModelCard | None:
    """The card of a model directory (``README.md``), or None when there is none."""
    p = Path(directory) / "README.md"
    if not p.is_file():
        return None
    size = p.stat().st_size
    if size > MAX_CARD_BYTES:
        raise CardLimitError(f"model card is {size} bytes, over the limit of {MAX_CARD_BYTES}", path=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CardError(f"model card is not UTF-8: {exc.reason}", path=p) from None
    return parse_card(text, path=p)


def _is_str_list(value: Any, *, allow_str: bool) -> bool:
    if allow_str and isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


_STR_FIELDS = (
    "license",
    "license_name",
    "license_link",
    "library_name",
    "pipeline_tag",
    "model_name",
    "thumbnail",
    "new_version",
)
_LIST_FIELDS = {
    "tags": False,
    "metrics": False,
    "datasets": True,
    "language": True,
    "base_model": True,
    "trained_on_outputs_of": True,
}


def _check_model_index(card: ModelCard, value: Any, issues: list[CardIssue]) -> None:
    def bad(path: Path_, message: str) -> None:
        issues.append(CardIssue(card.line_of(("model-index", *path)), "model-index", message))

    if not isinstance(value, list):
        bad((), "must be a list of {name, results}")
        return
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            bad((i,), "each entry needs a string 'name'")
            continue
        results = entry.get("results")
        if not isinstance(results, list):
            bad((i,), "'results' must be a list")
            continue
        for j, res in enumerate(results):
            at = (i, "results", j)
            if not isinstance(res, dict):
                bad(at, "a result must be a mapping")
                continue
            task, dataset, metrics = res.get("task"), res.get("dataset"), res.get("metrics")
            if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                bad((*at, "task"), "task.type is required")
            if not isinstance(dataset, dict) or not all(
                isinstance(dataset.get(k), str) for k in ("type", "name")
            ):
                bad((*at, "dataset"), "dataset.type and dataset.name are required")
            if not isinstance(metrics, list) or not metrics:
                bad((*at, "metrics"), "metrics must be a non-empty list")
            else:
                for k, m in enumerate(metrics):
                    ok = isinstance(m, dict) and isinstance(m.get("type"), str)
                    ok = (
                        ok
                        and isinstance(m.get("value"), int | float | str)
                        and not isinstance(m.get("value"), bool)
                    )
                    if not ok:
                        bad((*at, "metrics", k), "each metric needs 'type' and a number or string 'value'")
            source = res.get("source")
            if source is not None and (
                not isinstance(source, dict) or not isinstance(source.get("url"), str)
            ):
                bad((*at, "source"), "source.url is required when a source is given")


def validate_card(card: ModelCard) -> tuple[CardIssue, ...]:
    """Check the metadata against the Hub's field rules; an empty result means no problem found."""
    meta, issues = card.metadata, []

    def bad(key: str, message: str) -> None:
        issues.append(CardIssue(card.line_of((key,)), key, message))

    for key in _STR_FIELDS:
        if key in meta and not (isinstance(meta[key], str) and meta[key].strip()):
            bad(key, "must be a non-empty string")
    for key, allow_str in _LIST_FIELDS.items():
        if key in meta and not _is_str_list(meta[key], allow_str=allow_str):
            bad(key, "must be a list of strings" + (" or a string" if allow_str else ""))
    if "license" not in meta:
        issues.append(CardIssue(card.line_of(()), "license", "no license declared (all rights reserved)"))
    elif meta.get("license") == "other" and not isinstance(meta.get("license_name"), str):
        bad("license", "license 'other' needs license_name (and license_link)")
    rel = meta.get("base_model_relation")
    if rel is not None and rel not in RELATIONS:
        bad("base_model_relation", f"must be one of {', '.join(RELATIONS)}")
    if rel is not None and "base_model" not in meta:
        bad("base_model_relation", "is set but base_model is missing")
    if "extra_gated_eu_disallowed" in meta and not isinstance(meta["extra_gated_eu_disallowed"], bool):
        bad("extra_gated_eu_disallowed", "must be true or false")
    co2 = meta.get("co2_eq_emissions")
    if co2 is not None and not isinstance(co2, dict | int | float):
        bad("co2_eq_emissions", "must be a number (grams) or a mapping")
    if "model-index" in meta:
        _check_model_index(card, meta["model-index"], issues)
    return tuple(issues)


def render_card(metadata: Mapping[str, Any], body: str) -> str:
    """README text: front matter (when there is metadata) and body."""
    if not metadata:
        return body
    front = yaml.safe_dump(dict(metadata), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{front}---\n{body if body.startswith(chr(10)) else chr(10) + body}"


def write_card(directory: str | Path, metadata: Mapping[str, Any], body: str) -> Path:
    """Write ``README.md`` atomically (temp file in the same directory, fsync, rename)."""
    target = Path(directory) / "README.md"
    fd, tmp = tempfile.mkstemp(prefix=".README.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_card(metadata, body))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
