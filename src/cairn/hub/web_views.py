"""What the web pages show, computed from registry records: plain dicts of strings the templates print
(autoescaped). Every field read from a model card or a stored report is untrusted and may have any shape,
so each reader here accepts anything and skips what it does not understand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cairn.errors import CairnError
from cairn.registry.errors import InvalidNameError
from cairn.registry.names import check_name

__all__ = [
    "MAX_TENSOR_ROWS",
    "card_summary",
    "evaluation_rows",
    "human_size",
    "license_panel",
    "parameter_summary",
    "repo_link",
    "signature_panel",
    "tensor_rows",
]

MAX_TENSOR_ROWS = 2000
_MAX_RESULT_ROWS = 500
_MAX_LIST = 20


def human_size(n: int) -> str:
    """``1.5 GB``-style sizes (decimal units, as the Hugging Face web UI prints them)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    """Parameter counts as people say them: ``124M``, ``7.2B``."""
    for div, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(n)


def _strings(value: object) -> list[str]:
    """A card field that may be one string or a list of them, as strings (anything else: empty)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value[:_MAX_LIST] if isinstance(v, (str, int, float))]
    return []


def repo_link(ref: str, prefix: str = "") -> str | None:
    """The hub path of repo id ``ref`` (``namespace/name``, both valid names) under URL ``prefix``
    (``""``, ``"datasets/"``, ``"spaces/"``), or ``None``: a card's ``base_model`` or ``datasets`` is the
    uploader's text, and only a real repo id may become a link (``/evil.example/x`` would make the
    off-site ``//evil.example/x``)."""
    namespace, sep, name = ref.partition("/")
    if not sep:
        return None
    try:
        check_name("namespace", namespace)
        check_name("repository", name)
    except InvalidNameError:
        return None
    return f"/{prefix}{namespace}/{name}"


def card_summary(
    card_data: Mapping[str, object], repo_tags: tuple[str, ...], shown: tuple[str | None, ...] = ()
) -> dict[str, Any]:
    """The facts a model page puts next to the title: license, base models, datasets, and the tags not
    already ``shown`` elsewhere on the page (pipeline, library) or spelled out (license, base model)."""
    license_name = card_data.get("license_name") if card_data.get("license") == "other" else None
    return {
        "license": ", ".join(_strings(license_name or card_data.get("license"))),
        "base_models": _strings(card_data.get("base_model")),
        "relation": ", ".join(_strings(card_data.get("base_model_relation"))),
        "datasets": _strings(card_data.get("datasets")),
        "languages": _strings(card_data.get("language")),
        "tags": [
            t
            for t in dict.fromkeys(repo_tags)
            if t not in shown and not t.startswith(("license:", "base_model:", "dataset:"))
        ][:_MAX_LIST],
    }


def parameter_summary(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Total parameters and the split by dtype from a revision's trust record (safetensors files)."""
    st = record.get("safetensors") if record else None
    if not isinstance(st, dict) or not isinstance(st.get("parameters"), dict):
        return None
    by_dtype = {str(k): int(v) for k, v in st["parameters"].items() if isinstance(v, int)}
    total = sum(by_dtype.values())
    return {
        "total": human_count(total),
        "exact": f"{total:,}",
        "dtypes": [{"dtype": k, "count": human_count(v)} for k, v in sorted(by_dtype.items())],
    }


def signature_panel(record: Mapping[str, Any] | None) -> dict[str, str]:
    """The signature status of a revision: ``verified``, ``unverified``, ``invalid`` or ``none``."""
    sig = record.get("signature") if record else None
    if not isinstance(sig, dict):
        return {"status": "none", "detail": "no trust record for this revision"}
    detail = sig.get("reason") or sig.get("signer") or ""
    return {"status": str(sig.get("status", "none")), "detail": str(detail)[:300]}


def license_panel(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The license check of a revision: status, and its conflicts, obligations and open questions."""
    report = record.get("licenseCheck") if record else None
    if not isinstance(report, dict):
        return None
    findings: list[dict[str, str]] = []
    for key, label in (("conflicts", "conflict"), ("obligations", "obligation"), ("needs_review", "review")):
        items = report.get(key)
        for item in items[:_MAX_LIST] if isinstance(items, list) else []:
            if isinstance(item, dict):
                findings.append({"kind": label, "message": str(item.get("message", ""))[:500]})
    status = str(report.get("status", "unknown"))
    if status == "error":
        findings.append({"kind": "review", "message": str(report.get("message", ""))[:500]})
    return {"status": status, "license": str(report.get("license") or ""), "findings": findings}


def tensor_rows(read: Callable[[int, int], bytes], size: int, name: str) -> tuple[list[dict[str, str]], int]:
    """The first :data:`MAX_TENSOR_ROWS` tensors of a safetensors file read through two range reads, and
    how many it has; ``([], 0)`` when the bytes are not a valid safetensors file."""
    from cairn.format.safetensors_index import read_header_ranges

    try:
        header = read_header_ranges(read, file_size=size, path=name)
    except CairnError:
        return [], 0
    rows = []
    for t in list(header.tensors.values())[:MAX_TENSOR_ROWS]:
        shape = "[" + ", ".join(str(d) for d in t.shape) + "]"
        rows.append({"name": t.name, "dtype": t.dtype, "shape": shape, "params": f"{t.numel:,}"})
    return rows, len(header.tensors)


def evaluation_rows(card_data: Mapping[str, object]) -> list[dict[str, str]]:
    """The card's ``model-index`` results (fairness reports included) as table rows; malformed entries skip."""
    rows: list[dict[str, str]] = []
    index = card_data.get("model-index")
    for model in index if isinstance(index, list) else []:
        results = model.get("results") if isinstance(model, dict) else None
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            task, dataset = result.get("task"), result.get("dataset")
            task_name = str(task.get("name") or task.get("type") or "") if isinstance(task, dict) else ""
            data_name = (
                str(dataset.get("name") or dataset.get("type") or "") if isinstance(dataset, dict) else ""
            )
            metrics = result.get("metrics")
            for metric in metrics if isinstance(metrics, list) else []:
                if isinstance(metric, dict) and len(rows) < _MAX_RESULT_ROWS:
                    rows.append(
                        {
                            "task": task_name,
                            "dataset": data_name,
                            "metric": str(metric.get("name") or metric.get("type") or ""),
                            "value": str(metric.get("value", "")),
                        }
                    )
    return rows
