"""Steps 1-3 of the recipe: raw_code -> preprocessed_code -> exact_deduped_code."""


import itertools
from pathlib import Path

import pyarrow as pa
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from opencoder_assets.assets.common import StepTally, publish_step, read_batches, run_streaming_step
from opencoder_assets.core.exact_dedup import KEEP_ORDER, exact_dedup
from opencoder_assets.core.ingest import IngestStats, TableMapping, iter_folder_batches, iter_table_batches
from opencoder_assets.core.preprocess import preprocess_batch
from opencoder_assets.core.schema import DECISION_SCHEMA, RAW_SCHEMA
from opencoder_assets.partitions import language_partitions
from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings


def _all_kept(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    decisions = pa.table(
        {
            "file_id": batch["file_id"],
            "repo": batch["repo"],
            "path": batch["path"],
            "language": batch["language"],
            "decision": pa.array(["kept"] * batch.num_rows, pa.string()),
            "reason": pa.nulls(batch.num_rows, pa.string()),
            "detail": batch["read_error"],
            "size_bytes": batch["size_bytes"],
        },
        schema=DECISION_SCHEMA,
    )
    return batch, decisions


@asset(
    partitions_def=language_partitions,
    group_name="code",
    description="Every file of the configured folders/tables whose extension maps to this language "
    "partition, with repo metadata (stars, commit time), sha256 and undecoded bytes. Nothing is "
    "dropped here; unreadable files carry `read_error`.",
)
def raw_code(
    context: AssetExecutionContext,
    sources: CodeSources,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    partition = context.partition_key
    stats = IngestStats()
    mapping = TableMapping.from_mapping(sources.column_map)
    folder_batches = (
        iter_folder_batches(
            folder, partition=partition, manifest=sources.manifest, read_cap=sources.read_cap_bytes,
            batch_rows=settings.batch_rows, stats=stats,
        )
        for folder in sources.folders
        if Path(folder).exists() or not sources.tables
    )
    table_batches = iter_table_batches(
        sources.tables, partition=partition, mapping=mapping, read_cap=sources.read_cap_bytes,
        batch_rows=settings.batch_rows, stats=stats,
    )
    batches = itertools.chain(itertools.chain.from_iterable(folder_batches), table_batches)
    result = run_streaming_step(
        context, step="raw_code", partition=partition, batches=batches, fn=_all_kept,
        storage=storage, metrics=metrics, out_schema=RAW_SCHEMA,
        extra_metadata=lambda t: {
            "read_errors": MetadataValue.json(stats.read_errors),
            "repos_without_manifest": MetadataValue.json(sorted(set(stats.repos_without_manifest))),
            "skipped_symlinked_dirs": MetadataValue.int(stats.skipped_symlinked_dirs),
        },
    )
    for repo in sorted(set(stats.repos_without_manifest)):
        context.log.warning(f"repo {repo!r} has no manifest entry: stars unknown, commit time from git if any")
    return result


@asset(
    partitions_def=language_partitions,
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
    partition = context.partition_key
    shards = storage.shards("raw_code", partition)
    return run_streaming_step(
        context, step="preprocessed_code", partition=partition,
        batches=read_batches(shards, settings.batch_rows, RAW_SCHEMA),
        fn=lambda b: preprocess_batch(b, settings.max_file_bytes),
        storage=storage, metrics=metrics,
    )


@asset(
    partitions_def=language_partitions,
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
    partition = context.partition_key
    shards = storage.shards("preprocessed_code", partition)
    writer = storage.writer("exact_deduped_code", partition)
    try:
        decisions_path = writer.path / "decisions.parquet"
        stats = exact_dedup(shards, writer.path, decisions_path, memory_limit=settings.duckdb_memory_limit)
        tally = StepTally()
        for batch in read_batches([decisions_path], 50_000, DECISION_SCHEMA):
            kept_n = sum(1 for d in batch["decision"].to_pylist() if d == "kept")
            tally.add(pa.table({"n": pa.nulls(kept_n)}), batch)
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
