"""The step kernel: one way to run a code step over shards, on any engine, with full accounting.

Why (after datatrove's ``BaseFilter``): a step says only what it decides about each file; the
kernel does the bookkeeping every step used to hand-roll -- planning work units, reading and
verifying input shards, checking that every input row got exactly one decision and that the kept
rows are exactly the ``kept`` decisions, writing kept rows / decisions / side tables per unit, and
summing counts, reasons and samples. Units run on a pluggable engine (in-process, a process pool,
or a Dask cluster); each unit writes files named by its stable key, so the published output is
identical whatever the engine and worker count.

A step is a :class:`StepSpec` (see ``core/steps.py`` for the registry):

- ``map_fn(batch, params) -> StepOutput`` per batch of its input rows, or, datatrove style,
  ``file_filter(verdict)`` around ``verdict(row, params) -> bool | (False, reason[, detail])``;
- optionally ``global_fn`` (exact / fuzzy dedup): it sees all input shards and returns a verdict
  table (file_id, keep, reason, detail); the kernel then applies it unit by unit.

This module never imports Dagster.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencoder_assets.core.schema import DECISION_SCHEMA

# One unit = one core: the engine is the parallelism. The Rust tokenizer would otherwise start a
# thread per core inside every unit (measured: a 1-worker pool used 1.7 cores in transformed_code,
# and whether it did depended on what the parent had done before forking). Set before any
# tokenizer is used, in the driver and in every worker (each imports this module); an explicit
# TOKENIZERS_PARALLELISM in the environment wins.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: Parquet written by the kernel carries page checksums (a second line of defence after the
#: per-version sha256 manifest).
WRITE_OPTS: dict[str, Any] = {"write_page_checksum": True, "compression": "zstd"}


class StepFailed(RuntimeError):
    """A unit failed; the message names the step, partition, unit and input file."""


class AccountingError(StepFailed):
    """kept + dropped != input, or kept rows differ from the kept decisions: a file would be lost."""


# ------------------------------------------------------------------------------------- step API
@dataclass
class StepOutput:
    """What a step returns for one batch: kept rows, one decision row per input row, side tables."""

    kept: pa.Table
    decisions: pa.Table
    sides: dict[str, pa.Table] = field(default_factory=dict)
    #: Plain counters summed over units into the step's metadata (e.g. PII edit counts).
    counters: dict[str, float] = field(default_factory=dict)


def decisions_for(batch: pa.Table, keep: Sequence[bool], reasons: Sequence[str | None],
                  details: Sequence[str | None] | None = None) -> pa.Table:
    """Decision rows for ``batch`` (same order) from per-row keep flags, reasons and details."""
    n = batch.num_rows
    return pa.table({
        "file_id": batch["file_id"], "repo": batch["repo"], "path": batch["path"], "language": batch["language"],
        "decision": pa.array(["kept" if k else "dropped" for k in keep], pa.string()),
        "reason": pa.array(list(reasons), pa.string()),
        "detail": pa.array(list(details) if details is not None else [None] * n, pa.string()),
        "size_bytes": batch["size_bytes"],
    }, schema=DECISION_SCHEMA)


Verdict = bool | tuple  # True | False | (False, reason) | (keep, reason, detail)


def file_filter(verdict: Callable[[dict[str, Any], Any], Verdict], columns: Sequence[str] | None = None
                ) -> Callable[[pa.Table, Any], StepOutput]:
    """Turn a per-file ``verdict(row, params)`` into a batch step (datatrove's ``filter(doc)`` feel)."""

    def run(batch: pa.Table, params: Any) -> StepOutput:
        cols = batch.select(list(columns)).to_pylist() if columns else batch.to_pylist()
        keep, reasons, details = [], [], []
        for row in cols:
            v = verdict(row, params)
            if isinstance(v, tuple):
                k, r, d = (list(v) + [None, None])[:3]
            else:
                k, r, d = bool(v), None, None
            keep.append(bool(k))
            reasons.append(None if k else (r or "unspecified"))
            details.append(d)
        return StepOutput(batch.filter(pa.array(keep, pa.bool_())), decisions_for(batch, keep, reasons, details))

    run.__name__ = getattr(verdict, "__name__", "file_filter")
    return run


@dataclass(frozen=True)
class GlobalResult:
    """A global stage's output: verdicts for the files it decided about (absent = kept, no detail),
    side tables to publish, and plain stats for metadata."""

    verdicts: Path | None
    sides: dict[str, Path] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


VERDICT_SCHEMA = pa.schema([("file_id", pa.string()), ("keep", pa.bool_()), ("reason", pa.string()),
                            ("detail", pa.string())])


@dataclass(frozen=True)
class StepSpec:
    """One code step, declared once; assets, checks, jobs, schedules and lineage derive from it."""

    name: str
    upstream: str | None
    doc: str
    out_schema: pa.Schema | None
    in_schema: pa.Schema | None = None
    #: ``"module:function"`` of the batch function (importable, so process pools and Dask can run it).
    map_fn: str | None = None
    #: ``"module:function"`` of the global stage ``(shards, work_dir, params, engine) -> GlobalResult``.
    global_fn: str | None = None
    #: Parameters dataclass (``"module:Class"``); the Dagster Config is generated from its fields.
    params: str | None = None
    #: Which step's ``part-*`` shards are read (default: the upstream) ...
    reads: str | None = None
    #: ... and side tables of another step read unit-aligned with them: ``(step, table, column)``.
    aligned: tuple[str, str, str] | None = None
    #: Side tables this step publishes (metrics-store views of the same name), with schemas.
    sides: tuple[tuple[str, pa.Schema], ...] = ()
    #: Whether the step writes ``part-*`` shards (quality_signals only annotates).
    writes_parts: bool = True
    #: Source steps read their own input: ``"module:function"`` of ``(unit, params, batch_rows) ->
    #: Iterator[pa.Table]`` (raw_code: index chunks and tables); units come from its planner.
    source_fn: str | None = None
    kinds: tuple[str, ...] = ("parquet",)

    @property
    def input_step(self) -> str | None:
        return self.reads or self.upstream


def resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


# ------------------------------------------------------------------------------------------ units
@dataclass(frozen=True)
class Unit:
    """A slice of one input shard (whole row groups), with the checksum the shard must have."""

    key: str
    path: str
    row_groups: tuple[int, ...]
    sha256: str | None = None
    #: For aligned side inputs: the side file with the same key, and its checksum.
    aligned_path: str | None = None
    aligned_sha256: str | None = None
    #: Source steps: an opaque payload the source's map function understands.
    payload: Any = None


def plan_units(shards: Sequence[Path], unit_rows: int, checksums: dict[str, str] | None = None) -> list[Unit]:
    """Group each shard's row groups into units of about ``unit_rows`` rows; keys depend only on
    the shard name and first row group, so every engine and worker count plans the same units."""
    units: list[Unit] = []
    for index, shard in enumerate(shards):
        md = pq.ParquetFile(shard).metadata
        stem = f"{index:05d}"
        group: list[int] = []
        rows = 0
        sha = (checksums or {}).get(Path(shard).name)
        for rg in range(md.num_row_groups):
            group.append(rg)
            rows += md.row_group(rg).num_rows
            if rows >= unit_rows:
                units.append(Unit(f"{stem}-{group[0]:05d}", str(shard), tuple(group), sha))
                group, rows = [], 0
        if group:
            units.append(Unit(f"{stem}-{group[0]:05d}", str(shard), tuple(group), sha))
    return units


def _verify(path: str, sha: str | None, what: str) -> None:
    if sha is None:
        return
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    if h.hexdigest() != sha:
        raise StepFailed(f"{what}: {path} does not match the sha256 in its version manifest "
                         f"(corrupt or modified after publication)")


@dataclass
class UnitSummary:
    """What a unit reports back (small; the rows stay in the files it wrote)."""

    key: str
    input_rows: int = 0
    kept_rows: int = 0
    input_bytes: int = 0
    kept_bytes: int = 0
    reasons: Counter = field(default_factory=Counter)
    reason_bytes: Counter = field(default_factory=Counter)
    kept_by_language: Counter = field(default_factory=Counter)
    kept_samples: list[str] = field(default_factory=list)
    dropped_samples: list[str] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    peak_rss_kb: int = 0

    def add_decisions(self, decisions: pa.Table, sample_size: int = 10) -> None:
        d = decisions.select(["repo", "path", "language", "decision", "reason", "size_bytes"]).to_pydict()
        for i, decision in enumerate(d["decision"]):
            size = d["size_bytes"][i] or 0
            self.input_rows += 1
            self.input_bytes += size
            where = f"{d['repo'][i]}/{d['path'][i]}"
            if decision == "kept":
                self.kept_rows += 1
                self.kept_bytes += size
                self.kept_by_language[d["language"][i]] += 1
                if len(self.kept_samples) < sample_size:
                    self.kept_samples.append(where)
            else:
                reason = d["reason"][i] or "unspecified"
                self.reasons[reason] += 1
                self.reason_bytes[reason] += size
                if len(self.dropped_samples) < sample_size:
                    self.dropped_samples.append(f"{where}  ({reason})")

    def merge(self, other: UnitSummary, sample_size: int = 10) -> None:
        for name in ("input_rows", "kept_rows", "input_bytes", "kept_bytes", "cpu_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.peak_rss_kb = max(self.peak_rss_kb, other.peak_rss_kb)
        for name in ("reasons", "reason_bytes", "kept_by_language", "counters"):
            getattr(self, name).update(getattr(other, name))
        self.kept_samples.extend(other.kept_samples[: max(0, sample_size - len(self.kept_samples))])
        self.dropped_samples.extend(other.dropped_samples[: max(0, sample_size - len(self.dropped_samples))])
        self.files.extend(other.files)

    @property
    def dropped_rows(self) -> int:
        return self.input_rows - self.kept_rows


def check_batch(where: str, batch: pa.Table, out: StepOutput) -> None:
    """The accounting contract of one batch: one decision per input row, in order; kept rows are
    exactly the rows decided ``kept``."""
    ids_in = batch["file_id"]
    if out.decisions.num_rows != batch.num_rows or not out.decisions["file_id"].equals(ids_in):
        raise AccountingError(f"{where}: {out.decisions.num_rows} decision rows for {batch.num_rows} input rows "
                              "(each input file needs exactly one decision, in input order)")
    kept_mask = pc.equal(out.decisions["decision"], "kept")
    bad = pc.invert(pc.is_in(out.decisions["decision"], pa.array(["kept", "dropped"])))
    if pc.any(bad).as_py():
        raise AccountingError(f"{where}: decisions must be 'kept' or 'dropped'")
    expected_ids = pc.filter(ids_in, kept_mask)
    if out.kept.num_rows != len(expected_ids) or not out.kept["file_id"].equals(expected_ids):
        raise AccountingError(f"{where}: {out.kept.num_rows} kept rows but {len(expected_ids)} kept decisions")


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table.select(schema.names).cast(schema)


def iter_unit_batches(unit: Unit, batch_rows: int, schema: pa.Schema | None) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(unit.path, page_checksum_verification=True)
    for b in pf.iter_batches(batch_size=batch_rows, row_groups=list(unit.row_groups)):
        t = pa.Table.from_batches([b])
        yield _cast(t, schema) if schema is not None else t


@dataclass(frozen=True)
class UnitTask:
    """Everything a worker needs (picklable): the spec's name, its params, and where to write."""

    step: str
    partition: str
    spec_module: str
    params: Any
    out_dir: str
    batch_rows: int
    verdicts_dir: str | None = None


def _write_stream(writers: dict[str, pq.ParquetWriter], path: Path, table: pa.Table, schema: pa.Schema,
                  files: list[str]) -> None:
    key = str(path)
    if key not in writers:
        writers[key] = pq.ParquetWriter(path, schema, **WRITE_OPTS)
        files.append(path.name)
    writers[key].write_table(_cast(table, schema), row_group_size=1000)


def _apply_verdicts(batch: pa.Table, verdicts: pa.Table | None) -> StepOutput:
    """The map phase of a global stage: decide each row from the verdict table (absent = kept)."""
    n = batch.num_rows
    if verdicts is None or verdicts.num_rows == 0:
        return StepOutput(batch, decisions_for(batch, [True] * n, [None] * n))
    idx = pc.index_in(batch["file_id"], value_set=verdicts["file_id"])
    present = pc.is_valid(idx)
    take = pc.fill_null(idx, 0)
    keep = pc.if_else(present, pc.take(verdicts["keep"], take), True)
    reason = pc.if_else(present, pc.take(verdicts["reason"], take), pa.nulls(n, pa.string()))
    detail = pc.if_else(present, pc.take(verdicts["detail"], take), pa.nulls(n, pa.string()))
    decisions = pa.table({
        "file_id": batch["file_id"], "repo": batch["repo"], "path": batch["path"], "language": batch["language"],
        "decision": pc.if_else(keep, "kept", "dropped"), "reason": reason, "detail": detail,
        "size_bytes": batch["size_bytes"],
    }, schema=DECISION_SCHEMA)
    return StepOutput(batch.filter(keep), decisions)


def run_unit(task: UnitTask, unit: Unit) -> UnitSummary:
    """Run one unit: read (verified) -> step function per batch -> check -> write -> summarise."""
    import resource

    c0 = time.process_time()
    registry = importlib.import_module(task.spec_module)
    spec: StepSpec = registry.STEP_BY_NAME[task.step]
    where = f"{task.step}[{task.partition}] unit {unit.key} ({unit.path})"
    out_dir = Path(task.out_dir)
    summary = UnitSummary(unit.key)
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        if spec.source_fn:
            batches: Iterator[pa.Table] = resolve(spec.source_fn)(unit, task.params, task.batch_rows)
            fn = resolve(spec.map_fn)
        else:
            _verify(unit.path, unit.sha256, where)
            batches = iter_unit_batches(unit, task.batch_rows, spec.in_schema)
            if spec.global_fn:
                verdicts = None
                vpath = Path(task.verdicts_dir or "") / f"{Path(unit.path).name}.parquet"
                if task.verdicts_dir and vpath.exists():
                    verdicts = pq.read_table(vpath, schema=VERDICT_SCHEMA)

                def fn(batch: pa.Table, _params: Any, _v: pa.Table | None = verdicts) -> StepOutput:
                    return _apply_verdicts(batch, _v)
            else:
                fn = resolve(spec.map_fn)
        aligned = None
        if spec.aligned is not None:
            _verify(unit.aligned_path, unit.aligned_sha256, where)
            aligned = pq.read_table(unit.aligned_path, columns=["file_id", spec.aligned[2]])
        offset = 0
        for batch in batches:
            if aligned is not None:
                side = aligned.slice(offset, batch.num_rows)
                offset += batch.num_rows
                if not side["file_id"].equals(batch["file_id"]):
                    raise StepFailed(f"{where}: {unit.aligned_path} does not line up with the input rows; "
                                     f"re-materialize {spec.aligned[0]}")
                batch = batch.append_column("_" + spec.aligned[2], side[spec.aligned[2]])
            try:
                out = fn(batch, task.params)
            except StepFailed:
                raise
            except Exception as exc:
                raise StepFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
            if aligned is not None:
                batch = batch.drop_columns(["_" + spec.aligned[2]])
                if "_" + spec.aligned[2] in out.kept.column_names:
                    out.kept = out.kept.drop_columns(["_" + spec.aligned[2]])
            check_batch(where, batch, out)
            summary.add_decisions(out.decisions)
            summary.counters.update(out.counters)
            _write_stream(writers, out_dir / f"decisions-{unit.key}.parquet", out.decisions, DECISION_SCHEMA,
                          summary.files)
            if spec.writes_parts and out.kept.num_rows:
                _write_stream(writers, out_dir / f"part-{unit.key}.parquet", out.kept, spec.out_schema, summary.files)
            sides = dict(spec.sides)
            for name, table in out.sides.items():
                if name not in sides:
                    raise StepFailed(f"{where}: side table {name!r} is not declared by the step")
                _write_stream(writers, out_dir / f"{name}-{unit.key}.parquet", table, sides[name], summary.files)
        if aligned is not None and offset != aligned.num_rows:
            raise StepFailed(f"{where}: {unit.aligned_path} has {aligned.num_rows} rows, input had {offset}")
    except StepFailed:
        raise
    except Exception as exc:  # a read or write error: name the unit and its input file
        raise StepFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        for w in writers.values():
            w.close()
    summary.cpu_seconds = time.process_time() - c0
    summary.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return summary


# ---------------------------------------------------------------------------------------- engines
class Engine:
    """Runs ``fn(task, item)`` for every item, yielding results in input order."""

    name = "inprocess"
    workers = 1

    def map(self, fn: Callable, task: Any, items: Sequence[Any], what: str) -> Iterator[Any]:
        for item in items:
            yield fn(task, item)

    def close(self) -> None:
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _worker_init() -> None:
    """Workers obey SIGTERM/SIGINT (they must never inherit a parent's handler that ignores them)
    and use one thread each: parallelism comes from processes."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.environ["POLARS_MAX_THREADS"] = "1"


#: Modules a forkserver loads once, so each worker starts with them imported.
PRELOAD = ["pyarrow.parquet", "opencoder_assets.core.steps"]


class ProcessPoolEngine(Engine):
    """A local process pool (``forkserver``: workers start from a clean, preloaded server process,
    not from a fork of a Dagster step with its threads and signal handlers)."""

    name = "processes"

    def __init__(self, workers: int = 0, start_method: str = "forkserver") -> None:
        self.workers = workers or os.cpu_count() or 1
        ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            ctx.set_forkserver_preload(PRELOAD)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init)

    def map(self, fn: Callable, task: Any, items: Sequence[Any], what: str) -> Iterator[Any]:
        futures = [self._pool.submit(fn, task, item) for item in items]
        try:
            for item, fut in zip(items, futures, strict=True):
                try:
                    yield fut.result()
                except BrokenProcessPool as exc:
                    key = getattr(item, "key", item)
                    raise StepFailed(f"{what}: a worker process died (killed or out of memory) while the pool "
                                     f"ran unit {key}; no partial output was published") from exc
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                if p.is_alive():
                    p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)


#: Worker settings for the LocalCluster the dask engine starts (the nannies pass them on; for a
#: remote cluster put them in the workers' Dask config, docs/scale_out.md): the statistical profiler
#: walks every thread's stack every 10 ms holding the GIL; measured on a 1-worker LocalCluster,
#: quality_signals took 545 CPU-s in the worker against 363 on a pool worker (same units).
DASK_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


class DaskEngine(Engine):
    """A Dask distributed cluster: ``address`` of a running scheduler, else a LocalCluster of
    ``workers`` single-threaded processes. A unit whose worker dies fails the step at once
    (``allowed-failures = 0``) instead of being retried on the next worker."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int = 0) -> None:
        import logging

        from opencoder_assets.core import require_extra

        dask = require_extra("dask", "dask")
        distributed = require_extra("distributed", "dask")
        Client, LocalCluster = distributed.Client, distributed.LocalCluster

        dask.config.set({"distributed.scheduler.allowed-failures": 0})
        dask.config.set(DASK_WORKER_CONFIG)
        # one WARNING line per shuffle start/stop is noise in a step's log
        logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
        self._cluster = None
        if address:
            self.client = Client(address)
        else:
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or 1

    def map(self, fn: Callable, task: Any, items: Sequence[Any], what: str) -> Iterator[Any]:
        from distributed import KilledWorker

        futures = self.client.map(fn, [task] * len(items), list(items), pure=False)
        try:
            for item, fut in zip(items, futures, strict=True):
                try:
                    yield fut.result()
                except KilledWorker as exc:
                    raise StepFailed(f"{what}: a Dask worker died while running unit "
                                     f"{getattr(item, 'key', item)}") from exc
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


def make_engine(kind: str, workers: int = 0, address: str | None = None) -> Engine:
    if kind == "inprocess":
        return Engine()
    if kind == "processes":
        return ProcessPoolEngine(workers)
    if kind == "dask":
        return DaskEngine(address, workers)
    raise ValueError(f"engine must be inprocess, processes or dask, got {kind!r}")


# ---------------------------------------------------------------------------------- the driver
@dataclass
class StepRun:
    """The result of running a step into a staging directory (not yet published)."""

    summary: UnitSummary
    units: list[Unit]
    stats: dict[str, Any]
    tables: dict[str, list[str]]


def split_verdicts(verdicts: Path, input_shards: Sequence[Path], out_dir: Path) -> None:
    """Write the verdicts of each input shard to ``out_dir/<shard name>.parquet`` (units load only
    their own shard's verdicts). DuckDB joins the verdicts with the shards' ``file_id`` column and
    file names out of core: the driver never holds one row per input file."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    if not input_shards:  # nothing kept upstream: no unit to route verdicts to
        return
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute("CREATE TABLE v AS SELECT v.file_id, v.keep, v.reason, v.detail, parse_filename(ids.filename) "
                    "AS shard FROM read_parquet(?) v JOIN (SELECT CAST(file_id AS VARCHAR) AS file_id, filename "
                    "FROM read_parquet(?, filename = true)) ids USING (file_id)",
                    [str(verdicts), [str(s) for s in input_shards]])
        for (shard,) in con.execute("SELECT DISTINCT shard FROM v").fetchall():
            tbl = con.execute("SELECT file_id, keep, reason, detail FROM v WHERE shard = ? ORDER BY file_id",
                              [shard]).fetch_arrow_table()
            pq.write_table(tbl.cast(VERDICT_SCHEMA), out_dir / f"{shard}.parquet")
    finally:
        con.close()


def run_step(
    spec: StepSpec,
    *,
    partition: str,
    params: Any,
    units: list[Unit],
    input_shards: Sequence[Path],
    out_dir: Path,
    work_dir: Path,
    engine: Engine,
    batch_rows: int,
    spec_module: str = "opencoder_assets.core.steps",
    log: Callable[[str], None] = lambda _m: None,
) -> StepRun:
    """Run ``spec`` over ``units`` into ``out_dir`` (a staging version): global stage first if any,
    then every unit on ``engine``; returns the summed summary and the tables for the manifest."""
    what = f"{spec.name}[{partition}]"
    stats: dict[str, Any] = {}
    tables: dict[str, list[str]] = {}
    verdicts_dir = None
    if spec.global_fn:
        result: GlobalResult = resolve(spec.global_fn)(list(input_shards), work_dir, params, engine)
        stats.update(result.stats)
        for name, path in result.sides.items():
            target = out_dir / f"{name}-global.parquet"
            os.replace(path, target)
            tables.setdefault(name, []).append(target.name)
        if result.verdicts is not None:
            verdicts_dir = work_dir / "verdicts"
            split_verdicts(result.verdicts, input_shards, verdicts_dir)
    task = UnitTask(spec.name, partition, spec_module, params, str(out_dir), batch_rows,
                    str(verdicts_dir) if verdicts_dir else None)
    total = UnitSummary("all")
    t0 = time.perf_counter()
    done = 0
    last_log = t0
    for summary in engine.map(run_unit, task, units, what):
        total.merge(summary)
        done += 1
        now = time.perf_counter()
        if now - last_log > 10 and done < len(units):
            rate = total.input_bytes / 1e6 / max(now - t0, 1e-9)
            eta = (len(units) - done) * (now - t0) / max(done, 1)
            log(f"{what}: {done}/{len(units)} units, {total.input_rows} files, {total.input_bytes / 1e6:.1f} MB "
                f"({rate:.1f} MB/s, ETA {eta:.0f}s) on {engine.name} x{engine.workers}")
            last_log = now
    for name in sorted(total.files):
        table = "file_decisions" if name.startswith("decisions-") else name.rsplit("-", 2)[0]
        if name.startswith("part-"):
            continue
        tables.setdefault(table, []).append(name)
    for v in tables.values():
        v.sort()
    return StepRun(total, units, stats, tables)
