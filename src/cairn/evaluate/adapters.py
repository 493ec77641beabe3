"""Prediction adapters: turn a checkpoint (or a file of predictions) into 0/1 predictions and scores.

Three small adapters, one result type (:class:`Predictions`):

* ``predictions_file``: a CSV/Parquet file with a prediction column (and optionally a score column),
  row-aligned with the evaluation data. Nothing is executed.
* ``torch_module``: ``entry_point`` (``package.module:Class``, always given by the user, never read from
  the checkpoint) is imported and called with the checkpoint's ``config.json`` object as keyword
  arguments; weights come from ``model.safetensors`` (validated header first) or from a ``.pt``/``.bin``
  file through ``torch.load(weights_only=True)``. Numeric feature columns form the input; one logit per
  row (sigmoid) or two (softmax, class 1) gives the score.
* ``transformers_classifier``: a local text-classification model directory loaded with
  ``trust_remote_code=False`` and safetensors weights only; a text column is the input.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.errors import FormatError, LimitExceededError, NotFoundError, UsageError
from cairn.evaluate.data import binary, load_table, require_columns
from cairn.evaluate.errors import AdapterError, LengthMismatchError, MissingValueError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_CONFIG_BYTES",
    "Predictions",
    "predictions_file",
    "text_scorer",
    "torch_module",
    "transformers_classifier",
]

MAX_CONFIG_BYTES = 1 << 20
_TORCH_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.pt")


@dataclass(frozen=True)
class Predictions:
    """Binary predictions for each data row, the positive-class score when known, and their origin."""

    labels: np.ndarray
    scores: np.ndarray | None
    source: Mapping[str, str] = field(default_factory=dict)


def _labels_from_scores(scores: np.ndarray, threshold: float) -> np.ndarray:
    return (scores >= threshold).astype(np.int8)


def predictions_file(
    path: str | Path,
    *,
    rows: int,
    column: str = "prediction",
    score_column: str | None = None,
    threshold: float = 0.5,
    pos_label: object | None = None,
) -> Predictions:
    """Predictions read from a table with one row per data row, in the same order.

    ``pos_label`` names the positive class when predictions are labels other than 0/1.
    """
    frame = load_table(path)
    if len(frame) != rows:
        raise LengthMismatchError(f"predictions file {path}", rows, len(frame))
    scores: np.ndarray | None = None
    if score_column is not None:
        require_columns(frame, [score_column], source=f"predictions file {path}")
        scores = _numeric(frame, score_column)
    if column in frame.columns:
        labels = binary(frame[column].to_numpy(dtype=object), column=column, pos_label=pos_label)
    elif scores is not None:
        labels = _labels_from_scores(scores, threshold)
    else:
        require_columns(frame, [column], source=f"predictions file {path}")
        raise AssertionError("unreachable")
    return Predictions(labels, scores, {"adapter": "predictions", "path": str(path), "column": column})


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    import pandas as pd

    values: np.ndarray = np.asarray(pd.to_numeric(frame[column], errors="coerce"), dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise MissingValueError(column, bad.tolist())
    return values


def _read_config(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "config.json"
    if not path.is_file():
        raise NotFoundError(f"{checkpoint} has no config.json")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise LimitExceededError(f"config.json is larger than {MAX_CONFIG_BYTES} bytes", path=path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"config.json is not JSON: {err}", path=path) from err
    if not isinstance(config, dict):
        raise FormatError("config.json must hold a JSON object", path=path)
    return config


def _import_entry_point(entry_point: str) -> Callable[..., Any]:
    module_name, sep, attr = entry_point.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"entry point must look like package.module:Class, got {entry_point!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise AdapterError(f"cannot import entry point {entry_point!r}: {err}") from err
    if not callable(target):
        raise AdapterError(f"entry point {entry_point!r} is not callable")
    return target  # type: ignore[no-any-return]


def _load_state_dict(checkpoint: Path) -> dict[str, Any]:
    import torch

    for name in _TORCH_WEIGHTS:
        path = checkpoint / name
        if not path.is_file():
            continue
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            from cairn.format.safetensors import read_header_path

            read_header_path(path)  # typed FormatError for a malformed or hostile header
            return dict(load_file(str(path)))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # the weights-only unpickler refuses anything but tensors and containers
            raise FormatError(f"not loadable with weights_only=True: {err}", path=path) from err
        if not isinstance(state, dict):
            raise FormatError("weights file must hold a state dict", path=path)
        return state
    raise NotFoundError(f"{checkpoint} has none of {', '.join(_TORCH_WEIGHTS)}")


def torch_module(
    checkpoint: str | Path,
    frame: pd.DataFrame,
    *,
    entry_point: str,
    features: Sequence[str],
    threshold: float = 0.5,
    batch_size: int = 4096,
) -> Predictions:
    """Run a PyTorch module built by ``entry_point(**config)`` with the checkpoint's weights."""
    import torch

    root = Path(checkpoint)
    config = _read_config(root)
    factory = _import_entry_point(entry_point)
    try:
        module = factory(**config)
    except TypeError as err:
        raise AdapterError(f"{entry_point}(**config.json) failed: {err}", source=str(root)) from err
    if not isinstance(module, torch.nn.Module):
        raise AdapterError(f"{entry_point} did not return a torch.nn.Module", source=str(root))
    try:
        module.load_state_dict(_load_state_dict(root), strict=True)
    except RuntimeError as err:
        raise AdapterError(f"weights do not fit the module: {err}", source=str(root)) from err
    if not features:
        raise UsageError("the torch adapter needs --features: the numeric input columns")
    require_columns(frame, features)
    x = np.stack([_numeric(frame, c) for c in features], axis=1).astype(np.float32)
    module.eval()  # untrusted-ok: nn.Module.eval() switches to inference mode; nothing is evaluated
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            outs.append(module(torch.from_numpy(x[start : start + batch_size])).float().cpu())
    scores = _positive_scores(torch.cat(outs).numpy(), str(root))
    source = {"adapter": "torch", "checkpoint": str(root), "entry_point": entry_point}
    return Predictions(_labels_from_scores(scores, threshold), scores, source)


def _positive_scores(out: np.ndarray, source: str) -> np.ndarray:
    """Probability of class 1 from logits shaped (n,), (n, 1) or (n, 2)."""
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 1:
        return np.asarray(1.0 / (1.0 + np.exp(-out)), dtype=float)
    if out.ndim == 2 and out.shape[1] == 2:
        shifted = out - out.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return np.asarray(e[:, 1] / e.sum(axis=1), dtype=float)
    raise AdapterError(
        f"model output has shape {out.shape}; binary evaluation needs (n,), (n, 1) or (n, 2)", source=source
    )


def text_scorer(
    checkpoint: str | Path, *, batch_size: int = 32, max_length: int = 256
) -> Callable[[Sequence[str]], np.ndarray]:
    """A function from texts to positive-class scores of a local transformers classifier."""
    root = Path(checkpoint)
    config = _read_config(root)
    if not (root / "model.safetensors").is_file():
        raise AdapterError(
            "only safetensors weights are loaded (model.safetensors is missing)", source=str(root)
        )
    if "auto_map" in config:
        raise AdapterError("the model needs custom code (auto_map); cairn does not run it", source=str(root))
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(root), local_files_only=True, trust_remote_code=False, use_safetensors=True
        )
    except (OSError, ValueError, KeyError) as err:
        raise AdapterError(f"not a loadable text-classification model: {err}", source=str(root)) from err
    model.eval()  # untrusted-ok: nn.Module.eval() switches to inference mode; nothing is evaluated

    def score(texts: Sequence[str]) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                outs.append(model(**enc).logits.float().cpu())
        return _positive_scores(torch.cat(outs).numpy(), str(root))

    return score


def transformers_classifier(
    checkpoint: str | Path,
    frame: pd.DataFrame,
    *,
    text_column: str,
    threshold: float = 0.5,
    scorer: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> Predictions:
    """Classify ``frame[text_column]`` with a local transformers model directory (or its loaded ``scorer``)."""
    require_columns(frame, [text_column])
    texts = frame[text_column].to_numpy(dtype=object)
    missing = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if missing:
        raise MissingValueError(text_column, missing)
    scores = (scorer or text_scorer(checkpoint))([str(t) for t in texts])
    source = {"adapter": "transformers", "checkpoint": str(checkpoint), "text_column": text_column}
    return Predictions(_labels_from_scores(scores, threshold), scores, source)
