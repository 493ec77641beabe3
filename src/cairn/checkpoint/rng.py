"""Capture and restore the global random number generators: Python, NumPy, PyTorch CPU and CUDA."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from cairn.checkpoint.tensors import torch_or_none
from cairn.errors import FormatError

__all__ = ["capture", "generator_state", "restore"]


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


def restore(states: Any) -> None:
    """Put saved generator states back. A generator missing from the checkpoint is left as it is."""
    if not isinstance(states, dict):
        raise FormatError("rng part is not a mapping")
    try:
        if "python" in states:
            version, internal, gauss = states["python"]
            random.setstate((version, tuple(internal), gauss))
        if "numpy" in states:
            np.random.set_state(states["numpy"])
        torch = torch_or_none()
        if torch is not None and "torch" in states:
            torch.set_rng_state(generator_state(states["torch"], torch.get_rng_state()))
        if torch is not None and "cuda" in states and torch.cuda.is_available():
            current = torch.cuda.get_rng_state_all()
            cuda_states = states["cuda"]
            if len(cuda_states) == len(current):
                torch.cuda.set_rng_state_all(
                    [generator_state(s, c) for s, c in zip(cuda_states, current, strict=True)]
                )
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise FormatError(f"rng part holds an invalid generator state: {exc}") from None
