"""Recording results with the checkpoint: ``fairness.json``, model-card ``model-index``, derived artifacts.

* ``fairness.json`` (schema ``cairn.fairness/1``, documented in docs/evaluate.md) is written atomically
  (temporary file, fsync, rename) into the checkpoint directory.
* The model card (``README.md``) gets one ``model-index`` result for the evaluation: one metric entry per
  (metric, group) and one per disparity, as the governance spec proposes. The YAML front matter is read
  with ``yaml.safe_load`` and written with ``yaml.safe_dump``; other keys and the Markdown body are kept,
  and an earlier cairn fairness result for the same dataset is replaced rather than duplicated.
* A threshold mitigation is a *derived artifact*: a directory with ``thresholds.json`` (the per-group
  rules as data, never a pickle), its own ``fairness.json`` and a card whose ``base_model`` points at the
  original, with the sha256 of every base file recorded as lineage.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, LimitExceededError
from cairn.evaluate.report import FairnessReport
from cairn.format.atomic_file import write_atomic
from cairn.format.hashing import sha256_file

__all__ = [
    "CARD_TASK_NAME",
    "FAIRNESS_FILE",
    "SCHEMA",
    "THRESHOLDS_FILE",
    "check_model_card",
    "file_digests",
    "model_index_result",
    "read_fairness",
    "update_model_card",
    "write_json_atomic",
]

SCHEMA = "cairn.fairness/1"
FAIRNESS_FILE = "fairness.json"
THRESHOLDS_FILE = "thresholds.json"
CARD_TASK_NAME = "Fairness evaluation (cairn)"
MAX_CARD_BYTES = 4 << 20
MAX_RECORD_BYTES = 64 << 20


def now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old file or the new one, never half."""
    _write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"))


def read_fairness(checkpoint: str | Path) -> dict[str, Any]:
    """The ``fairness.json`` record of a checkpoint directory, checked for its schema and report."""
    path = Path(checkpoint) / FAIRNESS_FILE
    if not path.is_file():
        from cairn.errors import NotFoundError

        raise NotFoundError(f"{checkpoint} has no {FAIRNESS_FILE}; run `cairn eval fairness` first")
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise LimitExceededError(f"{FAIRNESS_FILE} is over {MAX_RECORD_BYTES} bytes", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"not JSON: {err}", path=path) from err
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("report"), dict):
        raise FormatError(f"not a {SCHEMA} record", path=path)
    FairnessReport.from_dict(data["report"])  # validates
    return data


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (relative POSIX paths), excluding our own outputs."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if (
                name.startswith(".")
                or path.is_symlink()
                or not path.is_file()
                or rel in {FAIRNESS_FILE, "README.md"}
            ):
                continue
            out[rel] = sha256_file(path)[1]
    return dict(sorted(out.items()))


def model_index_result(report: FairnessReport, *, dataset: str, task_type: str) -> dict[str, Any]:
    """One ``model-index`` result: a metric per (metric, group), plus one per disparity."""
    feature = ",".join(report.sensitive_features)
    metrics: list[dict[str, Any]] = []
    for g in report.groups:
        for name, value in g.metrics.items():
            if value is None:
                continue
            pretty = name.replace("_", " ").capitalize()
            metrics.append(
                {
                    "type": name,
                    "value": round(value, 6),
                    "name": f"{pretty} ({g.label})",
                    "config": g.label,
                    "args": {"sensitive_feature": feature, "group": g.values},
                }
            )
    for name, value in report.disparities.items():
        if value is None:
            continue
        metrics.append(
            {
                "type": name,
                "value": round(value, 6),
                "name": f"{name.replace('_', ' ').capitalize()} ({feature})",
                "args": {"sensitive_feature": feature, "method": "between_groups"},
            }
        )
    return {
        "task": {"type": task_type, "name": CARD_TASK_NAME},
        "dataset": {"type": dataset, "name": dataset},
        "metrics": metrics,
    }


def _split_card(text: str, path: Path) -> tuple[dict[str, Any], str]:
    import yaml

    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return {}, text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            try:
                meta = yaml.safe_load("".join(lines[1:i])) or {}
            except yaml.YAMLError as err:
                raise FormatError(f"model card front matter is not valid YAML: {err}", path=path) from err
            if not isinstance(meta, dict):
                raise FormatError("model card front matter must be a mapping", path=path)
            return meta, "".join(lines[i + 1 :])
    raise FormatError("model card front matter is not closed by ---", path=path)


def _load_card(path: Path) -> tuple[dict[str, Any], str, list[Any]]:
    """(front matter, body, model-index list) of a card, validated; empty parts when there is no card."""
    text = ""
    if path.exists():
        if path.stat().st_size > MAX_CARD_BYTES:
            raise LimitExceededError(f"model card is over {MAX_CARD_BYTES} bytes", path=path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise FormatError(f"model card is not UTF-8: {err}", path=path) from err
    meta, body = _split_card(text, path)
    index = meta.get("model-index")
    if index is None:
        index = []
    if not isinstance(index, list) or not all(isinstance(e, dict) for e in index):
        raise FormatError("model-index must be a list of mappings", path=path)
    if index and not isinstance(index[0].get("results", []), list):
        raise FormatError("model-index results must be a list", path=path)
    return meta, body, index


def check_model_card(checkpoint: Path) -> None:
    """Raise the error :func:`update_model_card` would raise, without writing anything."""
    _load_card(checkpoint / "README.md")


def update_model_card(
    checkpoint: Path,
    result: Mapping[str, Any],
    *,
    model_name: str,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Add or replace our ``model-index`` result in ``checkpoint/README.md``; keep everything else."""
    import yaml

    path = checkpoint / "README.md"
    meta, body, index = _load_card(path)
    for key, value in (extra or {}).items():
        meta.setdefault(key, value)
    if not index:
        index.append({"name": model_name, "results": []})
    entry = index[0]
    results = entry.setdefault("results", [])
    dataset = result["dataset"]["type"]

    def ours(r: object) -> bool:
        return (
            isinstance(r, dict)
            and isinstance(r.get("task"), dict)
            and r["task"].get("name") == CARD_TASK_NAME
            and isinstance(r.get("dataset"), dict)
            and r["dataset"].get("type") == dataset
        )

    entry["results"] = [r for r in results if not ours(r)] + [dict(result)]
    meta["model-index"] = index
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    if body and not body.startswith("\n"):
        body = "\n" + body
    _write_text_atomic(path, f"---\n{front}---\n{body or chr(10)}")
    return path
