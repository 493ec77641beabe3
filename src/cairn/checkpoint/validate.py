"""Check that saved state fits the objects it is about to be loaded into, before anything is applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.checkpoint.skeleton import is_flat_tensor_mapping
from cairn.checkpoint.tensors import describe, is_tensor
from cairn.errors import Mismatch

__all__ = ["compare"]


def _tensors(part: str, saved: Mapping[str, Any], target: Mapping[str, Any]) -> list[Mismatch]:
    out: list[Mismatch] = []
    for key in target:
        if key not in saved:
            out.append(Mismatch(part, key, "missing"))
    for key, value in saved.items():
        if key not in target:
            out.append(Mismatch(part, key, "unexpected"))
            continue
        have = target[key]
        if not (is_tensor(value) and is_tensor(have)):
            continue
        (s_dtype, s_shape), (t_dtype, t_shape) = describe(value), describe(have)
        if s_shape != t_shape:
            out.append(Mismatch(part, key, "shape", str(list(s_shape)), str(list(t_shape))))
        elif s_dtype != t_dtype:
            out.append(Mismatch(part, key, "dtype", s_dtype, t_dtype))
    return out


def _optimizer(part: str, saved: Mapping[str, Any], target: Mapping[str, Any]) -> list[Mismatch]:
    s_groups, t_groups = saved.get("param_groups"), target.get("param_groups")
    if not isinstance(s_groups, list) or not isinstance(t_groups, list):
        return [Mismatch(part, "param_groups", "structure", type(s_groups).__name__, type(t_groups).__name__)]
    if len(s_groups) != len(t_groups):
        return [
            Mismatch(part, "param_groups", "structure", f"{len(s_groups)} groups", f"{len(t_groups)} groups")
        ]
    out = []
    for i, (s, t) in enumerate(zip(s_groups, t_groups, strict=True)):
        s_n = len(s.get("params", [])) if isinstance(s, Mapping) else -1
        t_n = len(t.get("params", [])) if isinstance(t, Mapping) else -1
        if s_n != t_n:
            out.append(Mismatch(part, f"param_groups.{i}", "structure", f"{s_n} params", f"{t_n} params"))
    return out


def compare(part: str, saved: Any, target: Any) -> list[Mismatch]:
    """Every way in which ``saved`` does not fit ``target`` (the target's current state)."""
    if target is None:
        return []
    if isinstance(saved, Mapping) and isinstance(target, Mapping):
        if is_flat_tensor_mapping(target) or part == "model":
            return _tensors(part, saved, target)
        if "param_groups" in target and "state" in target:
            return _optimizer(part, saved, target)
        missing = [Mismatch(part, str(k), "missing") for k in target if k not in saved]
        unexpected = [Mismatch(part, str(k), "unexpected") for k in saved if k not in target]
        return missing + unexpected
    if type(saved) is not type(target):
        return [Mismatch(part, "<root>", "structure", type(saved).__name__, type(target).__name__)]
    return []
