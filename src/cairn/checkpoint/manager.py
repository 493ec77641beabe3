"""``CheckpointManager``: a series of checkpoints of one run, with policies and background writes.

Call order, per save::

    save(step, ...)  → raise any error of the previous background write → ask the save policy → wait for the
                       write in flight (one at a time bounds memory to one host copy of the state) → snapshot
                       (state copied into reused host buffers) → return; a thread writes, commits, then
                       applies the keep policy
    wait()           → block until the write in flight is committed; raise its error
    restore(which)   → wait(), then load "latest", "best" or a step into the objects given

Checkpoints live in ``ROOT/step-NNNNNNNNNN/``. The first manager to open a directory takes its writer lock
(``ROOT/.cairn-writer.lock``, released by :meth:`CheckpointManager.close` or when the process ends) and
removes leftovers of crashed saves; a manager opened while another process or manager holds the lock is
read-only: it lists and restores, and its ``save`` raises :class:`~cairn.errors.ConflictError`.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cairn.checkpoint.api import LoadResult, _check_json, _objects, load
from cairn.checkpoint.atomic import WriterLock, clean_stale, remove_dir
from cairn.checkpoint.environment import collect
from cairn.checkpoint.policies import BestN, CheckpointInfo, KeepAll, KeepPolicy, LastSave, SavePolicy
from cairn.checkpoint.reader import Verify
from cairn.checkpoint.snapshot import BufferPool, Snapshot, take_snapshot
from cairn.checkpoint.writer import DEFAULT_MAX_SHARD_SIZE, write_checkpoint
from cairn.errors import BackgroundSaveError, CairnError, ConflictError, NotFoundError, UsageError
from cairn.format.manifest import MANIFEST_NAME, read_manifest
from cairn.format.statcache import default_cache

__all__ = ["CheckpointManager", "committed_steps", "step_dir_name"]

_log = logging.getLogger("cairn.checkpoint")
_STEP_DIR = re.compile(r"^step-(\d{1,19})$")


def step_dir_name(step: int) -> str:
    return f"step-{step:010d}"


def committed_steps(root: Path) -> list[int]:
    """Steps committed under a manager directory, ascending (read-only: touches nothing)."""
    found = []
    for child in root.iterdir():
        m = _STEP_DIR.match(child.name)
        if m and (child / MANIFEST_NAME).is_file():
            found.append(int(m.group(1)))
    return sorted(found)


class _Always:
    def should_save(self, step: int, now: float, last: LastSave | None) -> bool:
        return True


class CheckpointManager:
    """Save a run's state at the steps a policy chooses, keep the ones another policy wants, restore any."""

    def __init__(
        self,
        directory: str | Path,
        *,
        save_policy: SavePolicy | None = None,
        keep_policy: KeepPolicy | None = None,
        async_save: bool = True,
        best_metric: str | None = None,
        best_mode: Literal["min", "max"] = "min",
        max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
        rng_state: bool = True,
        capture_environment: bool = True,
    ) -> None:
        self.root = Path(directory)
        self.root.mkdir(parents=True, exist_ok=True)
        self.save_policy: SavePolicy = save_policy or _Always()
        self.keep_policy: KeepPolicy = keep_policy or KeepAll()
        self.async_save = async_save
        self._best = self._best_policy(best_metric, best_mode, self.keep_policy)
        self.max_shard_size = max_shard_size
        self.rng_state = rng_state
        self.capture_environment = capture_environment
        self._lock = WriterLock(self.root)
        self.removed_stale = clean_stale(self.root) if self._lock.held else []
        self._pool = BufferPool() if async_save else None
        self._thread: threading.Thread | None = None
        self._error: BackgroundSaveError | None = None
        self._last: LastSave | None = None
        self._infos: dict[int, CheckpointInfo] = {}
        self._started = time.monotonic()
        self._elapsed_before = 0.0  # training time of the run before the checkpoint it resumed from
        self._lineage: dict[str, str] | None = None
        latest = self.latest_step()
        if latest is not None:
            self._last = LastSave(latest, time.monotonic())
        _live.add(self)

    @staticmethod
    def _best_policy(metric: str | None, mode: Literal["min", "max"], keep: KeepPolicy) -> BestN | None:
        if metric is not None:
            return BestN(1, metric, mode)
        for policy in (keep, *getattr(keep, "policies", ())):
            if isinstance(policy, BestN):
                return policy
        return None

    @property
    def writable(self) -> bool:
        """Whether this manager holds the directory's writer lock (else it can only list and restore)."""
        return self._lock.held

    # -- listing ---------------------------------------------------------------------------------------

    def path(self, step: int) -> Path:
        return self.root / step_dir_name(step)

    def steps(self) -> list[int]:
        """Committed steps, ascending."""
        return committed_steps(self.root)

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def checkpoints(self) -> list[CheckpointInfo]:
        infos = []
        for step in self.steps():
            if step not in self._infos:
                metrics = read_manifest(self.path(step)).metadata.get("metrics") or {}
                self._infos[step] = CheckpointInfo(
                    step, dict(metrics) if isinstance(metrics, Mapping) else {}
                )
            infos.append(self._infos[step])
        return infos

    def best_step(self) -> int | None:
        if self._best is None:
            raise UsageError("no best metric: pass best_metric= or use a BestN keep policy")
        ranked = self._best.ranked(self.checkpoints())
        return ranked[0].step if ranked else None

    # -- saving ----------------------------------------------------------------------------------------

    def save(
        self,
        step: int,
        *,
        model: Any = None,
        optimizer: Any = None,
        scheduler: Any = None,
        extra: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        metadata: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Save ``step`` if the save policy (or ``force``) says so. Returns whether a save was started."""
        if type(step) is not int or step < 0:
            raise UsageError(f"step must be a non-negative int, got {step!r}")
        self._raise_error()
        if not self._lock.held:
            raise ConflictError(
                f"{self.root} is being written by another checkpoint manager; this one is read-only"
            )
        now = time.monotonic()
        if not force and not self.save_policy.should_save(step, now, self._last):
            return False
        self.wait()
        if self.path(step).exists():
            raise ConflictError(f"step {step} is already saved in {self.root}")
        user = dict(metadata or {})
        if metrics is not None:
            user["metrics"] = dict(metrics)
        defaults: dict[str, Any] = {
            "wall_time": {"elapsed_seconds": self._elapsed_before + (time.monotonic() - self._started)}
        }
        if self._lineage is not None:
            defaults["lineage"] = self._lineage
        meta = _check_json(
            collect(user, step=step, capture=self.capture_environment, model=model, defaults=defaults)
        )
        config = None if config is None else _check_json(config, what="config")
        objects = _objects(model, optimizer, scheduler, extra)
        snap = take_snapshot(
            objects, metadata=meta, config=config, capture_rng=self.rng_state, pool=self._pool
        )
        self._last = LastSave(step, now)
        if not self.async_save:
            self._write(step, snap)
            return True
        self._thread = threading.Thread(target=self._background, args=(step, snap), name=f"cairn-save-{step}")
        self._thread.start()
        return True

    def _write(self, step: int, snap: Snapshot) -> None:
        write_checkpoint(self.path(step), snap, max_shard_size=self.max_shard_size)
        self._apply_keep(protect=step)

    def _background(self, step: int, snap: Snapshot) -> None:
        try:
            self._write(step, snap)
        except BaseException as exc:  # surfaced on the next call
            _log.error("cairn: background save of step %s failed: %r", step, exc)
            self._error = BackgroundSaveError(step, exc)

    def _apply_keep(self, protect: int) -> None:
        """Delete what the keep policy does not keep; never the newest step nor the one just written."""
        infos = self.checkpoints()
        if not infos:
            return
        keep = self.keep_policy.keep(infos) | {infos[-1].step, protect}
        cache = default_cache()
        for info in infos:
            if info.step not in keep:
                remove_dir(self.path(info.step))
                self._infos.pop(info.step, None)
                if cache is not None:
                    cache.drop(self.path(info.step))

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def wait(self) -> None:
        """Block until the background write (if any) is committed; raise its error if it failed."""
        thread = self._thread
        if thread is not None:
            thread.join()
            self._thread = None
        self._raise_error()

    def close(self) -> None:
        """Wait for the pending save and release the writer lock."""
        try:
            self.wait()
        finally:
            self._lock.release()
            _live.discard(self)

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- restoring -------------------------------------------------------------------------------------

    def resolve(self, which: int | str) -> int:
        self.wait()
        if which == "latest":
            step = self.latest_step()
        elif which == "best":
            step = self.best_step()
        elif type(which) is int:
            step = which if which in self.steps() else None
        else:
            raise UsageError(f"restore takes 'latest', 'best' or a step number, not {which!r}")
        if step is None:
            raise NotFoundError(f"no checkpoint {which!r} in {self.root}")
        return step

    def restore(
        self,
        which: int | str = "latest",
        *,
        model: Any = None,
        optimizer: Any = None,
        scheduler: Any = None,
        extra: Mapping[str, Any] | None = None,
        strict: bool = True,
        rng_state: bool = True,
        verify: Verify = True,
        endpoint: str | None = None,
        token: str | None = None,
    ) -> LoadResult:
        """Load a checkpoint into the objects given (see :func:`cairn.load`).

        ``which`` may also be a hub reference ``org/name[@rev]``: training then resumes from that hub
        checkpoint (pulled through :mod:`cairn.client`; ``endpoint``/``token`` as for :func:`cairn.load`),
        which is recorded as the parent of the next save.
        """
        if isinstance(which, str) and which not in ("latest", "best"):
            source, parent = self._remote_source(which, endpoint, token)
        else:
            source = self.path(self.resolve(which))
            parent = str(source.resolve())
        result = load(
            source,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            extra=extra,
            strict=strict,
            rng_state=rng_state,
            verify=verify,
        )
        wall = result.metadata.get("wall_time") or {}
        elapsed = wall.get("elapsed_seconds") if isinstance(wall, Mapping) else None
        if isinstance(elapsed, int | float):  # the run's training time carries forward
            self._elapsed_before, self._started = float(elapsed), time.monotonic()
        self._lineage = {"parent": parent, "relation": "resume"}
        return result

    def _remote_source(self, reference: str, endpoint: str | None, token: str | None) -> tuple[Path, str]:
        """A hub checkpoint pulled into the local cache, and how the next save names it as its parent."""
        from cairn.client import looks_like_repo_ref, parse_repo_ref, resolve_checkpoint

        if not looks_like_repo_ref(reference):
            raise UsageError(
                f"restore takes 'latest', 'best', a step number or a hub reference org/name[@rev], not {reference!r}"
            )
        self.wait()
        root = resolve_checkpoint(reference, endpoint=endpoint, token=token)  # a folder named by commit id
        return root, f"hub:{parse_repo_ref(reference).repo_id}@{root.name}"


_live: weakref.WeakSet[CheckpointManager] = weakref.WeakSet()


def flush_all() -> None:
    """Wait for every live manager's background write (called at interpreter exit)."""
    for manager in list(_live):
        try:
            manager.wait()
        except CairnError as exc:
            _log.error("cairn: %s", exc)


atexit.register(flush_all)
