"""Where the per-shard work of a step runs: in-process, a local process pool, or a Dask cluster.

Why a resource: the Dagster run itself executes in one process (``in_process_executor``: no
11-14 s process start per step), and the *work inside each step* spreads over every core or over
a cluster. The same choice serves runs from the UI, backfills, sensors, the schedule and the CLI,
and the output is identical for every engine and worker count (core/kernel.py).

``kind``:
- ``auto`` (default): a Dask cluster if ``OPENCODER_DASK_SCHEDULER`` is set, else a process pool
  when the step has more than one work unit, else in-process (small partitions pay no start-up);
- ``inprocess``, ``processes`` (``workers``, default all cores), ``dask`` (``dask_scheduler``
  address, or a LocalCluster of ``workers`` processes).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from typing import Literal

from dagster import ConfigurableResource

from opencoder_assets.core.kernel import DaskEngine, Engine, ProcessPoolEngine, StepFailed

#: Pools and clusters live for the process (one run executes all its steps in one process), so a
#: run pays their start-up once, not per step. A failed engine is dropped and rebuilt.
_CACHE: dict[tuple, Engine] = {}


def _close_all() -> None:
    for eng in list(_CACHE.values()):
        with contextlib.suppress(Exception):
            eng.close()
    _CACHE.clear()


atexit.register(_close_all)


class ExecutionEngine(ConfigurableResource):
    """The engine for per-shard work (see module docstring)."""

    kind: Literal["auto", "inprocess", "processes", "dask"] = os.environ.get("OPENCODER_ENGINE", "auto")  # type: ignore[assignment]
    workers: int = int(os.environ.get("OPENCODER_WORKERS", "0"))
    dask_scheduler: str | None = os.environ.get("OPENCODER_DASK_SCHEDULER") or None

    def choose(self, units: int) -> str:
        if self.kind != "auto":
            return self.kind
        if self.dask_scheduler:
            return "dask"
        workers = self.workers or os.cpu_count() or 1
        return "processes" if units > 1 and workers > 1 else "inprocess"

    @contextlib.contextmanager
    def engine(self, units: int) -> Iterator[Engine]:
        kind = self.choose(units)
        if kind == "inprocess":
            yield Engine()
            return
        key = (kind, self.workers, self.dask_scheduler)
        eng = _CACHE.get(key)
        if eng is None:
            eng = ProcessPoolEngine(self.workers) if kind == "processes" else DaskEngine(self.dask_scheduler,
                                                                                          self.workers)
            _CACHE[key] = eng
        try:
            yield eng
        except BaseException as exc:
            # a broken pool (dead worker) or an interrupted step: never reuse it
            if isinstance(exc, StepFailed) and "died" not in str(exc):
                raise
            _CACHE.pop(key, None)
            eng.close()
            raise
