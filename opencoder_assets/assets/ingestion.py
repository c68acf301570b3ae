"""Steps 1-3 of the recipe: raw_code -> preprocessed_code -> exact_deduped_code."""


import itertools
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from opencoder_assets.assets.common import (
    CODE_BACKFILL_POLICY,
    all_kept_decisions,
    for_each_partition,
    publish_step,
    read_batches,
    run_streaming_step,
    tally_decisions,
)
from opencoder_assets.core.exact_dedup import KEEP_ORDER, exact_dedup
from opencoder_assets.core.ingest import (
    INDEX_SCHEMA,
    IngestStats,
    TableMapping,
    iter_folder_index,
    iter_indexed_file_batches,
    iter_table_batches,
)
from opencoder_assets.core.preprocess import preprocess_batch
from opencoder_assets.core.schema import RAW_SCHEMA
from opencoder_assets.partitions import language_partitions
from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings


def _all_kept(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Ingestion drops nothing: unreadable files carry their ``read_error`` as the detail."""
    return batch, all_kept_decisions(batch, detail=batch["read_error"])


@asset(
    group_name="code",
    description="One walk over the configured folders: every file with repo, language, partition, "
    "stars and commit time. raw_code partitions read their rows from it; sensors diff it.",
)
def source_index(
    context: AssetExecutionContext,
    sources: CodeSources,
    storage: CorpusStorage,
) -> MaterializeResult:
    stats = IngestStats()
    writer = storage.writer("source_index", None)
    try:
        n = 0
        per_partition: Counter = Counter()
        with pq.ParquetWriter(writer.shard_path(0), INDEX_SCHEMA) as out:
            for folder in sources.folders:
                if not Path(folder).exists() and sources.tables:
                    context.log.warning(f"folder {folder} does not exist; only tables will be ingested")
                    continue
                for table in iter_folder_index(folder, manifest=sources.manifest, stats=stats):
                    out.write_table(table)
                    n += table.num_rows
                    per_partition.update(table["partition"].to_pylist())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    for repo in sorted(set(stats.repos_without_manifest)):
        context.log.warning(f"repo {repo!r} has no manifest entry: stars unknown, commit time from git if any")
    table_md = "\n".join(["| partition | files |", "|---|---:|"] +
                         [f"| {p} | {c} |" for p, c in per_partition.most_common()])
    return MaterializeResult(metadata={
        "files": MetadataValue.int(n),
        "files_per_partition": MetadataValue.md(table_md),
        "partitions_with_files": MetadataValue.json(sorted(per_partition)),
        "repos_without_manifest": MetadataValue.json(sorted(set(stats.repos_without_manifest))),
        "skipped_symlinked_dirs": MetadataValue.int(stats.skipped_symlinked_dirs),
        "data_path": MetadataValue.path(str(writer.path)),
    })


def _index_rows(storage: CorpusStorage, partition: str, batch_rows: int):
    if not storage.has("source_index", None):
        return
    dataset = pads.dataset([str(p) for p in storage.shards("source_index", None)], format="parquet")
    yield from (pa.Table.from_batches([b]) for b in
                dataset.to_batches(filter=pads.field("partition") == partition, batch_size=batch_rows))


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[source_index],
    description="Every file of the configured folders (via source_index) and tables whose extension "
    "maps to this language partition, with repo metadata (stars, commit time), sha256 and undecoded "
    "bytes. Nothing is dropped here; unreadable files carry `read_error`.",
)
def raw_code(
    context: AssetExecutionContext,
    sources: CodeSources,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    mapping = TableMapping.from_mapping(sources.column_map)
    if sources.folders and not storage.has("source_index", None):
        raise FileNotFoundError("source_index has not been materialized; materialize it before raw_code")

    def one(partition: str) -> MaterializeResult:
        stats = IngestStats()
        folder_batches = iter_indexed_file_batches(
            _index_rows(storage, partition, settings.batch_rows), read_cap=sources.read_cap_bytes,
            batch_rows=settings.batch_rows, stats=stats,
        )
        table_batches = iter_table_batches(
            sources.tables, partition=partition, mapping=mapping, read_cap=sources.read_cap_bytes,
            batch_rows=settings.batch_rows, stats=stats,
        )
        return run_streaming_step(
            context, step="raw_code", partition=partition,
            batches=itertools.chain(folder_batches, table_batches), fn=_all_kept,
            storage=storage, metrics=metrics, out_schema=RAW_SCHEMA,
            extra_metadata=lambda t: {"read_errors": MetadataValue.json(stats.read_errors)},
        )

    return for_each_partition(context, one)


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[raw_code],
    description="Drops files over 8 MiB, binary (NUL byte), invalid UTF-8, empty, unreadable and "
    "non-programming-language files; decodes to LF-normalised text.",
)
def preprocessed_code(
    context: AssetExecutionContext,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        shards = storage.shards("raw_code", partition)
        return run_streaming_step(
            context, step="preprocessed_code", partition=partition,
            batches=read_batches(shards, settings.batch_rows, RAW_SCHEMA),
            fn=lambda b: preprocess_batch(b, settings.max_file_bytes),
            storage=storage, metrics=metrics,
        )

    return for_each_partition(context, one)


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[preprocessed_code],
    description="SHA-256 file-level dedup across every repo of the partition. Survivor: most stars, "
    "then latest commit, then smallest file_id; each removed file records `duplicate_of:<file_id>`.",
)
def exact_deduped_code(
    context: AssetExecutionContext,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        shards = storage.shards("preprocessed_code", partition)
        writer = storage.writer("exact_deduped_code", partition)
        try:
            decisions_path = writer.path / "decisions.parquet"
            stats = exact_dedup(shards, writer.path, decisions_path, memory_limit=settings.duckdb_memory_limit)
            tally = tally_decisions(decisions_path)
            return publish_step(
                context, step="exact_deduped_code", partition=partition, writer=writer, metrics=metrics,
                tally=tally, decisions_path=decisions_path,
                extra_metadata={
                    "duplicate_groups": MetadataValue.int(stats.duplicate_groups),
                    "largest_group": MetadataValue.int(stats.largest_group),
                    "keep_order": MetadataValue.text(KEEP_ORDER),
                },
            )
        except BaseException:
            writer.abort()
            raise

    return for_each_partition(context, one)
