"""The Dagster ``Definitions``: every asset, check, job, schedule, sensor and resource."""

from __future__ import annotations

from dagster import (
    AssetsDefinition,
    Definitions,
    define_asset_job,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from opencoder_assets.assets import ingestion, refine
from opencoder_assets.assets.annealing import ANNEALING_ASSETS
from opencoder_assets.assets.checks import OPS_CHECKS
from opencoder_assets.assets.sft import SFT_ASSETS
from opencoder_assets.assets.web_recall import WEB_ASSETS, WEB_JOBS, WEB_RESOURCES, WEB_SENSORS
from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
from resources.teacher import TeacherLLM
from sensors import OPS_JOBS, SCHEDULES, SENSORS

#: The per-language code pipeline, in recipe order.
code_assets: list[AssetsDefinition] = list(load_assets_from_modules([ingestion, refine]))
code_checks = list(load_asset_checks_from_modules([refine]))

#: Partitioned assets of the code pipeline (source_index is global and runs before them).
partitioned_code_assets = [a for a in code_assets if a.partitions_def is not None]

ingest_job = define_asset_job(
    "ingest_job",
    selection=["raw_code", "preprocessed_code", "exact_deduped_code"],
    description="Ingestion, preprocessing and exact dedup only, per language partition.",
)

source_index_job = define_asset_job("source_index_job", selection=["source_index"],
                                    description="Re-walk the input folders.")

refinecode_job = define_asset_job(
    "refinecode_job",
    selection=[a.key for a in partitioned_code_assets],
    description="Raw code -> RefineCode corpus for one language partition.",
)


def build_resources() -> dict:
    return {
        "sources": CodeSources(),
        "storage": CorpusStorage(),
        "metrics": MetricsStore(),
        "settings": PipelineSettings(),
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
    assets=[*code_assets, *WEB_ASSETS, *ANNEALING_ASSETS, *SFT_ASSETS],
    asset_checks=[*code_checks, *OPS_CHECKS],
    jobs=[source_index_job, ingest_job, refinecode_job, *WEB_JOBS, *OPS_JOBS],
    schedules=[*SCHEDULES],
    sensors=[*WEB_SENSORS, *SENSORS],
    resources=build_resources(),
)
