"""Plain threads for I/O and hashing overlap (hashlib, file reads and writes release the GIL).

``concurrent.futures`` refuses new work once the interpreter starts shutting down, which is exactly when
a checkpoint's background save must still finish; these helpers use ``threading`` directly instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["Overlap", "run_all"]

T = TypeVar("T")


def run_all(tasks: Sequence[Callable[[], T]], *, workers: int) -> list[T]:
    """Run ``tasks`` on up to ``workers`` threads; results in task order; the first error is raised."""
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException] = []
    lock = threading.Lock()
    next_index = iter(range(len(tasks)))

    def worker() -> None:
        while True:
            with lock:
                if errors:
                    return
                i = next(next_index, None)
            if i is None:
                return
            try:
                results[i] = tasks[i]()
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    if len(tasks) <= 1 or workers <= 1:
        return [task() for task in tasks]
    threads = [threading.Thread(target=worker, name="cairn-io") for _ in range(min(workers, len(tasks)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


class Overlap:
    """Run one call in a helper thread while the caller does something else; ``join`` waits and re-raises."""

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        self._error: BaseException | None = None

        def target() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=target, name="cairn-overlap")
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
