"""Schedules, sensors and extra jobs, exported as lists for ``opencoder_assets.definitions``.

Why lists: the definitions module stays the one place that assembles ``Definitions``, and this
package never imports it (jobs are referenced by name), so there is no import cycle.
"""

from dagster import AutomationConditionSensorDefinition, ScheduleDefinition, SensorDefinition

from sensors.code_sensors import new_code_sensor, record_run_failures_sensor, reindexed_partitions_sensor
from sensors.schedules import nightly_stale_partitions_schedule, refinecode_automation_sensor

SCHEDULES: list[ScheduleDefinition] = [nightly_stale_partitions_schedule]
SENSORS: list[SensorDefinition | AutomationConditionSensorDefinition] = [
    new_code_sensor,
    reindexed_partitions_sensor,
    record_run_failures_sensor,
    refinecode_automation_sensor,
]


def _ops_jobs() -> list:
    """Scale-out jobs; empty when the optional dask extras are not installed."""
    try:
        from opencoder_assets.scale_out import refinecode_dask_job
    except ImportError:  # dagster-dask / distributed not installed
        return []
    return [refinecode_dask_job]


OPS_JOBS: list = _ops_jobs()

__all__ = ["OPS_JOBS", "SCHEDULES", "SENSORS"]
