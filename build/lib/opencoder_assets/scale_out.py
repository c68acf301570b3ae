"""Scale-out jobs: the per-language pipeline on a Dask cluster (many machines).

Why Dask for partitions: ``dagster-dask``'s executor submits every step of a run to a Dask
scheduler; the same job runs on a ``LocalCluster`` in tests/laptops and on an existing scheduler
(``cluster: {existing: {address: tcp://scheduler:8786}}``) or a Kubernetes/SLURM/YARN cluster in
production, with no code change. The fuzzy-dedup grouping runs on the same Dask cluster
(``core.distributed_dedup``), so a deployment needs one engine, not two. See docs/scale_out.md.

This module must not import ``opencoder_assets.definitions`` (which imports ``sensors``, which
imports this module); ``opencoder_assets.scale_out_defs`` builds a standalone ``Definitions``.
"""

import os

from dagster import AssetSelection, define_asset_job
from dagster_dask import dask_executor

from opencoder_assets.core.steps import STEP_NAMES

#: The partitioned steps of one language, upstream first.
PARTITION_STEPS = list(STEP_NAMES)


def dask_cluster_config() -> dict:
    """``OPENCODER_DASK_SCHEDULER=tcp://host:8786`` -> that cluster, else a 2-worker LocalCluster."""
    address = os.environ.get("OPENCODER_DASK_SCHEDULER")
    if address:
        return {"existing": {"address": address}}
    return {"local": {"n_workers": int(os.environ.get("OPENCODER_DASK_WORKERS", "2")), "threads_per_worker": 1,
                      "processes": True, "dashboard_address": None}}


refinecode_dask_job = define_asset_job(
    "refinecode_dask_job",
    selection=AssetSelection.assets(*PARTITION_STEPS),
    # configured at load time from the environment (a partitioned job's run config is built from the
    # partition, so executor defaults in ``config=`` would not be applied)
    executor_def=dask_executor.configured({"cluster": dask_cluster_config()}, name="dask"),
    description="refinecode_job on a Dask cluster: each step is a Dask task (LocalCluster by default, "
    "or the scheduler in OPENCODER_DASK_SCHEDULER).",
)
