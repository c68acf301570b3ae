"""The code-web corpus per crawl source and the RefineCode mix (code + code-web) as assets.

Why partitioned by source (``web_sources``, one dynamic partition per source named by
``WebRecallSettings.shard_sources`` / the crawl's top folders): the paper draws code-related
web pages from Common Crawl, FineWeb, SkyPile and AutoMathText and reports each; per-source
partitions keep each source's funnel, drops and tokens apart, and a new source's shards never
recompute the others. Dedup therefore runs within a source (docs/web_recall.md).

Steps (``core/code_web.py:WEB_STEPS``) run through the step kernel exactly like the code steps:
planned units, an engine, one decision per input page, a published version with a manifest that
the metrics views (``file_decisions``, ``step_runs``, ``web_quality_signals``, ``dedup_clusters``)
read. ``refinecode_mix`` then lists every published code and code-web partition and reports the
composition in tokens per source.
"""


import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    define_asset_job,
    in_process_executor,
)

from opencoder_assets.assets.code import config_class, plain_metadata
from opencoder_assets.assets.web_recall import WEB_RECALL_ROUNDS, WebRecallSettings
from opencoder_assets.core import code_web as cw
from opencoder_assets.core.kernel import AccountingError, StepSpec, Unit, plan_units, resolve, run_step
from opencoder_assets.core.steps import FINAL_STEP
from resources import CorpusStorage, PipelineSettings
from resources.engine import ExecutionEngine
from sensors.web_crawl_sensor import web_sources

GROUP = "code_web"
MIX_STEP = "refinecode_mix"
CODE_CATEGORY = "code"
WEB_CATEGORY = "code-related web"


def _plan(spec: StepSpec, source: str, storage: CorpusStorage, web_recall: WebRecallSettings,
          settings: PipelineSettings, recall_round: str) -> tuple[list[Unit], list[Path], dict[str, Any], int]:
    """Units, input shards, upstream versions read, and the number of rows the step must decide."""
    if spec.source_fn:
        files = storage.shards("recalled_web_pages", recall_round)
        manifest = storage.manifest("recalled_web_pages", recall_round)
        units = cw.plan_recalled_units(files, source, web_recall.crawl_dir)
        return units, [], {"recalled_web_pages": manifest["version"]}, cw.count_recalled(files, source)
    in_step = spec.input_step
    shards = storage.shards(in_step, source)
    manifest = storage.manifest(in_step, source)
    checksums = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    units = plan_units(shards, settings.unit_rows, checksums)
    return units, shards, {in_step: manifest["version"]}, int(manifest["counts"]["kept"])


def _reasons(reasons: dict[str, int], total: int) -> MetadataValue:
    return MetadataValue.table(
        [TableRecord({"reason": r, "pages": int(n), "share": round(n / max(total, 1), 4)})
         for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
        schema=TableSchema([TableColumn("reason", "string"), TableColumn("pages", "int"),
                            TableColumn("share", "float")]))


def materialize_web_step(context: AssetExecutionContext, spec: StepSpec, source: str, config: Config,
                         storage: CorpusStorage, web_recall: WebRecallSettings, settings: PipelineSettings,
                         engine: ExecutionEngine, recall_round: str) -> MaterializeResult:
    """Plan -> run units on the engine -> check accounting -> publish one version (as the code steps)."""
    params = resolve(spec.params)(**config.model_dump())
    t0 = time.perf_counter()
    with storage.writer(spec.name, source) as writer:
        units, shards, inputs, expected = _plan(spec, source, storage, web_recall, settings, recall_round)
        with engine.engine(len(units)) as eng:
            run = run_step(spec, partition=source, params=params, units=units, input_shards=shards,
                           out_dir=writer.path, work_dir=writer.work_dir, engine=eng, batch_rows=settings.batch_rows,
                           spec_module=cw.__name__, log=context.log.info)
            engine_name, workers = eng.name, eng.workers
        s = run.summary
        if s.input_rows != expected:
            raise AccountingError(f"{spec.name}[{source}]: decided {s.input_rows} pages but its input has {expected}"
                                  f" ({spec.input_step or f'{recall_round}/recalled_web_pages'})")
        counts = {"input_count": s.input_rows, "kept": s.kept_rows, "dropped": s.dropped_rows,
                  "input_bytes": s.input_bytes, "kept_bytes": s.kept_bytes}
        counters = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(s.counters.items())}
        extra = {"reasons": dict(s.reasons), **run.stats, **counters, "engine": engine_name, "workers": workers,
                 "units": len(units), "source": source, "recall_round": recall_round}
        writer.commit({
            "step": spec.name, "partition": source, "run_id": context.run.run_id, "counts": counts,
            "extra": extra, "tables": run.tables, "inputs": inputs,
            "units": [{"key": u.key, "path": Path(u.path).name, "row_groups": list(u.row_groups)} for u in units],
        })
    context.log.info(f"{spec.name}[{source}]: {s.input_rows} in, {s.kept_rows} kept, {s.dropped_rows} dropped "
                     f"in {time.perf_counter() - t0:.1f}s")
    meta: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(s.kept_rows),
        "source": MetadataValue.text(source),
        "input_files": MetadataValue.int(s.input_rows),
        "kept_files": MetadataValue.int(s.kept_rows),
        "dropped_files": MetadataValue.int(s.dropped_rows),
        "input_MB": MetadataValue.float(round(s.input_bytes / 1e6, 3)),
        "kept_MB": MetadataValue.float(round(s.kept_bytes / 1e6, 3)),
        "drop_reasons": _reasons(dict(s.reasons), s.input_rows),
        "sample_kept": MetadataValue.md("\n".join(f"- `{x}`" for x in s.kept_samples) or "_none_"),
        "sample_dropped": MetadataValue.md("\n".join(f"- `{x}`" for x in s.dropped_samples) or "_none_"),
        "engine": MetadataValue.text(f"{engine_name} x{workers}, {len(units)} units"),
        "data_path": MetadataValue.path(str(writer.path)),
        **plain_metadata({**run.stats, **counters}),
    }
    return MaterializeResult(metadata=meta)


def build_web_step_asset(spec: StepSpec, rounds: int) -> AssetsDefinition:
    config_cls = config_class(spec, source_params=True)
    recall_round = f"round_{rounds}"
    deps: list[Any] = ([AssetKey([recall_round, "recalled_web_pages"]), AssetKey("web_pages")] if spec.source_fn
                       else [spec.upstream])

    @asset(name=spec.name, partitions_def=web_sources, group_name=GROUP, deps=deps, description=spec.doc,
           kinds=set(spec.kinds))
    def _step(context: AssetExecutionContext, config: config_cls, storage: CorpusStorage,  # type: ignore[valid-type]
              web_recall: WebRecallSettings, settings: PipelineSettings, engine: ExecutionEngine) -> MaterializeResult:
        return materialize_web_step(context, spec, context.partition_key, config, storage, web_recall, settings,
                                    engine, recall_round)

    return _step


# --------------------------------------------------------------------------------- refinecode_mix
COMPOSITION_SCHEMA = pa.schema([
    ("category", pa.string()), ("source", pa.string()), ("step", pa.string()), ("version", pa.string()),
    ("documents", pa.int64()), ("bytes", pa.int64()), ("tokens", pa.int64()), ("token_share", pa.float64()),
])
MEMBER_SCHEMA = pa.schema([
    ("category", pa.string()), ("source", pa.string()), ("step", pa.string()), ("version", pa.string()),
    ("file", pa.string()), ("sha256", pa.string()),
])


def _published_partitions(storage: CorpusStorage, step: str) -> list[str]:
    base = storage.base_dir(step, None).parent
    return sorted(p.name for p in base.iterdir() if p.is_dir() and storage.has(step, p.name)) if base.is_dir() else []


def mix_composition(storage: CorpusStorage) -> tuple[pa.Table, pa.Table]:
    """(composition, members): one composition row per published partition of refinecode_code
    (category ``code``, source = language) and code_web_corpus (category ``code-related web``,
    source = crawl source) with documents, bytes and the tokens the step counted; members = every
    shard file of those versions (what a trainer reads)."""
    rows: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for category, step in ((CODE_CATEGORY, FINAL_STEP), (WEB_CATEGORY, cw.WEB_FINAL_STEP)):
        for part in _published_partitions(storage, step):
            m = storage.manifest(step, part)
            tokens = m.get("extra", {}).get("kept_tokens")
            if tokens is None:
                raise ValueError(f"{storage.current_dir(step, part)}: manifest has no kept_tokens; "
                                 f"re-materialize {step}[{part}]")
            rows.append({"category": category, "source": part, "step": step, "version": m["version"],
                         "documents": int(m["counts"]["kept"]), "bytes": int(m["counts"]["kept_bytes"]),
                         "tokens": int(tokens), "token_share": 0.0})
            d = storage.current_dir(step, part)
            members += [{"category": category, "source": part, "step": step, "version": m["version"],
                         "file": str(d / name), "sha256": entry["sha256"]}
                        for name, entry in sorted(m["files"].items()) if name.startswith("part-")]
    total = sum(r["tokens"] for r in rows)
    for r in rows:
        r["token_share"] = round(r["tokens"] / total, 6) if total else 0.0
    return (pa.Table.from_pylist(rows, schema=COMPOSITION_SCHEMA),
            pa.Table.from_pylist(members, schema=MEMBER_SCHEMA))


def composition_markdown(comp: pa.Table) -> str:
    """The paper-style table: tokens per source, subtotals per category, total."""
    rows = comp.to_pylist()
    total = sum(r["tokens"] for r in rows) or 1
    lines = ["| category | source | documents | tokens | share |", "|---|---|---:|---:|---:|"]
    for category in (CODE_CATEGORY, WEB_CATEGORY):
        part = [r for r in rows if r["category"] == category]
        for r in part:
            lines.append(f"| {category} | {r['source']} | {r['documents']} | {r['tokens']} | {r['tokens'] / total:.2%} |")
        sub = sum(r["tokens"] for r in part)
        lines.append(f"| **{category} total** | | {sum(r['documents'] for r in part)} | {sub} | {sub / total:.2%} |")
    lines.append(f"| **total** | | {sum(r['documents'] for r in rows)} | {sum(r['tokens'] for r in rows)} | 100.00% |")
    return "\n".join(lines)


@asset(name=MIX_STEP, group_name=GROUP, deps=[FINAL_STEP, cw.WEB_FINAL_STEP], kinds={"parquet"},
       description="The RefineCode pretraining mix: every published refinecode_code language partition plus every "
       "code_web_corpus source partition (a list of member shards, not a copy), with the composition in tokens per "
       "source like the paper's table (tokens as counted by the steps, core/tokens.py).")
def refinecode_mix(context: AssetExecutionContext, storage: CorpusStorage) -> MaterializeResult:
    comp, members = mix_composition(storage)
    if comp.num_rows == 0:
        raise ValueError(f"refinecode_mix: neither {FINAL_STEP} nor {cw.WEB_FINAL_STEP} has a published partition "
                         f"under {storage.root}")
    docs = int(sum(comp["documents"].to_pylist()))
    size = int(sum(comp["bytes"].to_pylist()))
    tokens = int(sum(comp["tokens"].to_pylist()))
    with storage.writer(MIX_STEP, None) as writer:
        pq.write_table(comp, writer.path / "composition.parquet")
        pq.write_table(members, writer.path / "members.parquet")
        by_cat = {c: int(sum(t for t, k in zip(comp["tokens"].to_pylist(), comp["category"].to_pylist(), strict=True)
                             if k == c)) for c in (CODE_CATEGORY, WEB_CATEGORY)}
        writer.commit({
            "step": MIX_STEP, "partition": None, "run_id": context.run.run_id,
            "counts": {"input_count": docs, "kept": docs, "dropped": 0, "input_bytes": size, "kept_bytes": size},
            "extra": {"kept_tokens": tokens, "tokens_by_category": by_cat,
                      "composition": comp.to_pylist()},
            "tables": {"refinecode_mix_composition": ["composition.parquet"]},
            "inputs": {f"{r['step']}[{r['source']}]": r["version"] for r in comp.to_pylist()},
        })
    records = [TableRecord({"category": r["category"], "source": r["source"], "documents": r["documents"],
                            "MB": round(r["bytes"] / 1e6, 3), "tokens": r["tokens"], "share": r["token_share"]})
               for r in comp.to_pylist()]
    return MaterializeResult(metadata={
        "composition": MetadataValue.table(records, schema=TableSchema([
            TableColumn("category", "string"), TableColumn("source", "string"), TableColumn("documents", "int"),
            TableColumn("MB", "float"), TableColumn("tokens", "int"), TableColumn("share", "float")])),
        "composition_md": MetadataValue.md(composition_markdown(comp)),
        "documents": MetadataValue.int(docs),
        "tokens": MetadataValue.int(tokens),
        "code_tokens": MetadataValue.int(by_cat[CODE_CATEGORY]),
        "web_tokens": MetadataValue.int(by_cat[WEB_CATEGORY]),
        "members": MetadataValue.int(members.num_rows),
        "data_path": MetadataValue.path(str(writer.path)),
        "inputs": MetadataValue.json(json.loads(json.dumps({r["source"]: r["version"] for r in comp.to_pylist()}))),
    })


def build_code_web_assets(rounds: int = WEB_RECALL_ROUNDS) -> list[AssetsDefinition]:
    """The four per-source steps (reading ``round_<rounds>/recalled_web_pages``) + ``refinecode_mix``."""
    return [*(build_web_step_asset(spec, rounds) for spec in cw.WEB_STEPS), refinecode_mix]


CODE_WEB_ASSETS = build_code_web_assets()

code_web_job = define_asset_job(
    "code_web_job", selection=AssetSelection.assets(*cw.WEB_STEP_NAMES), executor_def=in_process_executor,
    description="Recalled pages of one source -> main text -> exact + fuzzy dedup -> natural-language rules.",
)
refinecode_mix_job = define_asset_job(
    "refinecode_mix_job", selection=AssetSelection.assets(MIX_STEP), executor_def=in_process_executor,
    description="The code + code-web mix and its composition table.",
)
CODE_WEB_JOBS = [code_web_job, refinecode_mix_job]
