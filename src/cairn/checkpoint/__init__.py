"""The training-loop API: save and resume complete training state.

Data flows: live objects → :mod:`snapshot` (state dicts split by :mod:`skeleton` into tensors + JSON, copied
to host memory for async saves) → :mod:`writer` (safetensors + JSON into a temporary directory, manifest
last, atomic rename via :mod:`atomic`) → disk. Loading runs the other way through :mod:`reader` (verified
reads), :mod:`validate` (does it fit?) and :mod:`adapters` (apply). :mod:`manager` adds save/keep
:mod:`policies` and the background writer. Uses ``cairn.format``; never HTTP, never pickle.
"""

from cairn.checkpoint import policies
from cairn.checkpoint.api import LoadResult, load, load_state, save, verify
from cairn.checkpoint.environment import dataset
from cairn.checkpoint.manager import CheckpointManager

__all__ = ["CheckpointManager", "LoadResult", "dataset", "load", "load_state", "policies", "save", "verify"]
