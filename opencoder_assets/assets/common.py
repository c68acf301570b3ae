"""The building block every per-file step uses: stream shards -> keep/drop -> publish + account.

Why one helper: each step only supplies a batch function; streaming, atomic publication,
``kept + dropped = input`` accounting in the metrics store and the UI metadata are uniform, so no
step can forget to record a dropped file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from opencoder_assets.core.schema import CODE_SCHEMA, DECISION_SCHEMA
from resources.metrics import MetricsStore
from resources.storage import CorpusStorage, PartitionWriter

BatchFn = Callable[[pa.Table], tuple[pa.Table, pa.Table]]


class AccountingError(RuntimeError):
    """kept + dropped != input for a step: a file would have been lost silently."""


@dataclass
class StepTally:
    """Counts gathered while streaming, for metadata and the accounting check."""

    input_rows: int = 0
    kept_rows: int = 0
    input_bytes: int = 0
    kept_bytes: int = 0
    reasons: Counter = field(default_factory=Counter)
    reason_bytes: Counter = field(default_factory=Counter)
    kept_by_language: Counter = field(default_factory=Counter)
    kept_samples: list[str] = field(default_factory=list)
    dropped_samples: list[str] = field(default_factory=list)

    def add(self, kept: pa.Table, decisions: pa.Table, sample_size: int = 10) -> None:
        d = decisions.to_pydict()
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
        if kept.num_rows != sum(1 for x in d["decision"] if x == "kept"):
            raise AccountingError(
                f"batch kept {kept.num_rows} rows but its decisions say {self.kept_rows} kept"
            )

    @property
    def dropped_rows(self) -> int:
        return self.input_rows - self.kept_rows


def read_batches(paths: Iterable[Path], batch_rows: int, schema: pa.Schema = CODE_SCHEMA) -> Iterator[pa.Table]:
    """Stream Parquet shards as tables cast to ``schema`` (DuckDB writes string, we use large_string)."""
    for path in paths:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows):
            table = pa.Table.from_batches([batch])
            yield table.select(schema.names).cast(schema)


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


def publish_step(
    context: AssetExecutionContext,
    *,
    step: str,
    partition: str,
    writer: PartitionWriter,
    metrics: MetricsStore,
    tally: StepTally,
    decisions_path: Path,
    extra_metadata: dict[str, Any] | None = None,
    extra_tables: dict[str, Path] | None = None,
    run_extra: dict[str, Any] | None = None,
) -> MaterializeResult:
    """Check accounting, record decisions in DuckDB, then atomically publish the version."""
    counts = metrics.record_step(
        step=step,
        partition=partition,
        run_id=context.run.run_id,
        decisions_parquet=decisions_path,
        extra={"reasons": dict(tally.reasons), **(run_extra or {})},
        tables=extra_tables,
    )
    if counts["input_count"] != tally.input_rows or counts["kept"] != tally.kept_rows:
        raise AccountingError(f"{step}[{partition}]: metrics store has {counts}, stream counted "
                              f"{tally.input_rows} in / {tally.kept_rows} kept")
    if counts["kept"] + counts["dropped"] != counts["input_count"]:
        raise AccountingError(f"{step}[{partition}]: kept + dropped != input: {counts}")
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
    metrics: MetricsStore,
    out_schema: pa.Schema = CODE_SCHEMA,
    extra_metadata: Callable[[StepTally], dict[str, Any]] | None = None,
    side_outputs: dict[str, pa.Schema] | None = None,
    side_fn: Callable[[pa.Table], dict[str, pa.Table]] | None = None,
) -> MaterializeResult:
    """Apply ``fn`` to every batch; write kept rows as shards and every decision to DuckDB.

    ``side_outputs``/``side_fn`` let a step also persist per-file tables (e.g. quality signals)
    next to its shards and load them into the metrics store under the side output's name.
    """
    writer = storage.writer(step, partition)
    tally = StepTally()
    decisions_path = writer.path / "decisions.parquet"
    side_writers: dict[str, pq.ParquetWriter] = {}
    try:
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
    except BaseException:
        writer.abort()
        raise
