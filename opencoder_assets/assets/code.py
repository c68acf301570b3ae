"""The per-language code assets, generated from the step registry (``core/steps.py:CODE_STEPS``).

Why generated: every code step is materialized the same way -- plan units over the upstream's
published shards, run them on the configured engine (resources/engine.py), check the accounting
against the upstream, publish one version with its manifest -- so the asset code is written once.
Each asset's launchpad config is generated from its core parameters dataclass, so defaults live
in one place.
"""

import dataclasses
import logging
import time
import typing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    asset_check,
)
from pydantic import Field, create_model

from opencoder_assets.assets.common import (
    CODE_BACKFILL_POLICY,
    check_partition_keys,
    combine_check_results,
    for_each_partition,
    read_batches,
)
from opencoder_assets.core.kernel import (
    AccountingError,
    StepFailed,
    StepSpec,
    Unit,
    plan_units,
    resolve,
    run_step,
)
from opencoder_assets.core.steps import CODE_STEPS, FINAL_STEP, STEP_NAMES, plan_raw_units, read_token_counts
from opencoder_assets.core.transform import redact_pii
from opencoder_assets.core.validate import check_run_config, check_tables, raise_if_problems
from opencoder_assets.partitions import language_partitions
from resources import CodeSources, CorpusStorage, PipelineSettings
from resources.engine import ExecutionEngine
from resources.storage import PublicationError

#: Parameters that the caller fills in, never the launchpad.
_INTERNAL_FIELDS = {"partition", "token_counts"}


def config_class(spec: StepSpec, *, source_params: bool = False) -> type[Config]:
    """A Dagster ``Config`` whose fields and defaults are the step's parameters dataclass (a
    source step's parameters come from resources unless ``source_params``)."""
    name = "".join(p.title() for p in spec.name.split("_")) + "Config"
    fields: dict[str, Any] = {}
    if spec.params and (source_params or not spec.source_fn):
        cls = resolve(spec.params)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in _INTERNAL_FIELDS:
                continue
            if f.default is not dataclasses.MISSING:
                fields[f.name] = (hints[f.name], f.default)
            else:
                fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
    model = create_model(name, __base__=Config, __doc__=(resolve(spec.params).__doc__ if spec.params else None),
                         **fields)
    return model


def _token_files(storage: CorpusStorage, partition: str) -> tuple[str, ...]:
    """transformed_code's ``transform_edits`` files with per-file token counts (none for a version
    published before they existed)."""
    if not storage.has(TOKENS_FROM, partition):
        return ()
    files = storage.shards(TOKENS_FROM, partition, stem="transform_edits")
    if not files or "tokens" not in pq.read_schema(files[0]).names:
        return ()
    return tuple(str(f) for f in files)


def _reusable_token_counts(storage: CorpusStorage, partition: str, tokenizer: str) -> tuple[str, ...]:
    """transformed_code's per-file token files, if they were counted with ``tokenizer``."""
    files = _token_files(storage, partition)
    if not tokenizer or not files:
        return ()
    m = storage.manifest(TOKENS_FROM, partition)
    counted_with = ((m.get("extra") or {}).get("params") or {}).get("tokenizer")
    return files if counted_with == tokenizer else ()


def _params(spec: StepSpec, config: Config, partition: str, sources: CodeSources, settings: PipelineSettings,
            storage: CorpusStorage | None = None) -> Any:
    if not spec.params:
        return None
    cls = resolve(spec.params)
    if spec.source_fn:
        return cls(read_cap_bytes=sources.read_cap_bytes, column_map=dict(sources.column_map), partition=partition)
    values = config.model_dump()
    names = {f.name for f in dataclasses.fields(cls)}
    if "partition" in names:
        values["partition"] = partition
    params = cls(**values)
    if "token_counts" in names and storage is not None:
        params = dataclasses.replace(params, token_counts=_reusable_token_counts(storage, partition, params.tokenizer))
    return params


def _plan(spec: StepSpec, partition: str, storage: CorpusStorage, sources: CodeSources,
          settings: PipelineSettings, work_dir: Path) -> tuple[list[Unit], list[Path], dict[str, Any]]:
    """Units, input shards and the upstream versions this run reads (recorded in the manifest)."""
    if spec.source_fn:
        index = storage.shards("source_index", None) if storage.has("source_index", None) else []
        if sources.folders and not index:
            raise FileNotFoundError("source_index has not been materialized; materialize it before raw_code")
        inputs = {"source_index": storage.manifest("source_index", None)["version"]} if index else {}
        return plan_raw_units(index, sources.tables, partition, work_dir, settings.unit_rows), [], inputs
    in_step = spec.input_step
    shards = storage.shards(in_step, partition)
    manifest = storage.manifest(in_step, partition)
    checksums = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    inputs = {in_step: manifest["version"]}
    if spec.aligned is None:
        return plan_units(shards, settings.unit_rows, checksums), shards, inputs
    side_step, table, _column = spec.aligned
    side_dir = storage.current_dir(side_step, partition)
    side = storage.manifest(side_step, partition)
    if side.get("inputs", {}).get(in_step) != manifest["version"]:
        raise StepFailed(f"{spec.name}[{partition}]: {side_step} was computed from another version of {in_step} "
                         f"({side.get('inputs', {}).get(in_step)} vs {manifest['version']}); re-materialize {side_step}")
    in_dir = storage.current_dir(in_step, partition)
    units = []
    for u in side.get("units", []):
        side_name = f"{table}-{u['key']}.parquet"
        if side_name not in side["files"]:
            raise PublicationError(f"{side_dir}: {side_name} is missing from its manifest")
        units.append(Unit(u["key"], str(in_dir / u["path"]), tuple(u["row_groups"]), checksums.get(u["path"]),
                          str(side_dir / side_name), side["files"][side_name]["sha256"]))
    inputs[side_step] = side["version"]
    return units, shards, inputs


def _upstream_kept(spec: StepSpec, partition: str, storage: CorpusStorage) -> int | None:
    if spec.upstream is None:
        return None
    return int(storage.manifest(spec.upstream, partition)["counts"]["kept"])


def _mb(n: int) -> float:
    return round(n / 1e6, 3)


def _reasons_table(reasons: dict[str, int], reason_bytes: dict[str, int], total: int) -> MetadataValue:
    records = [TableRecord({"reason": r, "files": int(n), "share": round(n / max(total, 1), 4),
                            "MB": _mb(int(reason_bytes.get(r, 0)))})
               for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
    return MetadataValue.table(records, schema=TableSchema([
        TableColumn("reason", "string"), TableColumn("files", "int"), TableColumn("share", "float"),
        TableColumn("MB", "float")]))


TOKENS_FROM = "transformed_code"  # content is final from here on: tokens are counted once, there


def step_tokens(storage: CorpusStorage, partition: str) -> dict[str, int]:
    """Real kept tokens of every published step from ``transformed_code`` on: the per-file counts
    of ``transform_edits`` summed over each step's kept files (its ``decided kept`` file ids)."""
    tok = read_token_counts(_token_files(storage, partition))
    if tok is None:
        return {}
    out: dict[str, int] = {}
    for step in STEP_NAMES[STEP_NAMES.index(TOKENS_FROM):]:
        if not storage.has(step, partition):
            continue
        # the step's kept files, from its per-file decisions (every step writes them, also a step
        # such as quality_signals that publishes no content shards of its own)
        kept = [t.filter(pc.equal(t["decision"], "kept"))["file_id"]
                for t in (pq.read_table(p, columns=["file_id", "decision"])
                          for p in storage.shards(step, partition, stem="decisions"))]
        ids = pa.chunked_array([c for k in kept for c in k.chunks], pa.string())
        idx = pc.index_in(ids, value_set=tok["file_id"])
        if idx.null_count:
            raise ValueError(f"{storage.current_dir(step, partition)}: {idx.null_count} kept files have no token count "
                             f"in {storage.current_dir(TOKENS_FROM, partition)}")
        out[step] = int(pc.sum(pc.take(tok["tokens"], idx)).as_py() or 0)
    return out


def funnel_rows(storage: CorpusStorage, partition: str) -> list[dict[str, Any]]:
    """Files, bytes and tokens in/kept per step of a partition, from the published versions.
    ``tokens_kept`` is the real count (core/tokens.py) for every step from ``transformed_code`` on
    (earlier steps hold pre-transformation content, which is not tokenized: None)."""
    tokens = step_tokens(storage, partition)
    rows = []
    for step in STEP_NAMES:
        if not storage.has(step, partition):
            continue
        m = storage.manifest(step, partition)
        c = m.get("counts", {})
        rows.append({"step": step, "files_in": int(c.get("input_count", 0)), "files_kept": int(c.get("kept", 0)),
                     "MB_in": _mb(int(c.get("input_bytes", 0))), "MB_kept": _mb(int(c.get("kept_bytes", 0))),
                     "tokens_kept": tokens.get(step)})
    return rows


def funnel_markdown(storage: CorpusStorage, partition: str) -> str:
    lines = ["| step | files in | files kept | MB in | MB kept | tokens kept |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in funnel_rows(storage, partition):
        real = "—" if r["tokens_kept"] is None else str(r["tokens_kept"])
        lines.append(f"| {r['step']} | {r['files_in']} | {r['files_kept']} | {r['MB_in']:.2f} | {r['MB_kept']:.2f} | "
                     f"{real} |")
    return "\n".join(lines)


def plain_metadata(stats: dict[str, Any]) -> dict[str, Any]:
    """Plain stats (ints, floats, strings, Markdown tables, JSON) as Dagster metadata values."""
    out: dict[str, Any] = {}
    for key, value in stats.items():
        if isinstance(value, bool) or value is None:
            out[key] = MetadataValue.text(str(value))
        elif isinstance(value, int):
            out[key] = MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = MetadataValue.float(value)
        elif isinstance(value, str):
            out[key] = MetadataValue.md(value) if value.startswith("|") else MetadataValue.text(value)
        else:
            out[key] = MetadataValue.json(value)
    return out


#: Progress lines of the code steps also go to this Python logger, which the CLI prints concisely
#: (Dagster's own console output is for the UI's run log and ``--verbose``).
PROGRESS = logging.getLogger("opencoder.progress")


def _progress(context: AssetExecutionContext, message: str) -> None:
    context.log.info(message)
    PROGRESS.info(message)


def materialize_step(context: AssetExecutionContext, spec: StepSpec, partition: str, config: Config,
                     sources: CodeSources, storage: CorpusStorage, settings: PipelineSettings,
                     engine: ExecutionEngine) -> MaterializeResult:
    """Plan -> run units on the engine -> check accounting -> publish one version."""
    if spec.source_fn:  # a run launched without source_index (e.g. from the UI) fails on bad config here
        raise_if_problems(check_tables(sources.tables, sources.column_map)
                          + check_run_config(context.run.run_config, partitions=[partition]))
    params = _params(spec, config, partition, sources, settings, storage)
    t0 = time.perf_counter()
    with storage.writer(spec.name, partition) as writer:
        units, shards, inputs = _plan(spec, partition, storage, sources, settings, writer.work_dir)
        with engine.engine(len(units)) as eng:
            run = run_step(spec, partition=partition, params=params, units=units, input_shards=shards,
                           out_dir=writer.path, work_dir=writer.work_dir, engine=eng, batch_rows=settings.batch_rows,
                           log=lambda m: _progress(context, m))
            engine_name, workers = eng.name, eng.workers
        s = run.summary
        expected = _upstream_kept(spec, partition, storage)
        if expected is not None and expected != s.input_rows:
            raise AccountingError(f"{spec.name}[{partition}]: read {s.input_rows} files but {spec.upstream} kept "
                                  f"{expected}")
        counts = {"input_count": s.input_rows, "kept": s.kept_rows, "dropped": s.dropped_rows,
                  "input_bytes": s.input_bytes, "kept_bytes": s.kept_bytes}
        counters = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(s.counters.items())}
        recorded = {k: v for k, v in dataclasses.asdict(params).items() if k != "token_counts"} if params else None
        if params is not None and hasattr(params, "token_counts"):
            recorded["tokens_reused_from"] = TOKENS_FROM if params.token_counts else None
        extra = {"reasons": dict(s.reasons), "params": recorded,  # why: lineage
                 **run.stats, **counters, "engine": engine_name, "workers": workers,
                 "units": len(units), "cpu_seconds": round(s.cpu_seconds, 3),
                 "unit_peak_rss_mb": round(s.peak_rss_kb / 1024, 1)}
        writer.commit({
            "step": spec.name, "partition": partition, "run_id": context.run.run_id, "counts": counts,
            "extra": extra, "tables": run.tables, "inputs": inputs,
            "units": [{"key": u.key, "path": Path(u.path).name, "row_groups": list(u.row_groups)} for u in units],
        })
    wall = time.perf_counter() - t0
    _progress(context, f"{spec.name}[{partition}]: {s.input_rows} in, {s.kept_rows} kept, {s.dropped_rows} dropped, "
                       f"{_mb(s.input_bytes):.1f} MB in {wall:.1f}s ({_mb(s.input_bytes) / max(wall, 1e-3):.1f} MB/s, "
                       f"{len(units)} unit{'s' if len(units) != 1 else ''} on {engine_name} x{workers})")
    meta: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(s.kept_rows),
        "input_files": MetadataValue.int(s.input_rows),
        "kept_files": MetadataValue.int(s.kept_rows),
        "dropped_files": MetadataValue.int(s.dropped_rows),
        "kept_fraction": MetadataValue.float(round(s.kept_rows / max(s.input_rows, 1), 4)),
        "input_MB": MetadataValue.float(_mb(s.input_bytes)),
        "kept_MB": MetadataValue.float(_mb(s.kept_bytes)),
        "drop_reasons": _reasons_table(dict(s.reasons), dict(s.reason_bytes), s.input_rows),
        "sample_kept": MetadataValue.md("\n".join(f"- `{x}`" for x in s.kept_samples) or "_none_"),
        "sample_dropped": MetadataValue.md("\n".join(f"- `{x}`" for x in s.dropped_samples) or "_none_"),
        "engine": MetadataValue.text(f"{engine_name} x{workers}, {len(units)} units"),
        "data_path": MetadataValue.path(str(writer.path)),
        "latest_path": MetadataValue.path(str(writer.base / "latest")),
        **plain_metadata({k: v for k, v in {**run.stats, **counters}.items()}),
    }
    if spec.out_schema is not None and spec.writes_parts:
        meta["dagster/column_schema"] = MetadataValue.table_schema(TableSchema(
            [TableColumn(f.name, str(f.type)) for f in spec.out_schema]))
    if spec.name == FINAL_STEP:
        meta["funnel"] = MetadataValue.md(funnel_markdown(storage, partition))
    return MaterializeResult(metadata=meta)


def build_step_asset(spec: StepSpec) -> AssetsDefinition:
    config_cls = config_class(spec)

    @asset(
        name=spec.name,
        partitions_def=language_partitions,
        backfill_policy=CODE_BACKFILL_POLICY,
        group_name="code",
        deps=[spec.upstream or "source_index"],
        description=spec.doc,
        kinds=set(spec.kinds),
    )
    def _step(context: AssetExecutionContext, config: config_cls, sources: CodeSources, storage: CorpusStorage,  # type: ignore[valid-type]
              settings: PipelineSettings, engine: ExecutionEngine) -> MaterializeResult:
        return for_each_partition(context, lambda p: materialize_step(context, spec, p, config, sources, storage,
                                                                      settings, engine))

    return _step


STEP_ASSETS: list[AssetsDefinition] = [build_step_asset(spec) for spec in CODE_STEPS]
_FINAL = next(a for a in STEP_ASSETS if a.key.to_user_string() == FINAL_STEP)


# ------------------------------------------------------------------------- final-corpus checks
@asset_check(asset=_FINAL, blocking=True, partitions_def=language_partitions, description="No file over the 8 MiB cap.")
def refinecode_size_cap(context, storage: CorpusStorage, settings: PipelineSettings) -> AssetCheckResult:
    import pyarrow.parquet as pq

    def one(partition: str | None) -> AssetCheckResult:
        over = 0
        for path in storage.shards(FINAL_STEP, partition):
            sizes = pq.read_table(path, columns=["size_bytes"])["size_bytes"].to_pylist()
            over += sum(1 for s in sizes if (s or 0) > settings.max_file_bytes)
        return AssetCheckResult(passed=over == 0, metadata={"files_over_cap": over})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})


@asset_check(asset=_FINAL, blocking=True, partitions_def=language_partitions,
             description="No email left that the PII redactor would still replace.")
def refinecode_no_raw_email(context, storage: CorpusStorage, settings: PipelineSettings) -> AssetCheckResult:
    import re

    email = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")

    def one(partition: str | None) -> AssetCheckResult:
        leaked = []
        for batch in read_batches(storage.shards(FINAL_STEP, partition), settings.batch_rows):
            for fid, text in zip(batch["file_id"].to_pylist(), batch["content"].to_pylist(), strict=True):
                if "@" in text and email.search(text) and redact_pii(text)[1].get("EMAIL", 0):
                    leaked.append(fid)
        return AssetCheckResult(passed=not leaked, severity=AssetCheckSeverity.ERROR,
                                metadata={"files_with_email": len(leaked), "examples": leaked[:10]})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})


@asset_check(asset=_FINAL, blocking=True, partitions_def=language_partitions,
             description="Funnel consistency: every step's input equals the previous step's kept count.")
def refinecode_funnel_consistent(context, storage: CorpusStorage) -> AssetCheckResult:
    def one(partition: str | None) -> AssetCheckResult:
        rows = funnel_rows(storage, partition)
        problems = []
        for prev, row in zip(rows, rows[1:], strict=False):
            if prev["files_kept"] != row["files_in"]:
                problems.append(f"{row['step']}: input {row['files_in']} != {prev['step']} kept {prev['files_kept']}")
        return AssetCheckResult(passed=not problems, metadata={
            "problems": problems, "funnel": MetadataValue.md(funnel_markdown(storage, partition))})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})


FINAL_CHECKS = [refinecode_size_cap, refinecode_no_raw_email, refinecode_funnel_consistent]
