"""Save and keep policies: small composable objects, pure functions of what they are shown.

A **save policy** answers "should this step be saved?" from the step, the clock and the last save. A **keep
policy** answers "which committed checkpoints must stay?" from the list of them. The manager deletes the
rest, but never the newest checkpoint and never one being written.

    EveryNSteps(1000) | EveryNSeconds(1800)          -> AnyOf(EveryNSteps(1000), EveryNSeconds(1800))
    AnyOf(LatestN(3), BestN(1, "loss", "min"), EveryKSteps(10_000))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cairn.errors import UsageError

__all__ = [
    "AnyOf",
    "BestN",
    "CheckpointInfo",
    "EveryKSteps",
    "EveryNSeconds",
    "EveryNSteps",
    "KeepAll",
    "KeepPolicy",
    "LastSave",
    "LatestN",
    "SavePolicy",
]


@dataclass(frozen=True)
class LastSave:
    step: int
    time: float  # time.monotonic() of the save


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)


class SavePolicy(Protocol):
    def should_save(self, step: int, now: float, last: LastSave | None) -> bool: ...


class KeepPolicy(Protocol):
    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]: ...


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class EveryNSteps:
    """Save when ``step`` is a multiple of ``n``."""

    n: int

    def __post_init__(self) -> None:
        _positive("n", self.n)

    def should_save(self, step: int, now: float, last: LastSave | None) -> bool:
        return step % self.n == 0


@dataclass(frozen=True)
class EveryNSeconds:
    """Save when at least ``seconds`` have passed since the last save (and at the first opportunity)."""

    seconds: float

    def __post_init__(self) -> None:
        _positive("seconds", self.seconds)

    def should_save(self, step: int, now: float, last: LastSave | None) -> bool:
        return last is None or now - last.time >= self.seconds


@dataclass(frozen=True)
class AnyOf:
    """Combine save policies (save when any says so) or keep policies (keep the union)."""

    policies: tuple[Any, ...]

    def __init__(self, *policies: SavePolicy | KeepPolicy) -> None:
        if not policies:
            raise UsageError("AnyOf needs at least one policy")
        object.__setattr__(self, "policies", tuple(policies))

    def should_save(self, step: int, now: float, last: LastSave | None) -> bool:
        return any(p.should_save(step, now, last) for p in self.policies)

    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]:
        out: set[int] = set()
        for p in self.policies:
            out |= p.keep(checkpoints)
        return out


@dataclass(frozen=True)
class KeepAll:
    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]:
        return {c.step for c in checkpoints}


@dataclass(frozen=True)
class LatestN:
    """Keep the ``n`` most recent steps."""

    n: int

    def __post_init__(self) -> None:
        _positive("n", self.n)

    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]:
        return set(sorted(c.step for c in checkpoints)[-self.n :])


def _metric(c: CheckpointInfo, name: str) -> float | None:
    value = c.metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN is not best
        return None
    return float(value)


@dataclass(frozen=True)
class BestN:
    """Keep the ``n`` best steps by ``metric``; steps without the metric are not candidates."""

    n: int
    metric: str
    mode: Literal["min", "max"] = "min"

    def __post_init__(self) -> None:
        _positive("n", self.n)
        if self.mode not in {"min", "max"}:
            raise UsageError(f"mode must be 'min' or 'max', got {self.mode!r}")

    def ranked(self, checkpoints: Sequence[CheckpointInfo]) -> list[CheckpointInfo]:
        scored = [(v, c) for c in checkpoints if (v := _metric(c, self.metric)) is not None]
        # best first; among equal values the later step wins
        scored.sort(key=lambda vc: (vc[0] if self.mode == "min" else -vc[0], -vc[1].step))
        return [c for _, c in scored]

    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]:
        return {c.step for c in self.ranked(checkpoints)[: self.n]}


@dataclass(frozen=True)
class EveryKSteps:
    """Keep forever every step that is a multiple of ``k`` (milestones)."""

    k: int

    def __post_init__(self) -> None:
        _positive("k", self.k)

    def keep(self, checkpoints: Sequence[CheckpointInfo]) -> set[int]:
        return {c.step for c in checkpoints if c.step % self.k == 0}
