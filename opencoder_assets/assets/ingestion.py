"""Step 0: the source index, one walk over the configured folders (raw_code reads its rows)."""


from collections import Counter

import pyarrow.parquet as pq
from dagster import AssetExecutionContext, AssetMaterialization, MaterializeResult, MetadataValue, asset

from opencoder_assets.core.ingest import INDEX_SCHEMA, IngestStats, iter_folder_index
from opencoder_assets.core.steps import STEP_NAMES
from opencoder_assets.core.validate import check_run_config, check_sources, raise_if_problems
from opencoder_assets.partitions import language_partitions
from resources import CodeSources, CorpusStorage


def _record_empty_partitions(context: AssetExecutionContext, storage: CorpusStorage, with_files: set[str],
                             index_version: str) -> None:
    """A language partition without input files is not missing work: every code step of it is
    recorded as materialized with 0 rows (once, while it has never been published), so the UI
    does not count it as missing and a backfill of "missing" partitions selects only partitions
    with data. When files appear, the new-code sensor runs the partition for real."""
    for partition in language_partitions.get_partition_keys():
        if partition in with_files:
            continue
        for step in STEP_NAMES:
            if storage.has(step, partition):
                continue
            context.log_event(AssetMaterialization(
                asset_key=step, partition=partition,
                metadata={"dagster/row_count": MetadataValue.int(0), "input_files": MetadataValue.int(0),
                          "note": MetadataValue.text(f"no input files in source_index {index_version}")}))


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
    # Configuration errors fail here, before the walk (same checks and messages as `opencoder validate`).
    raise_if_problems(check_sources(sources.folders, sources.manifest, sources.tables, sources.column_map)
                      + check_run_config(context.run.run_config))
    stats = IngestStats()
    writer = storage.writer("source_index", None)
    try:
        n = 0
        per_partition: Counter = Counter()
        with pq.ParquetWriter(writer.shard_path(0), INDEX_SCHEMA) as out:
            for folder in sources.folders:
                for table in iter_folder_index(folder, manifest=sources.manifest, stats=stats):
                    out.write_table(table)
                    n += table.num_rows
                    per_partition.update(table["partition"].to_pylist())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    _record_empty_partitions(context, storage, set(per_partition), writer.version)
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
