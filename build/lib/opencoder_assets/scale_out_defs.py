"""A standalone ``Definitions`` with the scale-out jobs, for ``dagster job execute -m`` and tests.

Why separate: the main definitions import ``sensors`` -> ``scale_out``; importing the main
definitions from ``scale_out`` would be a cycle. Once the lead wires ``OPS_JOBS`` into
``opencoder_assets.definitions`` this module is only a convenience.
"""

from dagster import Definitions

from opencoder_assets.definitions import build_resources, code_assets, source_index_job
from opencoder_assets.scale_out import refinecode_dask_job

defs = Definitions(
    assets=[*code_assets],
    jobs=[source_index_job, refinecode_dask_job],
    resources=build_resources(),
)
