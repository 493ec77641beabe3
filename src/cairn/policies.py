"""Save and keep policies for :class:`cairn.CheckpointManager` (defined in :mod:`cairn.checkpoint.policies`)."""

from cairn.checkpoint.policies import (
    AnyOf,
    BestN,
    CheckpointInfo,
    EveryKSteps,
    EveryNSeconds,
    EveryNSteps,
    KeepAll,
    KeepPolicy,
    LastSave,
    LatestN,
    SavePolicy,
)

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
