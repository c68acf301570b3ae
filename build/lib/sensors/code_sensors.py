"""Sensors: new code in the input location -> re-index -> re-run the affected language partitions.

Why two sensors instead of one: ``raw_code`` reads the ``source_index`` snapshot, so partition runs
must start *after* the re-index has succeeded. ``new_code_sensor`` only requests a
``source_index_job`` run, tagged with the partitions that changed; ``reindexed_partitions_sensor``
waits for that run to succeed and then requests one ``refinecode_job`` run per tagged partition.
Both address jobs by name, so this module never imports ``opencoder_assets.definitions``
(which imports this package).

The change detection is a cheap fingerprint kept in the sensor cursor (no file is read):
per repository its newest file/directory mtime and the partitions it had, per table file its
mtime and size. A new or newer file is mapped to its partition with
``detect_language(path).partition``; a deleted file only changes its directory's mtime, so then
every partition the repository had is re-run.
"""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.dataset as pads
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from opencoder_assets.core.ingest import SKIP_DIRS, TableMapping, escape_fs_path, load_manifest
from opencoder_assets.core.languages import detect_language
from resources import CodeSources, MetricsStore

#: Tag on a sensor-requested ``source_index_job`` run: comma-separated partitions to re-run after it.
PARTITIONS_TAG = "opencoder/affected_partitions"
SOURCE_INDEX_JOB = "source_index_job"
REFINECODE_JOB = "refinecode_job"


# --------------------------------------------------------------------------- fingerprint
@dataclass
class RepoPrint:
    """What the cursor remembers about one repository."""

    mtime_ns: int
    partitions: dict[str, int]  # partition -> number of files


@dataclass
class SourceScan:
    """A scan of the inputs: per-repo fingerprint and, per repo, partitions of files newer than a bound."""

    repos: dict[str, RepoPrint] = field(default_factory=dict)
    tables: dict[str, list[int]] = field(default_factory=dict)  # path -> [mtime_ns, size]
    newer: dict[str, set[str]] = field(default_factory=dict)  # repo -> partitions of files newer than bound


def _repo_dirs(sources: CodeSources) -> Iterator[tuple[str, Path]]:
    """Same repository discovery as ingestion (immediate sub-directories + manifest paths), without git."""
    manifest = load_manifest(sources.manifest) if sources.manifest and Path(sources.manifest).exists() else {}
    for folder in sources.folders:
        root = Path(folder)
        if not root.is_dir():
            continue
        paths: dict[str, Path] = {}
        for child in sorted(root.iterdir()):
            if child.is_dir() and not child.is_symlink() and child.name not in SKIP_DIRS:
                paths[escape_fs_path(child.name)] = child  # same repo names as source_index
        for name, row in manifest.items():
            if row.get("path"):
                p = Path(row["path"])
                paths[name] = p if p.is_absolute() else (root / p).resolve()
        yield from sorted(paths.items())


def _walk_repo(path: Path, newer_than_ns: int) -> tuple[int, Counter, set[str]]:
    """(newest mtime of any file or dir, files per partition, partitions of files newer than bound).

    Uses ``lstat`` only: symlink loops and dangling links cost nothing and never raise.
    """
    newest = 0
    all_parts: Counter = Counter()
    new_parts: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not os.path.islink(os.path.join(dirpath, d))]
        try:
            newest = max(newest, os.lstat(dirpath).st_mtime_ns)
        except OSError:
            continue
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                mtime = os.lstat(full).st_mtime_ns
            except OSError:
                continue
            part = detect_language(os.path.relpath(full, path)).partition
            all_parts[part] += 1
            newest = max(newest, mtime)
            if mtime > newer_than_ns:
                new_parts.add(part)
    return newest, all_parts, new_parts


def scan_sources(sources: CodeSources, previous: dict[str, RepoPrint] | None = None) -> SourceScan:
    """Fingerprint every repo and table; for repos whose fingerprint moved, which partitions changed."""
    previous = previous or {}
    scan = SourceScan()
    for name, path in _repo_dirs(sources):
        old = previous.get(name)
        bound = old.mtime_ns if old else -1
        newest, all_parts, new_parts = _walk_repo(path, bound)
        scan.repos[name] = RepoPrint(newest, dict(sorted(all_parts.items())))
        if old is None or newest != old.mtime_ns:
            scan.newer[name] = new_parts
    for table in sources.tables:
        try:
            st = os.stat(table)
        except OSError:
            continue
        scan.tables[str(table)] = [st.st_mtime_ns, st.st_size]
    return scan


def table_partitions(path: str, sources: CodeSources) -> set[str]:
    """Partitions of a Stack-v2-style table: reads only its path column."""
    column = TableMapping.from_mapping(sources.column_map).path
    fmt = "json" if path.endswith((".jsonl", ".json")) else "parquet"
    values = pads.dataset(path, format=fmt).to_table(columns=[column]).column(column).to_pylist()
    return {detect_language(p or "").partition for p in values}


def affected_partitions(scan: SourceScan, cursor: dict, sources: CodeSources) -> dict[str, set[str]]:
    """Per changed input (``repo:<name>`` / ``table:<path>``), the partitions to re-run."""
    old_repos = {k: RepoPrint(**v) for k, v in cursor.get("repos", {}).items()}
    old_tables: dict[str, list[int]] = cursor.get("tables", {})
    changed: dict[str, set[str]] = {}
    for name, new_parts in scan.newer.items():
        old = old_repos.get(name)
        parts = set(new_parts)
        if old is not None:
            now = scan.repos[name].partitions
            # deleted files: their partition's file count dropped
            parts |= {p for p in set(old.partitions) | set(now) if old.partitions.get(p) != now.get(p)}
            if not parts:
                # only a directory mtime moved (e.g. a rename): re-run everything the repo had
                parts = set(old.partitions)
        if parts:
            changed[f"repo:{name}"] = parts
    for name in set(old_repos) - set(scan.repos):
        changed[f"repo:{name}"] = set(old_repos[name].partitions)
    for path, fp in scan.tables.items():
        if old_tables.get(path) != fp:
            changed[f"table:{path}"] = table_partitions(path, sources)
    return changed


def _cursor_json(scan: SourceScan) -> str:
    return json.dumps({
        "repos": {k: {"mtime_ns": v.mtime_ns, "partitions": v.partitions} for k, v in sorted(scan.repos.items())},
        "tables": scan.tables,
    }, sort_keys=True)


# --------------------------------------------------------------------------- sensors
@sensor(
    job_name=SOURCE_INDEX_JOB,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="New/changed/removed repos or table files in the input location -> re-index, tagged "
    "with the affected language partitions (reindexed_partitions_sensor then runs them).",
)
def new_code_sensor(context: SensorEvaluationContext, sources: CodeSources) -> SensorResult | SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else None
    old = {k: RepoPrint(**v) for k, v in (cursor or {}).get("repos", {}).items()}
    scan = scan_sources(sources, old)
    new_cursor = _cursor_json(scan)
    if cursor is None:
        # First tick: everything is "new". Only trigger if the inputs were never indexed.
        from dagster import AssetKey

        if context.instance.get_latest_materialization_event(AssetKey("source_index")) is not None:
            return SensorResult(skip_reason=SkipReason("baseline fingerprint recorded"), cursor=new_cursor)
        cursor = {}
    changed = affected_partitions(scan, cursor, sources)
    if not changed:
        return SensorResult(skip_reason=SkipReason("no new or changed inputs"), cursor=new_cursor)
    partitions = sorted(set().union(*changed.values()))
    context.log.info(f"changed inputs: {sorted(changed)} -> partitions {partitions}")
    run_key = "source-change-" + hashlib.sha1(new_cursor.encode()).hexdigest()[:16]
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key, job_name=SOURCE_INDEX_JOB, tags={
            PARTITIONS_TAG: ",".join(partitions),
            "opencoder/changed_inputs": ",".join(sorted(changed))[:1000],
        })],
        cursor=new_cursor,
    )


@sensor(
    job_name=REFINECODE_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="After a sensor-requested source_index_job run succeeds, one refinecode_job run per "
    "affected language partition (from the run's tag).",
)
def reindexed_partitions_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    done: list[str] = json.loads(context.cursor) if context.cursor else []
    records = context.instance.get_run_records(
        filters=RunsFilter(job_name=SOURCE_INDEX_JOB, statuses=[DagsterRunStatus.SUCCESS]),
        limit=50,
    )
    requests: list[RunRequest] = []
    for rec in records:
        run = rec.dagster_run
        if run.run_id in done or PARTITIONS_TAG not in run.tags:
            continue
        done.append(run.run_id)
        for partition in filter(None, run.tags[PARTITIONS_TAG].split(",")):
            requests.append(RunRequest(run_key=f"{run.run_id}:{partition}", partition_key=partition,
                                       job_name=REFINECODE_JOB, tags={"opencoder/source_index_run": run.run_id}))
    cursor = json.dumps(done[-200:])
    if not requests:
        return SensorResult(skip_reason=SkipReason("no new successful re-index with affected partitions"),
                            cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)


@run_failure_sensor(
    name="record_run_failures_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="Every failed run of this code location -> a row in the metrics store's run_failures.",
)
def record_run_failures_sensor(context: RunFailureSensorContext, metrics: MetricsStore) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    partition = run.tags.get("dagster/partition")
    if partition:
        message = f"[partition {partition}] {message}"
    step_failures = []
    for ev in context.get_step_failure_events():
        error = getattr(ev.event_specific_data, "error", None)
        while error is not None and error.cause is not None:  # the user's exception, not Dagster's wrapper
            error = error.cause
        if error is not None:
            step_failures.append(f"{ev.step_key}: {error.message.strip()[:500]}")
    if step_failures:
        message += " | " + " | ".join(step_failures)
    metrics.record_failure(run.run_id, run.job_name, message[:4000])
