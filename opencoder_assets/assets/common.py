"""The building block every per-file step uses: stream shards -> keep/drop -> publish + account.

Why one helper: each step only supplies a batch function; streaming, atomic publication,
``kept + dropped = input`` accounting in the metrics store and the UI metadata are uniform, so no
step can forget to record a dropped file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import AssetCheckResult, AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue

from opencoder_assets.core.kernel import AccountingError, UnitSummary
from opencoder_assets.core.schema import CODE_SCHEMA, DECISION_SCHEMA
from resources.metrics import MetricsStore
from resources.storage import CorpusStorage, PartitionWriter, PublicationError, verify_if_published

BatchFn = Callable[[pa.Table], tuple[pa.Table, pa.Table]]

#: One row per sample removed by benchmark decontamination (SFT stages, annealing mix): the
#: ``decontamination_matches`` table of the metrics store.
MATCH_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("benchmark", pa.string()),
    pa.field("task_id", pa.string()),
    pa.field("view", pa.string()),
    pa.field("evidence", pa.string()),
])


def stored_benchmark_items(storage: CorpusStorage, step: str) -> list[Any]:
    """The ``benchmark_sets`` asset's items, for a step that decontaminates against them."""
    from opencoder_assets.core.decontamination import BenchmarkItem

    if not storage.has("benchmark_sets", None):
        raise FileNotFoundError(f"{step}: benchmark_sets is not materialized (its upstream); materialize it "
                                "first, or switch decontamination off in the step's config")
    rows = pq.read_table(storage.shards("benchmark_sets", None)).to_pylist()
    return [BenchmarkItem(b["benchmark"], b["task_id"], b["entry_point"], tuple(b["texts"])) for b in rows]




class StepTally(UnitSummary):
    """Counts of a non-kernel step (web recall, annealing, SFT): the kernel's per-unit summary plus
    the check that each batch's kept rows are its ``kept`` decisions."""

    def __init__(self) -> None:
        super().__init__("all")

    def add(self, kept: pa.Table, decisions: pa.Table, sample_size: int = 10) -> None:
        before = self.kept_rows
        self.add_decisions(decisions, sample_size)
        if kept.num_rows != self.kept_rows - before:
            raise AccountingError(f"batch kept {kept.num_rows} rows but its decisions say {self.kept_rows - before} kept")


def tally_decisions(decisions_path: Path) -> StepTally:
    """A tally rebuilt from a decisions Parquet file (steps that decide in DuckDB, not per batch)."""
    tally = StepTally()
    for batch in read_batches([decisions_path], 50_000, DECISION_SCHEMA):
        kept_n = sum(1 for d in batch["decision"].to_pylist() if d == "kept")
        tally.add(pa.table({"n": pa.nulls(kept_n)}), batch)
    return tally


def read_batches(paths: Iterable[Path], batch_rows: int, schema: pa.Schema = CODE_SCHEMA) -> Iterator[pa.Table]:
    """Stream Parquet shards as tables cast to ``schema`` (DuckDB writes string, we use large_string)."""
    for path in paths:
        try:
            verify_if_published(Path(path))
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            batches = pf.iter_batches(batch_size=batch_rows)
            for batch in batches:
                table = pa.Table.from_batches([batch])
                yield table.select(schema.names).cast(schema)
        except (OSError, pa.ArrowException, PublicationError) as exc:
            raise RuntimeError(f"{path}: {type(exc).__name__}: {exc}") from exc


def reasons_markdown(tally: StepTally) -> str:
    if not tally.reasons:
        return "_nothing dropped_"
    lines = ["| reason | files | bytes |", "|---|---:|---:|"]
    for reason, n in tally.reasons.most_common():
        lines.append(f"| {reason} | {n} | {tally.reason_bytes[reason]} |")
    return "\n".join(lines)


def step_metadata(tally: StepTally, out_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "input_files": MetadataValue.int(tally.input_rows),
        "kept_files": MetadataValue.int(tally.kept_rows),
        "dropped_files": MetadataValue.int(tally.dropped_rows),
        "input_bytes": MetadataValue.int(tally.input_bytes),
        "kept_bytes": MetadataValue.int(tally.kept_bytes),
        "drop_reasons": MetadataValue.md(reasons_markdown(tally)),
        "sample_kept": MetadataValue.md("\n".join(f"- `{s}`" for s in tally.kept_samples) or "_none_"),
        "sample_dropped": MetadataValue.md("\n".join(f"- `{s}`" for s in tally.dropped_samples) or "_none_"),
        "data_path": MetadataValue.path(str(out_dir)),
    }
    for key, value in (extra or {}).items():
        meta[key] = value
    return meta


def decision_counts(decisions_path: Path) -> dict[str, int]:
    """input/kept/dropped counts and bytes of a decisions Parquet file."""
    t = pq.read_table(decisions_path, columns=["decision", "size_bytes"])
    kept = pc.equal(t["decision"], "kept")
    sizes = pc.fill_null(t["size_bytes"], 0)
    n_kept = int(pc.sum(kept.cast(pa.int64())).as_py() or 0)
    return {"input_count": t.num_rows, "kept": n_kept, "dropped": t.num_rows - n_kept,
            "input_bytes": int(pc.sum(sizes).as_py() or 0),
            "kept_bytes": int(pc.sum(pc.filter(sizes, kept)).as_py() or 0)}


def record_step(
    writer: PartitionWriter, *, step: str, partition: str, run_id: str, decisions_path: Path,
    extra: dict[str, Any] | None = None, tables: dict[str, Path] | None = None,
) -> dict[str, int]:
    """Attach the step record (counts, per-file tables) to a version being written; the manifest
    carries it and the metrics store's views read it once the version is published."""
    counts = decision_counts(decisions_path)
    if counts["kept"] + counts["dropped"] != counts["input_count"]:
        raise AccountingError(f"{step}[{partition}]: kept + dropped != input: {counts}")
    names: dict[str, list[str]] = {"file_decisions": [Path(decisions_path).name]}
    for name, path in (tables or {}).items():
        if Path(path).parent.resolve() != writer.path.resolve():
            raise ValueError(f"{step}[{partition}]: table {name} at {path} is not inside the version {writer.path}")
        names[name] = [Path(path).name]
    writer.record.update({"step": step, "partition": partition, "run_id": run_id, "counts": counts,
                          "extra": dict(extra or {}), "tables": names})
    return counts


def publish_step(
    context: AssetExecutionContext,
    *,
    step: str,
    partition: str,
    writer: PartitionWriter,
    metrics: MetricsStore | None,
    tally: StepTally,
    decisions_path: Path,
    extra_metadata: dict[str, Any] | None = None,
    extra_tables: dict[str, Path] | None = None,
    run_extra: dict[str, Any] | None = None,
) -> MaterializeResult:
    """The one publish path of non-kernel steps (web recall, annealing, SFT): check accounting,
    record the step in the version's manifest, then atomically publish the version."""
    counts = record_step(writer, step=step, partition=partition, run_id=context.run.run_id,
                         decisions_path=decisions_path, extra={"reasons": dict(tally.reasons), **(run_extra or {})},
                         tables=extra_tables)
    if counts["input_count"] != tally.input_rows or counts["kept"] != tally.kept_rows:
        raise AccountingError(f"{step}[{partition}]: decisions say {counts}, stream counted "
                              f"{tally.input_rows} in / {tally.kept_rows} kept")
    writer.commit()
    context.log.info(
        f"{step}[{partition}]: {tally.input_rows} in, {tally.kept_rows} kept, {tally.dropped_rows} dropped"
    )
    return MaterializeResult(metadata=step_metadata(tally, writer.path, extra_metadata))


def run_streaming_step(
    context: AssetExecutionContext,
    *,
    step: str,
    partition: str,
    batches: Iterable[pa.Table],
    fn: BatchFn,
    storage: CorpusStorage,
    metrics: MetricsStore | None,
    out_schema: pa.Schema = CODE_SCHEMA,
    extra_metadata: Callable[[StepTally], dict[str, Any]] | None = None,
    side_outputs: dict[str, pa.Schema] | None = None,
    side_fn: Callable[[pa.Table], dict[str, pa.Table]] | None = None,
) -> MaterializeResult:
    """Apply ``fn`` to every batch of a non-kernel step (web recall's page streams); write kept
    rows as shards and every decision, then publish through :func:`publish_step`."""
    with storage.writer(step, partition) as writer:
        tally = StepTally()
        decisions_path = writer.path / "decisions.parquet"
        side_writers: dict[str, pq.ParquetWriter] = {}
        with pq.ParquetWriter(decisions_path, DECISION_SCHEMA) as dwriter:
            shard_writer: pq.ParquetWriter | None = None
            shard_rows = 0
            shard_index = 0
            for batch in batches:
                kept, decisions = fn(batch)
                tally.add(kept, decisions)
                dwriter.write_table(decisions.cast(DECISION_SCHEMA))
                if side_fn is not None:
                    for name, table in side_fn(batch).items():
                        if name not in side_writers:
                            side_writers[name] = pq.ParquetWriter(writer.path / f"{name}.parquet", side_outputs[name])
                        side_writers[name].write_table(table.cast(side_outputs[name]))
                if kept.num_rows:
                    if shard_writer is None:
                        shard_writer = pq.ParquetWriter(writer.shard_path(shard_index), out_schema)
                    shard_writer.write_table(kept.cast(out_schema), row_group_size=1000)
                    shard_rows += kept.num_rows
                    if shard_rows >= 50_000:
                        shard_writer.close()
                        shard_writer, shard_rows, shard_index = None, 0, shard_index + 1
            if shard_writer is not None:
                shard_writer.close()
        for w in side_writers.values():
            w.close()
        extra_tables = {name: writer.path / f"{name}.parquet" for name in side_writers}
        return publish_step(
            context, step=step, partition=partition, writer=writer, metrics=metrics, tally=tally,
            decisions_path=decisions_path,
            extra_metadata=extra_metadata(tally) if extra_metadata else None,
            extra_tables=extra_tables,
        )


# ----------------------------------------------------------------------------- backfill policy
#: One language partition per backfill run. A run is one process (in_process_executor) and the
#: work inside each step already spreads over the engine's workers, so batching partitions into
#: one run saves little (one process start), while one partition per run keeps each partition's
#: own metadata on its materialization (Dagster stamps one run's metadata on every partition of a
#: range), isolates failures and lets the run queue run partitions side by side. Range runs
#: (launched by hand) still work: see ``for_each_partition``.
MAX_PARTITIONS_PER_RUN = 1

#: The backfill policy of every language-partitioned code asset.
CODE_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)

#: Per-partition step: process one partition key exactly as a single-partition run would.
PartitionFn = Callable[[str], MaterializeResult]

_SUMMED_INT_KEYS = ("input_files", "kept_files", "dropped_files", "input_bytes", "kept_bytes")


def run_partition_keys(context: Any) -> list[str]:
    """The partition keys a run (asset or check context) covers: the range of a backfill run
    (``dagster/asset_partition_range_start``/``_end`` tags), else the single partition key."""
    if context.has_partition_key_range:
        return list(context.partition_keys)
    return [context.partition_key]


def _meta_int(metadata: Any, key: str) -> int:
    value = (metadata or {}).get(key)
    value = getattr(value, "value", value)
    return int(value or 0)


def aggregate_metadata(results: dict[str, MaterializeResult]) -> dict[str, Any]:
    """Metadata of one run that processed several partitions: summed counts, one table row per
    partition (files in / kept / dropped), and where each partition's version was published."""
    meta: dict[str, Any] = {
        key: MetadataValue.int(sum(_meta_int(r.metadata, key) for r in results.values()))
        for key in _SUMMED_INT_KEYS
    }
    lines = ["| partition | files in | kept | dropped |", "|---|---:|---:|---:|"]
    paths: dict[str, str] = {}
    for key, result in results.items():
        md = result.metadata or {}
        lines.append(f"| {key} | {_meta_int(md, 'input_files')} | {_meta_int(md, 'kept_files')} | "
                     f"{_meta_int(md, 'dropped_files')} |")
        path = md.get("data_path")
        if path is not None:
            paths[key] = str(getattr(path, "value", path))
    meta["partitions"] = MetadataValue.json(list(results))
    meta["per_partition"] = MetadataValue.md("\n".join(lines))
    meta["data_paths"] = MetadataValue.json(paths)
    return meta


def for_each_partition(context: AssetExecutionContext, fn: PartitionFn) -> MaterializeResult:
    """Run ``fn`` for every partition of the run, each independently (own version dir, own
    metrics-store rows, atomic publication), and return ONE result for the run.

    One partition (every normal run): exactly ``fn``'s result. Several (a backfill run under
    ``CODE_BACKFILL_POLICY``): aggregated counts and a per-partition table. Partitions are
    processed in order; if one fails the step fails, and partitions published before it stay
    published (their versions and metrics rows are complete) but get no materialization event,
    so re-running the range recomputes them.
    """
    keys = run_partition_keys(context)
    if len(keys) == 1:
        return fn(keys[0])
    results: dict[str, MaterializeResult] = {}
    for key in keys:
        results[key] = fn(key)
    context.log.info(f"{len(keys)} partitions in one run: {', '.join(keys)}")
    return MaterializeResult(metadata=aggregate_metadata(results))


def check_partition_keys(context: Any) -> list[str | None]:
    """Partitions an asset-check run evaluates: every key of a range run, the single key of a
    partition run, or ``[None]`` when the check runs unpartitioned."""
    if context.has_partition_key_range:
        return list(context.partition_keys)
    if context.has_partition_key:
        return [context.partition_key]
    return [None]


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value)
    return value if isinstance(value, (int, float, str, bool, list, dict, type(None))) else str(value)


def combine_check_results(results: dict[str | None, AssetCheckResult]) -> AssetCheckResult:
    """One check result for a run over several partitions: passes only if every partition passes;
    metadata names the failing partitions and carries their metadata. One partition: unchanged."""
    if len(results) == 1:
        return next(iter(results.values()))
    first = next(iter(results.values()))
    failing = [p for p, r in results.items() if not r.passed]
    return AssetCheckResult(
        passed=not failing,
        asset_key=first.asset_key,
        check_name=first.check_name,
        severity=first.severity,
        metadata={
            "partitions": MetadataValue.json([str(p) for p in results]),
            "failing_partitions": MetadataValue.json([str(p) for p in failing]),
            "failures": MetadataValue.json({
                str(p): {k: _plain(v) for k, v in (results[p].metadata or {}).items()} for p in failing
            }),
        },
    )
