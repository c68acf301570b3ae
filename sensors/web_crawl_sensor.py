"""Notice new crawl shards in a folder: add them as dynamic partitions of ``web_pages`` and run them.

Why dynamic partitions keyed by shard: Common Crawl (and FineWeb) arrive as many independent files
(``CC-MAIN-...-00042.warc.wet.gz``, ``000_00042.parquet``); one partition per file makes ingestion
incremental and parallel, and re-copying a changed file re-runs only that shard. The cursor stores
each shard's ``size:mtime_ns`` so unchanged files never trigger a second run; files modified less
than ``shard_min_age_s`` ago are still being copied and are left for the next tick.

The crawl folder comes from the ``web_recall`` resource (``WebRecallSettings.crawl_dir``).
"""

import json
import os
from pathlib import Path
from typing import Any

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    ResourceParam,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from opencoder_assets.core.web_recall import is_shard_file, shard_source

#: One partition per crawl shard file (key = its path relative to the crawl folder).
web_crawl_shards = DynamicPartitionsDefinition(name="web_crawl_shards")

#: One partition per crawl source (Common Crawl, FineWeb, SkyPile, AutoMathText, ...): the
#: code-web corpus is built and reported per source (``core.web_recall.shard_source``).
web_sources = DynamicPartitionsDefinition(name="web_sources")

#: Ingest one shard into ``web_pages`` (the sensor's target).
web_pages_job = define_asset_job(
    "web_pages_job",
    selection=AssetSelection.assets("web_pages"),
    description="Read one crawl shard (Parquet/JSONL/WARC/WET) into normalized web pages.",
)

_BAD_KEY_CHARS = set(",[]|*\n\r\t")


def list_shards(crawl_dir: str | Path) -> dict[str, Path]:
    """{partition key: file} for every supported shard under ``crawl_dir`` (recursive, sorted)."""
    root = Path(crawl_dir)
    if not root.is_dir():
        return {}
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and is_shard_file(path):
            key = path.relative_to(root).as_posix()
            if not (_BAD_KEY_CHARS & set(key)):
                out[key] = path
    return out


def shard_path(crawl_dir: str | Path, key: str) -> Path:
    """The file behind a partition key (inverse of ``list_shards``)."""
    return Path(crawl_dir) / key


def evaluate_crawl_folder(
    crawl_dir: str | Path, cursor: str | None, existing: set[str], min_age_s: float, now: float
) -> tuple[list[str], list[str], dict[str, str]]:
    """(new partition keys, keys to (re)ingest, new cursor) — the sensor's logic, testable alone."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    to_add: list[str] = []
    to_run: list[str] = []
    for key, path in list_shards(crawl_dir).items():
        st = path.stat()
        if now - st.st_mtime < min_age_s:
            continue  # still being written
        sig = f"{st.st_size}:{st.st_mtime_ns}"
        if seen.get(key) == sig:
            continue
        if key not in existing:
            to_add.append(key)
        to_run.append(key)
        seen[key] = sig
    return to_add, to_run, seen


@sensor(
    job=web_pages_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Adds a web_crawl_shards partition per new/changed shard file in the crawl folder and "
    "requests its web_pages run.",
)
def web_crawl_sensor(context: SensorEvaluationContext, web_recall: ResourceParam[Any]):
    # ResourceParam[Any]: the WebRecallSettings class lives in the asset module, which imports this one
    settings = web_recall
    crawl_dir = settings.crawl_dir
    if not Path(crawl_dir).is_dir():
        return SkipReason(f"crawl folder {crawl_dir} does not exist")
    import time

    existing = set(context.instance.get_dynamic_partitions(web_crawl_shards.name))
    to_add, to_run, cursor = evaluate_crawl_folder(
        crawl_dir, context.cursor, existing, float(settings.shard_min_age_s), time.time()
    )
    known_sources = set(context.instance.get_dynamic_partitions(web_sources.name))
    new_sources = sorted({shard_source(k, settings.shard_sources, settings.default_source) for k in to_run}
                         - known_sources)
    if not to_run:
        return SkipReason(f"no new or changed shards in {os.path.abspath(crawl_dir)}")
    requests = [
        RunRequest(run_key=f"{key}@{cursor[key]}", partition_key=key, tags={"web_crawl_shard": key})
        for key in to_run
    ]
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=([web_crawl_shards.build_add_request(to_add)] if to_add else [])
        + ([web_sources.build_add_request(new_sources)] if new_sources else []),
        cursor=json.dumps(cursor, sort_keys=True),
    )
