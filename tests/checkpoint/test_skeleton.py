"""Splitting state into JSON + tensors and back: exact round trips, refusals, malformed skeletons."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cairn.checkpoint.skeleton import decode, encode
from cairn.errors import FormatError, UnsupportedStateError


def roundtrip(value: Any) -> Any:
    enc = encode(value)
    skeleton = json.loads(json.dumps(enc.skeleton, allow_nan=False))
    return decode(skeleton, enc.tensors)


def test_optimizer_like_state_round_trips_exactly() -> None:
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}, 7: {}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 7], "foreach": None}],
    }
    out = roundtrip(state)
    assert set(out["state"]) == {0, 7}
    assert torch.equal(out["state"][0]["exp_avg"], torch.ones(2))
    assert out["param_groups"][0]["betas"] == (0.9, 0.999)
    assert out["param_groups"][0]["foreach"] is None


def test_special_values() -> None:
    state = OrderedDict(
        nan=float("nan"),
        inf=float("-inf"),
        raw=b"\x00\xff",
        npf=np.float32(1.1),
        npi=np.int16(-3),
        dtype=torch.bfloat16,
        nested=[(1, "a"), {"__tensor__": "not a tag"}],
    )
    out = roundtrip(state)
    assert math.isnan(out["nan"]) and out["inf"] == float("-inf")
    assert out["raw"] == b"\x00\xff"
    assert out["npf"] == np.float32(1.1) and out["npf"].dtype == np.float32
    assert out["npi"].dtype == np.int16
    assert out["dtype"] is torch.bfloat16
    assert out["nested"] == [(1, "a"), {"__tensor__": "not a tag"}]


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=5)
        | st.binary(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.tuples(children, children)
            | st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=3)
        ),
        max_leaves=15,
    )
)
def test_any_plain_structure_round_trips(value: Any) -> None:
    assert roundtrip(value) == value


def test_tensor_keys_are_readable_paths() -> None:
    enc = encode({"state": {0: {"exp_avg": torch.zeros(1)}}, "w": [np.zeros(2)]})
    assert set(enc.tensors) == {"state.0.exp_avg", "w.0"}


@pytest.mark.parametrize("bad", [{1, 2}, object(), lambda: 1, complex(1, 2)])
def test_refuses_what_it_cannot_store_without_pickle(bad: Any) -> None:
    with pytest.raises(UnsupportedStateError) as exc:
        encode({"a": {"b": bad}})
    assert exc.value.key == "a.b"


@pytest.mark.parametrize(
    "skeleton",
    [
        {"__tensor__": "missing"},
        {"__tensor__": 5},
        {"__dict__": [[1]]},
        {"__dict__": [[[1, 2], 3]]},
        {"__float__": "1e999"},
        {"__bytes__": "not base64!"},
        {"__numpy__": "not-a-dtype", "value": 1},
        {"__dtype__": "Tensor"},
        {"__tuple__": [], "__bytes__": ""},
    ],
)
def test_malformed_skeletons_are_format_errors(skeleton: Any) -> None:
    with pytest.raises(FormatError):
        decode(skeleton, {})


def test_deep_nesting_is_refused() -> None:
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(FormatError):
        decode(deep, {})
