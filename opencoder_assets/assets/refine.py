"""Steps 3b-6 of the recipe: fuzzy dedup -> transformation -> quality signals -> filter -> sampling.

Order (recipe §3, decided where the paper is silent, §6.14): dedup first (cheapest removal of the
most data), then transformation, and the quality signals are computed on the *transformed* text
(the text that will be trained on), then per-language sampling of what survived.
"""

import contextlib
import hashlib
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from opencoder_assets.assets.common import (
    CODE_BACKFILL_POLICY,
    StepTally,
    all_kept_decisions,
    check_partition_keys,
    combine_check_results,
    for_each_partition,
    publish_step,
    read_batches,
    run_streaming_step,
    tally_decisions,
)
from opencoder_assets.assets.ingestion import exact_deduped_code
from opencoder_assets.core.duckdb_sql import sql_path_list
from opencoder_assets.core.filtering import FilterThresholds, apply_filters, compute_signals_with_errors
from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, run_fuzzy_dedup, s_curve_table
from opencoder_assets.core.schema import DECISION_SCHEMA
from opencoder_assets.core.transform import (
    redact_pii,
    transform_document,
)
from opencoder_assets.partitions import language_partitions
from resources import CorpusStorage, MetricsStore, PipelineSettings

#: Rough code-BPE ratio used for the token columns of funnel tables (documented estimate).
BYTES_PER_TOKEN = 3.6


def _decisions_table(cols: dict[str, list]) -> pa.Table:
    return pa.table(cols, schema=DECISION_SCHEMA)


# ----------------------------------------------------------------------------- fuzzy dedup
class FuzzyDedupConfig(Config):
    """Per-run knobs (launchpad): defaults are the paper's 5-gram / 2048 perms / 16 x 128."""

    ngram_size: int = 5
    num_perm: int = 2048
    bands: int = 16
    rows: int = 128
    seed: int = 42
    token_unit: str = "word"
    verify_jaccard: float | None = None
    workers: int = 1


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[exact_deduped_code],
    description="5-gram MinHash + LSH (default 16 bands x 128 rows) file-level fuzzy dedup; one "
    "survivor per cluster (most stars, latest commit, smallest file_id). Clusters go to the "
    "`dedup_clusters` table of the metrics store.",
)
def fuzzy_deduped_code(
    context: AssetExecutionContext,
    config: FuzzyDedupConfig,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        params = FuzzyDedupParams(
            ngram_size=config.ngram_size, num_perm=config.num_perm, bands=config.bands, rows=config.rows,
            seed=config.seed, token_unit=config.token_unit, verify_jaccard=config.verify_jaccard,
            workers=config.workers, memory_limit=settings.duckdb_memory_limit,
        )
        shards = storage.shards("exact_deduped_code", partition)
        writer = storage.writer("fuzzy_deduped_code", partition)
        try:
            result = run_fuzzy_dedup([str(s) for s in shards], writer.path / "work", params)
            decisions_path = writer.path / "decisions.parquet"
            clusters = str(result.clusters_path)
            con = duckdb.connect()
            try:
                con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
                src = f"read_parquet({sql_path_list(shards)})" if shards else None
                if src is None:
                    pq.write_table(DECISION_SCHEMA.empty_table(), decisions_path)
                else:
                    con.execute(
                        f"""COPY (
                            SELECT s.file_id, s.repo, s.path, s.language,
                                   CASE WHEN c.file_id IS NULL OR c.is_survivor THEN 'kept' ELSE 'dropped' END AS decision,
                                   CASE WHEN c.file_id IS NULL OR c.is_survivor THEN NULL ELSE 'fuzzy_duplicate' END AS reason,
                                   CASE WHEN c.file_id IS NULL THEN NULL
                                        WHEN c.is_survivor THEN 'cluster_survivor:' || c.cluster_id
                                        ELSE 'duplicate_of:' || c.survivor_id || ' est_j=' || round(c.est_similarity, 3)
                                   END AS detail,
                                   s.size_bytes
                            FROM {src} s LEFT JOIN read_parquet('{clusters}') c USING (file_id)
                            ORDER BY s.file_id) TO '{decisions_path}' (FORMAT parquet)"""
                    )
                    removed = str(result.removed_ids)
                    for i, shard in enumerate(shards):
                        con.execute(
                            f"""COPY (SELECT s.* FROM read_parquet('{shard}') s
                                      ANTI JOIN read_parquet('{removed}') r USING (file_id) ORDER BY s.file_id)
                                TO '{writer.shard_path(i)}' (FORMAT parquet, ROW_GROUP_SIZE 1000)"""
                        )
            finally:
                con.close()
            tally = tally_decisions(decisions_path)
            stats = result.stats
            curve = "\n".join(["| Jaccard | P(candidate) |", "|---:|---:|"] +
                              [f"| {j:.2f} | {p:.3f} |" for j, p in s_curve_table(params.bands, params.rows)])
            hist = stats["cluster_size_histogram"]
            largest = stats["largest_clusters"][:10]
            return publish_step(
                context, step="fuzzy_deduped_code", partition=partition, writer=writer, metrics=metrics,
                tally=tally, decisions_path=decisions_path,
                extra_tables={"dedup_clusters": result.clusters_path},
                run_extra={k: v for k, v in stats.items() if k not in ("largest_clusters",)},
                extra_metadata={
                    "lsh_threshold": MetadataValue.float(float(stats["lsh_threshold"])),
                    "s_curve": MetadataValue.md(curve),
                    "params": MetadataValue.json(stats["params"]),
                    "too_short_not_hashed": MetadataValue.int(int(stats["too_short"])),
                    "candidate_edges": MetadataValue.int(int(stats["candidate_edges"])),
                    "clusters": MetadataValue.int(int(stats["clusters"])),
                    "cluster_size_histogram": MetadataValue.json(hist),
                    "largest_clusters": MetadataValue.json(largest),
                    "signature_cpu_seconds": MetadataValue.float(float(stats["signature_cpu_seconds"])),
                },
            )
        except BaseException:
            writer.abort()
            raise

    return for_each_partition(context, one)


# --------------------------------------------------------------------------- transformation
TRANSFORM_EDIT_SCHEMA = pa.schema([
    ("file_id", pa.string()), ("copyright_removed_chars", pa.int64()), ("copyright_only_file", pa.bool_()),
    ("email", pa.int64()), ("ip_address", pa.int64()), ("password", pa.int64()), ("key", pa.int64()),
])


class TransformConfig(Config):
    """Switch either transformation off (e.g. to reproduce the reference filter's decisions)."""

    remove_copyright: bool = True
    redact_pii: bool = True


def _transform_batch(batch: pa.Table, config: TransformConfig) -> tuple[pa.Table, pa.Table, pa.Table]:
    d = batch.to_pydict()
    new_content: list[str] = []
    keep_mask: list[bool] = []
    dec = {name: [] for name in DECISION_SCHEMA.names}
    edits = {name: [] for name in TRANSFORM_EDIT_SCHEMA.names}
    for i in range(batch.num_rows):
        res = transform_document(d["content"][i], d["language"][i],
                                 remove_copyright=config.remove_copyright, redact=config.redact_pii)
        empty = not res.text.strip()
        keep_mask.append(not empty)
        if not empty:
            new_content.append(res.text)
        details = []
        if res.copyright_removed_chars:
            details.append(f"copyright_removed_chars={res.copyright_removed_chars}")
        if res.copyright_only:
            details.append("copyright_only_file")
        details.extend(f"{k.lower()}={v}" for k, v in sorted(res.pii_counts.items()) if v)
        for key in ("file_id", "repo", "path", "language", "size_bytes"):
            dec[key].append(d[key][i])
        dec["decision"].append("dropped" if empty else "kept")
        dec["reason"].append("empty_after_transform" if empty else None)
        dec["detail"].append(", ".join(details) or None)
        edits["file_id"].append(d["file_id"][i])
        edits["copyright_removed_chars"].append(res.copyright_removed_chars)
        edits["copyright_only_file"].append(res.copyright_only)
        for kind in ("EMAIL", "IP_ADDRESS", "PASSWORD", "KEY"):
            edits[kind.lower()].append(int(res.pii_counts.get(kind, 0)))
    kept = batch.filter(pa.array(keep_mask, pa.bool_()))
    kept = kept.set_column(kept.schema.get_field_index("content"), "content", pa.array(new_content, pa.large_string()))
    return kept, _decisions_table(dec), pa.table(edits, schema=TRANSFORM_EDIT_SCHEMA)


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[fuzzy_deduped_code],
    description="Removes the leading copyright/license comment block and replaces PII (emails, "
    "IPs, passwords, keys) by placeholders; per-file edit counts go to `transform_edits`.",
)
def transformed_code(
    context: AssetExecutionContext,
    config: TransformConfig,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        edits_totals: Counter = Counter()
        last_edits: dict[int, pa.Table] = {}

        def fn(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
            kept, dec, edits = _transform_batch(batch, config)
            last_edits[id(batch)] = edits
            for name in TRANSFORM_EDIT_SCHEMA.names[1:]:
                col = edits[name].to_pylist()
                edits_totals[name] += sum(int(x) for x in col)
            return kept, dec

        def side(batch: pa.Table) -> dict[str, pa.Table]:
            return {"transform_edits": last_edits.pop(id(batch))}

        return run_streaming_step(
            context, step="transformed_code", partition=partition,
            batches=read_batches(storage.shards("fuzzy_deduped_code", partition), settings.batch_rows),
            fn=fn, storage=storage, metrics=metrics,
            side_outputs={"transform_edits": TRANSFORM_EDIT_SCHEMA}, side_fn=side,
            extra_metadata=lambda t: {"edits": MetadataValue.json(dict(edits_totals))},
        )

    return for_each_partition(context, one)


# ----------------------------------------------------------------------------- signals
SIGNAL_SCHEMA = pa.schema([
    ("file_id", pa.string()), ("repo", pa.string()), ("path", pa.string()), ("language", pa.string()),
    ("doc_type", pa.string()), ("signals", pa.map_(pa.string(), pa.float64())),
    ("signal_errors", pa.map_(pa.string(), pa.string())),
])


def _num(v) -> float | None:
    if v is None:
        return None
    return float(v)


def signals_for_batch(batch: pa.Table, lang: str = "en") -> pa.Table:
    d = batch.to_pydict()
    out = {name: [] for name in SIGNAL_SCHEMA.names}
    for i in range(batch.num_rows):
        path = d["path"][i]
        sig, errors = compute_signals_with_errors(
            d["content"][i], program_lang=d["language"][i], doc_type=d["doc_type"][i], ext=d["ext"][i] or "",
            filename=path.rsplit("/", 1)[-1], size_bytes=int(d["size_bytes"][i] or 0), lang=lang,
        )
        for key in ("file_id", "repo", "path", "language", "doc_type"):
            out[key].append(d[key][i])
        out["signals"].append([(k, _num(v)) for k, v in sig.items()])
        out["signal_errors"].append(list(errors.items()))
    return pa.table(out, schema=SIGNAL_SCHEMA)


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[transformed_code],
    description="Every quality signal of the reference framework per file (natural-language, "
    "general code, language-specific), stored as a map column; thresholds are applied by "
    "filtered_code, so re-tuning never recomputes signals. Queryable as `quality_signals`.",
)
def quality_signals(
    context: AssetExecutionContext,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        writer = storage.writer("quality_signals", partition)
        try:
            tally = StepTally()
            decisions_path = writer.path / "decisions.parquet"
            failures: Counter = Counter()
            shard_index = 0
            pool = ProcessPoolExecutor(settings.cpu_workers) if settings.cpu_workers > 1 else None
            compute = pool.map if pool else map
            with pool or contextlib.nullcontext(), pq.ParquetWriter(decisions_path, DECISION_SCHEMA) as dwriter:
                for shard in storage.shards("transformed_code", partition):
                    with pq.ParquetWriter(writer.shard_path(shard_index, "signals"), SIGNAL_SCHEMA) as sw:
                        # Small batches spread the work over workers; map() keeps the input order.
                        batches = list(read_batches([shard], max(50, settings.batch_rows // 20)))
                        for batch, table in zip(batches, compute(signals_for_batch, batches), strict=True):
                            sw.write_table(table)
                            for errs in table["signal_errors"].to_pylist():
                                failures.update(k for k, _ in errs)
                            dec = all_kept_decisions(batch)
                            tally.add(batch, dec)
                            dwriter.write_table(dec)
                    shard_index += 1
            signal_files = sorted(writer.path.glob("signals-*.parquet"))
            merged = writer.path / "quality_signals_table.parquet"
            con = duckdb.connect()
            try:
                if signal_files:
                    con.execute(f"COPY (SELECT * FROM read_parquet({sql_path_list(signal_files)})) TO '{merged}' (FORMAT parquet)")
                else:
                    pq.write_table(SIGNAL_SCHEMA.empty_table(), merged)
            finally:
                con.close()
            return publish_step(
                context, step="quality_signals", partition=partition, writer=writer, metrics=metrics, tally=tally,
                decisions_path=decisions_path, extra_tables={"quality_signals": merged},
                extra_metadata={"signal_failures": MetadataValue.json(dict(failures))},
            )
        except BaseException:
            writer.abort()
            raise

    return for_each_partition(context, one)


# ----------------------------------------------------------------------------- filtering
class FilterConfig(Config):
    """``thresholds_path``: an edited copy of opencoder_assets/config/filter_thresholds.toml."""

    thresholds_path: str | None = None
    random_mode: Literal["seeded", "strict", "lenient"] = "seeded"
    seed: int = 0
    lang: str = "en"


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[quality_signals],
    description="Applies the per-language threshold tables (declarative TOML) to the stored "
    "signals; a file is dropped when any enabled rule fires, and every fired rule is recorded.",
)
def filtered_code(
    context: AssetExecutionContext,
    config: FilterConfig,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        thresholds = FilterThresholds.load(config.thresholds_path) if config.thresholds_path else None
        rule_hits: Counter = Counter()
        signal_shards = storage.shards("quality_signals", partition, stem="signals")
        code_shards = storage.shards("transformed_code", partition)
        if len(signal_shards) != len(code_shards):
            raise RuntimeError(f"quality_signals[{partition}] is stale ({len(signal_shards)} signal shards for "
                               f"{len(code_shards)} code shards); re-materialize quality_signals")

        def batches():
            for code_shard, sig_shard in zip(code_shards, signal_shards, strict=True):
                sig_iter = pq.ParquetFile(sig_shard).iter_batches(batch_size=settings.batch_rows)
                for code in read_batches([code_shard], settings.batch_rows):
                    sig = next(sig_iter)
                    if sig.num_rows != code.num_rows or sig.column("file_id").to_pylist() != code["file_id"].to_pylist():
                        raise RuntimeError(f"{sig_shard} does not line up with {code_shard}; re-materialize quality_signals")
                    yield code.append_column("_signals", sig.column("signals"))

        def fn(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
            d = batch.to_pydict()
            keep_mask, dec = [], {name: [] for name in DECISION_SCHEMA.names}
            for i in range(batch.num_rows):
                signals = dict(d["_signals"][i])
                decision = apply_filters(
                    signals, program_lang=d["language"][i], doc_type=d["doc_type"][i], lang=config.lang,
                    file_id=d["file_id"][i], seed=config.seed, random_mode=config.random_mode, thresholds=thresholds,
                )
                keep_mask.append(decision.keep)
                rule_hits.update(decision.hits)
                for key in ("file_id", "repo", "path", "language", "size_bytes"):
                    dec[key].append(d[key][i])
                dec["decision"].append("kept" if decision.keep else "dropped")
                dec["reason"].append(None if decision.keep else f"filter:{decision.hits[0]}")
                dec["detail"].append(f"config={decision.config}" + ("" if decision.keep else " hits=" + ",".join(decision.hits)))
            kept = batch.filter(pa.array(keep_mask, pa.bool_())).drop_columns(["_signals"])
            return kept, _decisions_table(dec)

        def meta(t: StepTally) -> dict:
            table = "\n".join(["| rule | files |", "|---|---:|"] + [f"| {r} | {n} |" for r, n in rule_hits.most_common(30)])
            return {"rules_fired": MetadataValue.md(table), "random_mode": MetadataValue.text(config.random_mode)}

        return run_streaming_step(
            context, step="filtered_code", partition=partition, batches=batches(), fn=fn,
            storage=storage, metrics=metrics, extra_metadata=meta,
        )

    return for_each_partition(context, one)


# ----------------------------------------------------------------------------- sampling
class SamplingConfig(Config):
    """Keep ratio per language (default: the paper's Java 449->200 GB and HTML 474->64 GB)."""

    ratios: dict[str, float] = {"java": 200 / 449, "html": 64 / 474}
    seed: int = 42


def sample_keep(seed: int, file_id: str, ratio: float) -> bool:
    """Deterministic Bernoulli(ratio) per file: same decision on every run and worker count."""
    if ratio >= 1.0:
        return True
    h = hashlib.blake2b(f"{seed}\x1f{file_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64 < ratio


FUNNEL_STEPS = ["raw_code", "preprocessed_code", "exact_deduped_code", "fuzzy_deduped_code",
                "transformed_code", "filtered_code", "refinecode_code"]


def funnel_markdown(metrics: MetricsStore, partition: str) -> str:
    rows = metrics.query(
        "SELECT step, input_count, kept, input_bytes, kept_bytes FROM latest_step_runs WHERE partition = ?",
        [partition],
    )
    by_step = {r[0]: r[1:] for r in rows}
    lines = ["| step | files in | files kept | MB in | MB kept | est. tokens kept |", "|---|---:|---:|---:|---:|---:|"]
    for step in FUNNEL_STEPS:
        if step in by_step:
            n_in, kept, b_in, b_kept = by_step[step]
            lines.append(f"| {step} | {n_in} | {kept} | {b_in / 1e6:.2f} | {b_kept / 1e6:.2f} | "
                         f"{int(b_kept / BYTES_PER_TOKEN)} |")
    return "\n".join(lines)


@asset(
    partitions_def=language_partitions,
    backfill_policy=CODE_BACKFILL_POLICY,
    group_name="code",
    deps=[filtered_code],
    description="The RefineCode pretraining corpus: per-language deterministic downsampling "
    "(default Java 200/449, HTML 64/474) of the filtered code, with the full funnel in metadata.",
)
def refinecode_code(
    context: AssetExecutionContext,
    config: SamplingConfig,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    def one(partition: str) -> MaterializeResult:
        ratio = float(config.ratios.get(partition, 1.0))
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sampling ratio for {partition} must be in [0, 1], got {ratio}")

        def fn(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
            ids = batch["file_id"].to_pylist()
            mask = [sample_keep(config.seed, fid, ratio) for fid in ids]
            dec = _decisions_table({
                "file_id": ids, "repo": batch["repo"].to_pylist(), "path": batch["path"].to_pylist(),
                "language": batch["language"].to_pylist(),
                "decision": ["kept" if m else "dropped" for m in mask],
                "reason": [None if m else "downsampled" for m in mask],
                "detail": [None if m else f"ratio={ratio:.4f}" for m in mask],
                "size_bytes": batch["size_bytes"].to_pylist(),
            })
            return batch.filter(pa.array(mask, pa.bool_())), dec

        result = run_streaming_step(
            context, step="refinecode_code", partition=partition,
            batches=read_batches(storage.shards("filtered_code", partition), settings.batch_rows),
            fn=fn, storage=storage, metrics=metrics,
            extra_metadata=lambda t: {"sampling_ratio": MetadataValue.float(ratio)},
        )
        md = dict(result.metadata or {})
        md["funnel"] = MetadataValue.md(funnel_markdown(metrics, partition))
        return MaterializeResult(metadata=md)

    return for_each_partition(context, one)


# ----------------------------------------------------------------------------- checks
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@asset_check(asset=refinecode_code, blocking=True, partitions_def=language_partitions, description="No file over the 8 MiB cap.")
def refinecode_size_cap(context, storage: CorpusStorage, settings: PipelineSettings) -> AssetCheckResult:
    def one(partition: str | None) -> AssetCheckResult:
        over = 0
        for path in storage.shards("refinecode_code", partition):
            sizes = pq.read_table(path, columns=["size_bytes"])["size_bytes"].to_pylist()
            over += sum(1 for s in sizes if (s or 0) > settings.max_file_bytes)
        return AssetCheckResult(passed=over == 0, metadata={"files_over_cap": over})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})


@asset_check(asset=refinecode_code, blocking=True, partitions_def=language_partitions,
             description="No email left that the PII redactor would still replace.")
def refinecode_no_raw_email(context, storage: CorpusStorage, settings: PipelineSettings) -> AssetCheckResult:
    def one(partition: str | None) -> AssetCheckResult:
        leaked = []
        for batch in read_batches(storage.shards("refinecode_code", partition), settings.batch_rows):
            for fid, text in zip(batch["file_id"].to_pylist(), batch["content"].to_pylist(), strict=True):
                if "@" in text and _EMAIL_RE.search(text) and redact_pii(text)[1].get("EMAIL", 0):
                    leaked.append(fid)
        return AssetCheckResult(passed=not leaked, severity=AssetCheckSeverity.ERROR,
                                metadata={"files_with_email": len(leaked), "examples": leaked[:10]})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})


@asset_check(asset=refinecode_code, blocking=True, partitions_def=language_partitions,
             description="Funnel consistency: every step's input equals the previous step's kept count.")
def refinecode_funnel_consistent(context, metrics: MetricsStore) -> AssetCheckResult:
    def one(partition: str | None) -> AssetCheckResult:
        rows = metrics.query("SELECT step, input_count, kept, dropped FROM latest_step_runs WHERE partition = ?",
                             [partition])
        by_step = {r[0]: r[1:] for r in rows}
        problems = []
        prev = None
        for step in FUNNEL_STEPS:
            if step not in by_step:
                continue
            n_in, kept, dropped = by_step[step]
            if kept + dropped != n_in:
                problems.append(f"{step}: kept {kept} + dropped {dropped} != input {n_in}")
            if prev is not None and by_step[prev][1] != n_in:
                problems.append(f"{step}: input {n_in} != {prev} kept {by_step[prev][1]}")
            prev = step
        return AssetCheckResult(passed=not problems, metadata={
            "problems": problems, "funnel": MetadataValue.md(funnel_markdown(metrics, partition))})

    return combine_check_results({p: one(p) for p in check_partition_keys(context)})
