"""The Dagster ``Definitions``: every asset, check, job, schedule, sensor and resource."""

from __future__ import annotations

from dagster import AssetsDefinition, Definitions, define_asset_job, in_process_executor

from opencoder_assets.assets.annealing import ANNEALING_ASSETS
from opencoder_assets.assets.checks import OPS_CHECKS
from opencoder_assets.assets.code import FINAL_CHECKS, STEP_ASSETS
from opencoder_assets.assets.code_web import CODE_WEB_ASSETS, CODE_WEB_JOBS
from opencoder_assets.assets.ingestion import source_index
from opencoder_assets.assets.report import REPORT_ASSETS
from opencoder_assets.assets.sft import SFT_ASSETS
from opencoder_assets.assets.web_recall import WEB_ASSETS, WEB_JOBS, WEB_RESOURCES, WEB_SENSORS
from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
from resources.engine import ExecutionEngine
from resources.teacher import TeacherLLM
from sensors import OPS_JOBS, SCHEDULES, SENSORS

#: The per-language code pipeline, in recipe order (generated from core.steps.CODE_STEPS).
code_assets: list[AssetsDefinition] = [source_index, *STEP_ASSETS]
code_checks = list(FINAL_CHECKS)

#: Partitioned assets of the code pipeline (source_index is global and runs before them).
partitioned_code_assets = [a for a in code_assets if a.partitions_def is not None]

ingest_job = define_asset_job(
    "ingest_job",
    selection=["raw_code", "preprocessed_code", "exact_deduped_code"],
    description="Ingestion, preprocessing and exact dedup only, per language partition.",
    executor_def=in_process_executor,
)

source_index_job = define_asset_job("source_index_job", selection=["source_index"],
                                    description="Re-walk the input folders.", executor_def=in_process_executor)

refinecode_job = define_asset_job(
    "refinecode_job",
    selection=[a.key for a in partitioned_code_assets],
    description="Raw code -> RefineCode corpus for one language partition. Steps run in one process "
    "(no per-step process start); the work inside each step spreads over the `engine` resource "
    "(process pool over all cores by default, or a Dask cluster with OPENCODER_DASK_SCHEDULER).",
    executor_def=in_process_executor,
)


def build_resources() -> dict:
    return {
        "sources": CodeSources(),
        "storage": CorpusStorage(),
        "metrics": MetricsStore(),
        "settings": PipelineSettings(),
        "engine": ExecutionEngine(),
        "teacher": TeacherLLM(),
        **WEB_RESOURCES,
    }


def pipeline_assets_for(selection: str | None = None) -> list[AssetsDefinition]:
    """The code assets, optionally restricted to comma-separated asset names."""
    if not selection:
        return code_assets
    wanted = set(selection.split(","))
    return [a for a in code_assets if a.key.to_user_string() in wanted]


defs = Definitions(
    assets=[*code_assets, *WEB_ASSETS, *CODE_WEB_ASSETS, *ANNEALING_ASSETS, *SFT_ASSETS, *REPORT_ASSETS],
    asset_checks=[*code_checks, *OPS_CHECKS],
    jobs=[source_index_job, ingest_job, refinecode_job, *WEB_JOBS, *CODE_WEB_JOBS, *OPS_JOBS],
    schedules=[*SCHEDULES],
    sensors=[*WEB_SENSORS, *SENSORS],
    resources=build_resources(),
)
