"""cairn: an open home for AI checkpoints.

The library face: ``cairn.save`` / ``cairn.load`` write and read complete training state as a checkpoint
directory; ``cairn.CheckpointManager`` adds save and keep policies, asynchronous writes and crash-safe
commits; ``cairn.verify`` checks a checkpoint against its manifest. ``import cairn`` does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

from cairn import errors, policies
from cairn.checkpoint import CheckpointManager, LoadResult, dataset, load, load_state, save, verify

__all__ = [
    "CheckpointManager",
    "LoadResult",
    "__version__",
    "dataset",
    "errors",
    "load",
    "load_state",
    "policies",
    "save",
    "verify",
]
