"""Capture and restore the global random number generators: Python, NumPy, PyTorch CPU and CUDA.

Restoring is two steps so that a load stays all-or-nothing: :func:`prepare` validates every saved state
(and copies torch states into storage of their own) before anything is applied; :func:`apply` then only
assigns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.checkpoint.tensors import torch_or_none
from cairn.errors import FormatError

__all__ = ["PreparedRng", "apply", "capture", "generator_state", "prepare"]

_MT_WORDS = 625  # Python's Mersenne Twister state: 624 words plus the position


def capture() -> tuple[dict[str, Any], dict[str, bool]]:
    """(states, which generators are present). torch is captured only if the process imported it."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
    }
    torch = torch_or_none()
    if torch is not None:
        states["torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states["cuda"] = torch.cuda.get_rng_state_all()
    present = {name: name in states for name in ("python", "numpy", "torch", "cuda")}
    return states, present


def generator_state(saved: Any, current: Any) -> Any:
    """A saved torch generator state, checked against the live one's layout and given its own storage.

    torch reads generator states without bounds checks, so a wrong-sized or shared-storage tensor could
    crash the process; a saved state is only passed on when dtype and size match exactly.
    """
    torch = torch_or_none()
    if (
        torch is None
        or not isinstance(saved, torch.Tensor)
        or saved.dtype != torch.uint8
        or tuple(saved.shape) != tuple(current.shape)
    ):
        raise FormatError("saved torch generator state does not match this torch's generator layout")
    return saved.clone()


@dataclass(frozen=True)
class PreparedRng:
    python: tuple[Any, ...] | None
    numpy: dict[str, Any] | None
    torch: Any
    cuda: list[Any] | None


def _python_state(state: Any) -> tuple[Any, ...]:
    if not (isinstance(state, tuple | list) and len(state) == 3):
        raise FormatError("rng part: Python generator state is not a (version, words, gauss) triple")
    version, words, gauss = state
    if (
        version != 3
        or not isinstance(words, tuple | list)
        or len(words) != _MT_WORDS
        or not all(type(w) is int and 0 <= w < 2**32 for w in words[:-1])
        or not (gauss is None or isinstance(gauss, float))
    ):
        raise FormatError("rng part: Python generator state has the wrong layout")
    return (version, tuple(words), gauss)


def _numpy_state(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise FormatError("rng part: NumPy generator state is not a mapping")
    try:  # a scratch generator validates the state without touching the global one
        np.random.RandomState().set_state(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise FormatError(f"rng part: invalid NumPy generator state: {exc}") from None
    return state


def prepare(states: Any) -> PreparedRng:
    """Validate saved generator states. A generator missing from the checkpoint stays as it is."""
    if not isinstance(states, dict):
        raise FormatError("rng part is not a mapping")
    torch = torch_or_none()
    python = _python_state(states["python"]) if "python" in states else None
    numpy = _numpy_state(states["numpy"]) if "numpy" in states else None
    torch_state = None
    if torch is not None and "torch" in states:
        torch_state = generator_state(states["torch"], torch.get_rng_state())
    cuda = None
    if torch is not None and "cuda" in states and torch.cuda.is_available():
        current = torch.cuda.get_rng_state_all()
        saved = states["cuda"]
        if isinstance(saved, list) and len(saved) == len(current):
            cuda = [generator_state(s, c) for s, c in zip(saved, current, strict=True)]
    return PreparedRng(python, numpy, torch_state, cuda)


def apply(prepared: PreparedRng) -> None:
    if prepared.python is not None:
        random.setstate(prepared.python)
    if prepared.numpy is not None:
        np.random.set_state(prepared.numpy)
    torch = torch_or_none()
    if torch is not None and prepared.torch is not None:
        torch.set_rng_state(prepared.torch)
    if torch is not None and prepared.cuda is not None:
        torch.cuda.set_rng_state_all(prepared.cuda)
