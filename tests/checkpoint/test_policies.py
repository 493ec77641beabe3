"""Save and keep policies are pure functions of what they are shown."""

from __future__ import annotations

import pytest

from cairn.checkpoint.policies import (
    AnyOf,
    BestN,
    CheckpointInfo,
    EveryKSteps,
    EveryNSeconds,
    EveryNSteps,
    KeepAll,
    LastSave,
    LatestN,
)
from cairn.errors import UsageError


def infos(*pairs: tuple[int, float | None]) -> list[CheckpointInfo]:
    return [CheckpointInfo(s, {} if v is None else {"loss": v}) for s, v in pairs]


def test_every_n_steps() -> None:
    p = EveryNSteps(100)
    assert [s for s in range(0, 401, 50) if p.should_save(s, 0.0, None)] == [0, 100, 200, 300, 400]


def test_every_n_seconds() -> None:
    p = EveryNSeconds(60)
    assert p.should_save(1, 0.0, None)
    assert not p.should_save(2, 59.0, LastSave(1, 0.0))
    assert p.should_save(3, 60.0, LastSave(1, 0.0))


def test_any_of_save() -> None:
    p = AnyOf(EveryNSteps(1000), EveryNSeconds(30))
    assert p.should_save(7, 100.0, LastSave(5, 60.0))
    assert not p.should_save(7, 61.0, LastSave(5, 60.0))
    assert p.should_save(2000, 61.0, LastSave(5, 60.0))


def test_latest_n_and_keep_all() -> None:
    cks = infos((10, None), (30, None), (20, None), (40, None))
    assert LatestN(2).keep(cks) == {30, 40}
    assert KeepAll().keep(cks) == {10, 20, 30, 40}


def test_best_n_min_max_ties_and_missing_metric() -> None:
    cks = infos((1, 0.5), (2, 0.2), (3, None), (4, 0.2), (5, float("nan")), (6, 0.9))
    assert BestN(1, "loss", "min").keep(cks) == {4}  # a tie goes to the later step
    assert BestN(2, "loss", "min").keep(cks) == {2, 4}
    assert BestN(1, "loss", "max").keep(cks) == {6}
    assert BestN(3, "accuracy").keep(cks) == set()


def test_every_k_steps_and_union() -> None:
    cks = infos(*[(s, float(s)) for s in range(0, 60, 10)])
    assert EveryKSteps(20).keep(cks) == {0, 20, 40}
    assert AnyOf(LatestN(1), EveryKSteps(20), BestN(1, "loss")).keep(cks) == {0, 20, 40, 50}


@pytest.mark.parametrize(
    "make", [lambda: EveryNSteps(0), lambda: LatestN(-1), lambda: BestN(1, "x", "mid"), AnyOf]
)  # type: ignore[arg-type]
def test_invalid_policies_are_usage_errors(make: object) -> None:
    with pytest.raises(UsageError):
        make()  # type: ignore[operator]
