"""``corpus_report``: the story of the data across every language, as Dagster metadata and one HTML file.

Why an asset: the report is derived data like any other -- it reads the published versions (through
``CorpusStorage``) and the metrics views (through ``MetricsStore.query``), is re-materialized when
they change, and publishes its HTML as a version of its own (``corpus_report/__all__``), so the
file linked from the metadata is never half-written. The sections are built once by
``core/report.py`` and rendered twice: as typed tables and inline PNG charts in the UI, and as a
self-contained HTML page (open it from ``report_url`` or ``opencoder_assets/.../corpus_report.html``).
"""

import json
from collections.abc import Sequence
from typing import Any

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from opencoder_assets.assets.code import funnel_rows
from opencoder_assets.core.filtering import FilterThresholds
from opencoder_assets.core.report import (
    CorpusReport,
    ReportTable,
    build_report,
    excerpts_markdown,
    read_texts,
)
from opencoder_assets.core.steps import FINAL_STEP, STEP_NAMES
from opencoder_assets.partitions import language_partitions
from resources import CorpusStorage, MetricsStore

REPORT_ASSET = "corpus_report"
REPORT_FILE = "corpus_report.html"
#: Why only the final code asset is a dependency: the web-recall, annealing and SFT steps are
#: summarised when they have published (``step_runs``), but as graph dependencies the UI would ask
#: "Are you sure? upstream assets have not been materialized" on every code-only report.


class ReportConfig(Config):
    """``thresholds_path``: the threshold file the filter ran with, if not the packaged one."""

    thresholds_path: str | None = None
    top_signals: int = 6
    top_clusters: int = 6
    transform_samples: int = 4


def published_partitions(storage: CorpusStorage) -> list[str]:
    """Language partitions with at least one published code step."""
    return [p for p in language_partitions.get_partition_keys() if any(storage.has(s, p) for s in STEP_NAMES)]


def _text_reader(storage: CorpusStorage):
    def texts(partition: str, file_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        if not (storage.has("fuzzy_deduped_code", partition) and storage.has("transformed_code", partition)):
            return {}, {}
        return (read_texts(storage.shards("fuzzy_deduped_code", partition), file_ids),
                read_texts(storage.shards("transformed_code", partition), file_ids))
    return texts


def table_metadata(t: ReportTable) -> MetadataValue:
    return MetadataValue.table([TableRecord(dict(r)) for r in t.rows],
                               schema=TableSchema([TableColumn(n, k) for n, k in t.columns]))


def report_metadata(report: CorpusReport, html_path: Any, final_files: int) -> dict[str, Any]:
    """The report as Dagster metadata: typed tables, charts as inline images in Markdown."""
    meta: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(final_files),
        "report_path": MetadataValue.path(str(html_path)),
        "report_url": MetadataValue.url(html_path.as_uri()),
        "report_KB": MetadataValue.float(round(html_path.stat().st_size / 1024, 1)),
        "headlines": MetadataValue.md("\n".join(f"- {b}" for b in report.section("headlines").bullets) or "_no data_"),
    }
    for s in report.sections:
        for c in s.charts:
            meta[c.key] = MetadataValue.md(f"**{c.title}**\n\n![{c.title}]({c.data_uri()})")
        for t in s.tables:
            meta[t.key] = table_metadata(t)
    meta["transformations"] = MetadataValue.md(excerpts_markdown(report.section("transformations").excerpts))
    return meta


@asset(
    name=REPORT_ASSET,
    group_name="report",
    deps=[AssetDep(FINAL_STEP, partition_mapping=AllPartitionMapping())],
    description="The corpus report: funnel across steps and languages (files, MB, tokens), per-language "
    "yield, top drop reasons, quality-signal distributions against their thresholds, the largest dedup "
    "clusters and sample transformations -- as charts and tables here and as one self-contained HTML file.",
    kinds={"html", "duckdb"},
)
def corpus_report(context: AssetExecutionContext, config: ReportConfig, storage: CorpusStorage,
                  metrics: MetricsStore) -> MaterializeResult:
    partitions = published_partitions(storage)
    if not partitions:
        raise FileNotFoundError(f"corpus_report: no code step has published data under {storage.root}; "
                                "materialize the code pipeline for at least one language first")
    funnel = {p: funnel_rows(storage, p) for p in partitions}
    thresholds = FilterThresholds.load(config.thresholds_path)
    report = build_report(funnel=funnel, query=metrics.query, texts=_text_reader(storage), thresholds=thresholds,
                          step_names=STEP_NAMES, top_signals=config.top_signals, top_clusters=config.top_clusters,
                          samples=config.transform_samples)
    inputs = {f"{s}[{p}]": storage.manifest(s, p)["version"] for p in partitions for s in STEP_NAMES
              if storage.has(s, p)}
    with storage.writer(REPORT_ASSET, None) as writer:
        (writer.path / REPORT_FILE).write_text(report.html(), encoding="utf-8")
        (writer.path / "corpus_report.json").write_text(json.dumps(
            {t.key: {"title": t.title, "columns": t.columns, "rows": t.rows} for t in report.tables()},
            default=str, indent=1), encoding="utf-8")
        final = writer.commit({"asset": REPORT_ASSET, "partitions": partitions, "inputs": inputs,
                               "sections": [s.title for s in report.sections],
                               "thresholds": thresholds.source})
    html_path = final / REPORT_FILE
    final_files = sum(r["files_kept"] for rows in funnel.values() for r in rows if r["step"] == FINAL_STEP)
    context.log.info(f"corpus_report: {len(partitions)} partitions, {len(report.charts())} charts, "
                     f"{len(report.tables())} tables -> {html_path}")
    return MaterializeResult(metadata=report_metadata(report, html_path, final_files))


REPORT_ASSETS = [corpus_report]
