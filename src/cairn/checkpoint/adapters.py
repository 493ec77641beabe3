"""What counts as training state, and how to get it out of and back into an object.

Supported targets, in this order:

* anything with ``state_dict()`` / ``load_state_dict(state)`` — models, optimizers, schedulers, GradScaler,
  user objects (the ``Stateful`` protocol);
* ``torch.Generator`` (``get_state`` / ``set_state``);
* ``numpy.random.Generator`` and ``numpy.random.RandomState``;
* a plain ``dict`` (for example name -> NumPy array): saved as it is, loaded by updating it in place.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cairn.checkpoint.rng import generator_state
from cairn.checkpoint.tensors import torch_or_none
from cairn.errors import UsageError

__all__ = ["Stateful", "config_of", "get_state", "set_state", "target_state"]


@runtime_checkable
class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state_dict: Any, /) -> Any: ...


def _is_torch_generator(obj: object) -> bool:
    torch = torch_or_none()
    return torch is not None and isinstance(obj, torch.Generator)


def get_state(obj: Any, name: str) -> Any:
    if isinstance(obj, Stateful):
        return obj.state_dict()
    if _is_torch_generator(obj):
        return {"generator_state": obj.get_state()}
    if isinstance(obj, np.random.Generator):
        return {"bit_generator": obj.bit_generator.state}
    if isinstance(obj, np.random.RandomState):
        return {"random_state": obj.get_state(legacy=False)}
    if isinstance(obj, MutableMapping):
        return obj
    raise UsageError(
        f"{name}: cannot checkpoint a {type(obj).__qualname__}; pass an object with state_dict() and "
        "load_state_dict(), a generator, or a dict"
    )


def target_state(obj: Any) -> Any:
    """The current state of a load target, used to check that saved state fits before applying it."""
    if isinstance(obj, Stateful):
        return obj.state_dict()
    if isinstance(obj, MutableMapping):
        return obj
    return None


def set_state(obj: Any, state: Any, name: str, *, strict: bool) -> None:
    if isinstance(obj, Stateful):
        module_like = hasattr(obj, "named_parameters")
        if module_like:
            obj.load_state_dict(state, strict=strict)  # type: ignore[call-arg]
        else:
            obj.load_state_dict(state)
    elif _is_torch_generator(obj):
        obj.set_state(generator_state(state["generator_state"], obj.get_state()))
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state["bit_generator"]
    elif isinstance(obj, np.random.RandomState):
        obj.set_state(state["random_state"])
    elif isinstance(obj, MutableMapping):
        if strict:
            obj.clear()
        obj.update(state)
    else:
        raise UsageError(f"{name}: cannot load state into a {type(obj).__qualname__}")


def config_of(model: Any) -> dict[str, Any] | None:
    """The Hugging Face config of a transformers model, so the checkpoint loads with from_pretrained."""
    config = getattr(model, "config", None)
    to_dict = getattr(config, "to_dict", None)
    if to_dict is None:
        return None
    data = dict(to_dict())
    if "architectures" not in data or not data["architectures"]:
        data["architectures"] = [type(model).__name__]
    return data
