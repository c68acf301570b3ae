"""Schedules and declarative automation for the language partitions.

- ``nightly_stale_partitions_schedule`` (02:00 daily): one ``refinecode_job`` run per *stale*
  partition only -- a partition that has files in the latest ``source_index`` but whose
  ``refinecode_code`` is missing, older than the index or than any of its own upstream steps, or
  older than ``MAX_AGE_DAYS``. Re-running fresh partitions would only burn CPU.
- Run cost: every run is one process (``in_process_executor``); inside each step the ``engine``
  resource runs small partitions in-process and spreads large ones over a process pool or a Dask
  cluster (docs/scale_out.md).
- ``refinecode_automation_sensor``: declarative automation (``AutomationCondition.eager()``) for
  the steps after ``raw_code``: when one step of a partition is re-materialized by hand (e.g. new
  filter thresholds), its downstream steps of that partition catch up. ``raw_code`` is left out on
  purpose: every ``source_index`` update would otherwise re-run all 25 partitions; the
  ``new_code_sensor`` decides which partitions really changed.

Jobs are addressed by name so this package does not import ``opencoder_assets.definitions``.
"""

import datetime as dt
import re

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from opencoder_assets.core.languages import PARTITION_LANGUAGES
from opencoder_assets.core.steps import STEP_NAMES

#: Pipeline steps of one partition, upstream first (source_index is global and precedes them).
PARTITION_STEPS = list(STEP_NAMES)
MAX_AGE_DAYS = 30


def _latest_ts(instance: DagsterInstance, asset: str, partition: str | None) -> float | None:
    """Timestamp of the latest materialization of an asset (partition), or None."""
    if partition is None:
        ev = instance.get_latest_materialization_event(AssetKey(asset))
        return ev.timestamp if ev is not None else None
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return records[0].timestamp if records else None


def files_per_partition(instance: DagsterInstance) -> dict[str, int]:
    """Partition -> file count from the latest ``source_index`` materialization's metadata."""
    ev = instance.get_latest_materialization_event(AssetKey("source_index"))
    if ev is None or ev.asset_materialization is None:
        return {}
    md = ev.asset_materialization.metadata
    counts: dict[str, int] = {}
    table = md.get("files_per_partition")
    if table is not None:
        for part, n in re.findall(r"^\|\s*([\w+.-]+)\s*\|\s*(\d+)\s*\|$", str(table.value), re.M):
            counts[part] = int(n)
    listed = md.get("partitions_with_files")
    for part in (listed.value if listed is not None else []) or []:
        counts.setdefault(part, 0)
    return {p: n for p, n in counts.items() if p in PARTITION_LANGUAGES}


def stale_partitions(instance: DagsterInstance, now: float, max_age_days: float = MAX_AGE_DAYS) -> dict[str, str]:
    """Partition -> why it is stale (partitions with files in the latest source index only)."""
    index_ts = _latest_ts(instance, "source_index", None)
    out: dict[str, str] = {}
    for part in sorted(files_per_partition(instance)):
        final = _latest_ts(instance, PARTITION_STEPS[-1], part)
        if final is None:
            out[part] = "never materialized"
            continue
        if index_ts is not None and index_ts > final:
            out[part] = "source_index is newer"
            continue
        newer = [s for s in PARTITION_STEPS[:-1] if (_latest_ts(instance, s, part) or 0) > final]
        if newer:
            out[part] = f"{newer[0]} is newer"
        elif now - final > max_age_days * 86400:
            out[part] = f"older than {max_age_days} days"
    return out


@schedule(
    cron_schedule="0 2 * * *",
    job_name="refinecode_job",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Nightly: re-materialize only the stale language partitions (missing, older than "
    "the source index or an upstream step, or older than 30 days).",
)
def nightly_stale_partitions_schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
    when = context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)
    stale = stale_partitions(context.instance, when.timestamp())
    if not stale:
        return SkipReason("no stale partition")
    day = when.strftime("%Y-%m-%d")
    return [RunRequest(run_key=f"nightly-{day}-{part}", partition_key=part, tags={"opencoder/stale_reason": why})
            for part, why in stale.items()]


#: Steps after raw_code: they follow their upstream partition (see module docstring).
AUTOMATED_STEPS = PARTITION_STEPS[1:]

refinecode_automation_sensor = AutomationConditionSensorDefinition(
    "refinecode_automation_sensor",
    target=AssetSelection.assets(*AUTOMATED_STEPS),
    default_condition=AutomationCondition.eager(),
    use_user_code_server=True,
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Declarative automation: a re-materialized step's downstream steps of the same "
    "partition catch up (eager), e.g. after new filter thresholds.",
)
