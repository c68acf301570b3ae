"""The code steps of the recipe, declared once: ``CODE_STEPS`` is the single ordered registry.

Assets, their checks, ``refinecode_job``, the Dask job, the staleness schedule, lineage's step
order and the funnel all derive from this list (``opencoder_assets/assets/code.py``). Adding a
step = its core function + one entry here.

Order (recipe §3, decided where the paper is silent, docs/filtering.md): ingest -> preprocess ->
exact dedup -> fuzzy dedup -> transformation -> quality signals (on the *transformed* text, the
text that will be trained on) -> filter -> per-language sampling.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencoder_assets.core.exact_dedup import KEEP_ORDER
from opencoder_assets.core.filtering import FilterThresholds, apply_filters, compute_signals_with_errors
from opencoder_assets.core.fuzzy_dedup import (
    _CLUSTER_SCHEMA,
    FuzzyDedupParams,
    SignatureStats,
    _plan_units,
    _process_unit,
    find_clusters,
    s_curve_table,
)
from opencoder_assets.core.ingest import TableMapping, iter_indexed_file_batches, iter_table_batches
from opencoder_assets.core.kernel import (
    VERDICT_SCHEMA,
    Engine,
    GlobalResult,
    StepOutput,
    StepSpec,
    Unit,
    decisions_for,
    file_filter,
)
from opencoder_assets.core.langid import AUTO, TEXT_DOC_TYPES, document_language
from opencoder_assets.core.preprocess import MAX_FILE_BYTES, preprocess_batch
from opencoder_assets.core.schema import CODE_SCHEMA, DECISION_SCHEMA, RAW_SCHEMA
from opencoder_assets.core.tokens import count_tokens, resolve_tokenizer_path, tokenizer_info
from opencoder_assets.core.transform import transform_document

_M = "opencoder_assets.core.steps"


def _q(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _path_list(paths: Sequence[Path | str]) -> str:
    return "[" + ", ".join(_q(str(p)) for p in paths) + "]"


def _resolve_tokenizer(params: Any) -> None:
    """Fill an empty ``tokenizer`` parameter with the run's tokenizer file (core/tokens.py order),
    in the driver, so every worker counts with the same file."""
    if not params.tokenizer:
        object.__setattr__(params, "tokenizer", resolve_tokenizer_path(None))


# ------------------------------------------------------------------------------------ raw_code
@dataclass(frozen=True)
class IngestParams:
    """Set from the ``sources``/``settings`` resources, not the launchpad."""

    read_cap_bytes: int = 8 * 1024 * 1024
    column_map: dict[str, str] = field(default_factory=dict)
    partition: str = ""


def raw_source(unit: Unit, params: IngestParams, batch_rows: int) -> Iterator[pa.Table]:
    """A raw_code unit: a chunk of the partition's source-index rows, or one Stack-v2-style table."""
    kind, path = unit.payload
    if kind == "index":
        yield from iter_indexed_file_batches(iter([pq.read_table(path)]), read_cap=params.read_cap_bytes,
                                             batch_rows=batch_rows)
    else:
        yield from iter_table_batches([path], partition=params.partition,
                                      mapping=TableMapping.from_mapping(params.column_map),
                                      read_cap=params.read_cap_bytes, batch_rows=batch_rows)


def raw_all_kept(batch: pa.Table, params: IngestParams) -> StepOutput:
    """Ingestion drops nothing: unreadable files carry their ``read_error`` as the detail, and
    preprocessing accounts for them."""
    n = batch.num_rows
    return StepOutput(batch, decisions_for(batch, [True] * n, [None] * n, batch["read_error"].to_pylist()))


def plan_raw_units(index_shards: Sequence[Path], tables: Sequence[str], partition: str, work_dir: Path,
                   unit_rows: int) -> list[Unit]:
    """Chunks of ``unit_rows`` index rows of the partition (written to ``work_dir``), then one unit
    per table file; keys are positional, so the plan is the same on every engine."""
    import pyarrow.dataset as pads

    units: list[Unit] = []
    if index_shards:
        # streamed in index order, one unit's rows held at a time (not the partition's whole index)
        dataset = pads.dataset([str(p) for p in index_shards], format="parquet")
        batches = dataset.to_batches(filter=pads.field("partition") == partition, use_threads=False)
        work_dir.mkdir(parents=True, exist_ok=True)
        pending: list[pa.RecordBatch] = []
        held = 0

        def flush(rows: pa.Table) -> None:
            path = work_dir / f"index-{len(units):05d}.parquet"
            pq.write_table(rows, path)
            units.append(Unit(f"{len(units):05d}-00000", str(path), (), payload=("index", str(path))))

        for batch in batches:
            if batch.num_rows:
                pending.append(batch)
                held += batch.num_rows
            while held >= unit_rows:
                table = pa.Table.from_batches(pending)
                flush(table.slice(0, unit_rows))
                rest = table.slice(unit_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            flush(pa.Table.from_batches(pending))
    for j, table in enumerate(sorted(str(t) for t in tables)):
        units.append(Unit(f"t{j:04d}-00000", table, (), payload=("table", table)))
    return units


# --------------------------------------------------------------------------- preprocessed_code
@dataclass(frozen=True)
class PreprocessParams:
    max_file_bytes: int = MAX_FILE_BYTES


def preprocess(batch: pa.Table, params: PreprocessParams) -> StepOutput:
    counters: dict[str, float] = {}  # notebook totals (docs/notebooks.md)
    kept, decisions = preprocess_batch(batch, params.max_file_bytes, counters)
    return StepOutput(kept, decisions, counters=counters)


# --------------------------------------------------------------------------- exact_deduped_code
@dataclass(frozen=True)
class ExactDedupParams:
    """``memory_limit``: DuckDB's limit for the ranking (it spills to disk beyond it)."""

    memory_limit: str = "2GB"


def exact_dedup_global(shards: list[Path], work_dir: Path, params: ExactDedupParams, engine: Engine) -> GlobalResult:
    """Rank every SHA-256 group (recipe §3 keep policy, ``KEEP_ORDER``) out of core in DuckDB;
    only four small columns are read. Verdicts: one ``exact_duplicate`` row per removed copy."""
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "exact_verdicts.parquet"
    if not shards:
        pq.write_table(VERDICT_SCHEMA.empty_table(), out)
        return GlobalResult(out, stats={"duplicate_groups": 0, "largest_group": 0, "keep_order": KEEP_ORDER})
    client = getattr(engine, "client", None)
    if client is not None:
        return _exact_dedup_dask(shards, out, client, engine.workers)
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = {_q(params.memory_limit)}")
        con.execute(f"SET temp_directory = {_q(str(work_dir / 'duckdb_tmp'))}")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            f"""CREATE TABLE ranked AS
            SELECT file_id, first_value(file_id) OVER w AS survivor, count(*) OVER (PARTITION BY sha256) AS n
            FROM (SELECT file_id, sha256, stars, commit_time FROM read_parquet({_path_list(shards)}))
            WINDOW w AS (PARTITION BY sha256 ORDER BY {KEEP_ORDER}
                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)""")
        n_ids, n_rows = con.execute("SELECT count(DISTINCT file_id), count(*) FROM ranked").fetchone()
        if n_ids != n_rows:
            raise ValueError(f"file_id is not unique across {len(shards)} shards ({n_rows - n_ids} repeats)")
        con.execute(
            f"""COPY (SELECT file_id, false AS keep, 'exact_duplicate' AS reason, 'duplicate_of:' || survivor AS detail
                      FROM ranked WHERE file_id <> survivor ORDER BY file_id) TO {_q(str(out))} (FORMAT parquet)""")
        groups, largest = con.execute(
            "SELECT count(DISTINCT survivor) FILTER (n > 1), coalesce(max(n), 0) FROM ranked").fetchone()
    finally:
        con.close()
    return GlobalResult(out, stats={"duplicate_groups": int(groups), "largest_group": int(largest),
                                    "keep_order": KEEP_ORDER, "ranking_engine": "duckdb"})


def _rank_sha_groups(df):  # pandas partition holding whole sha256 groups
    import pandas as pd

    df = df.sort_values(["sha256", "stars", "commit_time", "file_id"], ascending=[True, False, False, True],
                        na_position="last", kind="mergesort")
    g = df.groupby("sha256", sort=False)["file_id"]
    survivor = g.transform("first")
    n = g.transform("size")
    out = pd.DataFrame({"file_id": df["file_id"].astype("str"), "survivor": survivor.astype("str"),
                        "n": n.astype("int64")})
    return out


def _exact_dedup_dask(shards: list[Path], out: Path, client: Any, workers: int) -> GlobalResult:
    """The same ranking as a shuffle on the Dask cluster: rows hash-partitioned by sha256, each
    partition ranks its whole groups (stars desc, commit time desc, nulls last, file id asc)."""
    import dask.dataframe as dd

    cols = ["file_id", "sha256", "stars", "commit_time"]
    ddf = dd.read_parquet([str(s) for s in shards], columns=cols)
    # partitions sized by rows (~1 M each, a few tens of MB of these four columns), at least two per
    # worker: a shuffle's cost grows with its partition count, not only with the rows it moves
    rows = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
    nparts = max(2 * workers, -(-rows // 1_000_000))
    ranked = ddf.shuffle("sha256", npartitions=nparts).map_partitions(
        _rank_sha_groups, meta={"file_id": "str", "survivor": "str", "n": "int64"})
    ranked = client.persist(ranked)
    # one round trip for every figure (each .compute() is a scheduler round trip of its own)
    total, distinct, dups, groups_df, largest = client.compute(
        [ranked["file_id"].count(), ranked["file_id"].nunique(), ranked[ranked["file_id"] != ranked["survivor"]],
         ranked[ranked["n"] > 1]["survivor"].nunique(), ranked["n"].max()], sync=True)
    if int(total) != int(distinct):
        raise ValueError(f"file_id is not unique across {len(shards)} shards ({int(total) - int(distinct)} repeats)")
    largest = int(largest) if int(total) else 0
    dups = dups.sort_values("file_id", kind="mergesort")
    table = pa.table({"file_id": pa.array(dups["file_id"].tolist(), pa.string()),
                      "keep": pa.array([False] * len(dups), pa.bool_()),
                      "reason": pa.array(["exact_duplicate"] * len(dups), pa.string()),
                      "detail": pa.array([f"duplicate_of:{s}" for s in dups["survivor"].tolist()], pa.string())},
                     schema=VERDICT_SCHEMA)
    pq.write_table(table, out)
    return GlobalResult(out, stats={"duplicate_groups": int(groups_df), "largest_group": largest,
                                    "keep_order": KEEP_ORDER, "ranking_engine": "dask"})


# --------------------------------------------------------------------------- fuzzy_deduped_code
def derive_bands(params: FuzzyDedupParams) -> FuzzyDedupParams:
    """With ``target_jaccard`` set, bands x rows come from datasketch's ``_optimal_param`` (the
    split of ``num_perm`` that minimises equally weighted false-positive and false-negative
    probability mass around the target), instead of the paper's fixed 16 x 128."""
    if params.target_jaccard is None:
        return params
    from dataclasses import replace

    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(params.target_jaccard, params.num_perm, 0.5, 0.5)
    return replace(params, bands=int(bands), rows=int(rows))


def _band_unit(params: FuzzyDedupParams, unit: Any) -> SignatureStats:
    return _process_unit(unit, params)


def fuzzy_dedup_global(shards: list[Path], work_dir: Path, params: FuzzyDedupParams, engine: Engine) -> GlobalResult:
    """MinHash band hashes per unit on the engine, then clusters: in DuckDB on one machine, or as
    a shuffle + connected components on the Dask cluster when the engine is Dask (identical
    clusters, docs/dedup.md). Survivors follow the same keep policy as exact dedup."""
    import time

    params = derive_bands(params)
    work_dir.mkdir(parents=True, exist_ok=True)
    band_dir = work_dir / "bands"
    band_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    units = _plan_units(shards, band_dir, params)
    sig = SignatureStats()
    for st in engine.map(_band_unit, params, units, "fuzzy_deduped_code signatures"):
        sig.add(st)
    sig_wall = time.perf_counter() - t0
    clusters = work_dir / "clusters.parquet"
    client = getattr(engine, "client", None)
    if client is not None and params.verify_jaccard is None:
        from opencoder_assets.core.distributed_dedup import find_clusters_distributed

        cst = find_clusters_distributed(band_dir, clusters, params, shards, client)
        hist, largest = _cluster_summary(clusters)
        engine_stats = {"cluster_engine": "dask", "components_on": cst.components_on,
                        "cc_iterations": cst.cc_iterations}
    else:
        cst = find_clusters(band_dir, clusters, params, shards)
        hist, largest = cst.size_histogram, cst.largest_clusters
        engine_stats = {"cluster_engine": "duckdb"}
    verdicts = work_dir / "fuzzy_verdicts.parquet"
    con = duckdb.connect()
    try:
        # the DuckDB and Dask paths compute (m/b)^(1/r) with different libm calls (last-ulp
        # differences): round once so the published table is identical whatever the engine
        table = con.execute(f"SELECT * REPLACE (round(est_similarity, 9) AS est_similarity) "
                            f"FROM read_parquet({_q(str(clusters))}) ORDER BY cluster_id, file_id").fetch_arrow_table()
        pq.write_table(table.cast(_CLUSTER_SCHEMA), clusters)
        con.execute(
            f"""COPY (SELECT file_id, is_survivor AS keep,
                             CASE WHEN is_survivor THEN NULL ELSE 'fuzzy_duplicate' END AS reason,
                             CASE WHEN is_survivor THEN 'cluster_survivor:' || cluster_id
                                  ELSE 'duplicate_of:' || survivor_id || ' est_j=' || round(est_similarity, 3) END AS detail
                      FROM read_parquet({_q(str(clusters))}) ORDER BY file_id) TO {_q(str(verdicts))} (FORMAT parquet)""")
    finally:
        con.close()
    stats = {"input": sig.docs, "too_short_not_hashed": sig.too_short, "signed": sig.signed,
             "candidate_edges": int(cst.candidate_edges), "clusters": int(cst.clusters),
             "clustered_docs": int(cst.clustered_docs), "removed": int(cst.removed),
             "cluster_size_histogram": hist, "largest_clusters": largest[:10],
             "signature_cpu_seconds": round(sig.cpu_seconds, 3), "signature_wall_seconds": round(sig_wall, 3),
             "lsh_threshold": round(params.threshold, 4), "s_curve": s_curve_markdown(params),
             "bands_x_rows": f"{params.bands} x {params.rows}"
             + (f" (from target_jaccard={params.target_jaccard})" if params.target_jaccard is not None else ""),
             "params": params.__dict__.copy(),
             **engine_stats}
    return GlobalResult(verdicts, sides={"dedup_clusters": clusters}, stats=stats)


def s_curve_markdown(params: FuzzyDedupParams) -> str:
    """P(candidate) by Jaccard for the chosen bands x rows, 3 decimals, without the block of zeros."""
    rows = [(j, p) for j, p in s_curve_table(params.bands, params.rows) if p >= 0.0005]
    return "\n".join(["| Jaccard | P(candidate) |", "|---:|---:|"] + [f"| {j:.3f} | {p:.3f} |" for j, p in rows])


def _cluster_summary(clusters: Path) -> tuple[dict[str, int], list[dict[str, Any]]]:
    t = pq.read_table(clusters, columns=["cluster_id", "cluster_size", "is_survivor", "file_id"])
    surv = t.filter(t["is_survivor"])
    sizes = surv["cluster_size"].to_pylist()
    hist: dict[str, int] = {}
    for s in sizes:
        hist[str(s)] = hist.get(str(s), 0) + 1
    order = sorted(zip(sizes, surv["cluster_id"].to_pylist(), surv["file_id"].to_pylist(), strict=True),
                   key=lambda x: (-x[0], x[1]))
    return hist, [{"cluster_id": c, "size": s, "survivor": f} for s, c, f in order[:20]]


# ----------------------------------------------------------------------------- transformed_code
TRANSFORM_EDIT_SCHEMA = pa.schema([
    ("file_id", pa.string()), ("copyright_removed_chars", pa.int64()), ("copyright_only_file", pa.bool_()),
    ("email", pa.int64()), ("ip_address", pa.int64()), ("password", pa.int64()), ("key", pa.int64()),
    ("name", pa.int64()),
    # tokens of the transformed content (core/tokens.py; 0 for a file dropped here): counted once per
    # file, where the content becomes final, so later steps' token figures are sums, not recounts
    ("tokens", pa.int64()),
])


@dataclass(frozen=True)
class TransformParams:
    """Switch either transformation off (e.g. to reproduce the reference filter's decisions).
    ``tokenizer``: tokenizer.json for the ``kept_tokens`` count (empty: the run's tokenizer)."""

    remove_copyright: bool = True
    redact_pii: bool = True
    tokenizer: str = ""

    def __post_init__(self) -> None:
        _resolve_tokenizer(self)


def transform(batch: pa.Table, params: TransformParams) -> StepOutput:
    """Copyright header removal + PII placeholders; a file left empty is dropped."""
    d = batch.select(["file_id", "language", "content"]).to_pydict()
    new_content: list[str] = []
    keep: list[bool] = []
    reasons: list[str | None] = []
    details: list[str | None] = []
    edits: dict[str, list] = {name: [] for name in TRANSFORM_EDIT_SCHEMA.names}
    for i in range(batch.num_rows):
        res = transform_document(d["content"][i], d["language"][i], remove_copyright=params.remove_copyright,
                                 redact=params.redact_pii)
        empty = not res.text.strip()
        keep.append(not empty)
        reasons.append("empty_after_transform" if empty else None)
        if not empty:
            new_content.append(res.text)
        parts = []
        if res.copyright_removed_chars:
            parts.append(f"copyright_removed_chars={res.copyright_removed_chars}")
        if res.copyright_only:
            parts.append("copyright_only_file")
        parts.extend(f"{k.lower()}={v}" for k, v in sorted(res.pii_counts.items()) if v)
        details.append(", ".join(parts) or None)
        edits["file_id"].append(d["file_id"][i])
        edits["copyright_removed_chars"].append(res.copyright_removed_chars)
        edits["copyright_only_file"].append(res.copyright_only)
        for kind in ("EMAIL", "IP_ADDRESS", "PASSWORD", "KEY", "NAME"):
            edits[kind.lower()].append(int(res.pii_counts.get(kind, 0)))
    counts = iter(count_tokens(new_content, params.tokenizer))
    edits["tokens"] = [next(counts) if k else 0 for k in keep]
    kept = batch.filter(pa.array(keep, pa.bool_()))
    kept = kept.set_column(kept.schema.get_field_index("content"), "content", pa.array(new_content, pa.large_string()))
    edit_table = pa.table(edits, schema=TRANSFORM_EDIT_SCHEMA)
    counters = {name: float(pc.sum(edit_table[name].cast(pa.int64())).as_py() or 0)
                for name in TRANSFORM_EDIT_SCHEMA.names[1:] if name != "tokens"}
    counters["kept_tokens"] = float(sum(edits["tokens"]))
    return StepOutput(kept, decisions_for(batch, keep, reasons, details), {"transform_edits": edit_table}, counters)


# ----------------------------------------------------------------------------- quality_signals
SIGNAL_SCHEMA = pa.schema([
    ("file_id", pa.string()), ("repo", pa.string()), ("path", pa.string()), ("language", pa.string()),
    ("doc_type", pa.string()), ("signals", pa.map_(pa.string(), pa.float64())),
    ("signal_errors", pa.map_(pa.string(), pa.string())),
    # natural language the document's signals used (detected per text document under lang="auto")
    ("lang", pa.string()),
])


@dataclass(frozen=True)
class SignalParams:
    """``lang``: natural language of text documents for the natural-language signals; ``auto``
    identifies it per document (core/langid.py; ``zh`` -> simplified Chinese + jieba words).
    ``js_parser``: parser of the JavaScript AST signals; ``esprima`` (reference parity, rejects
    ES2018+) or ``tree-sitter`` (current syntax; docs/filtering.md "JavaScript parser")."""

    lang: str = AUTO
    js_parser: Literal["esprima", "tree-sitter"] = "esprima"


def signals_for_batch(batch: pa.Table, lang: str = AUTO, js_parser: str = "esprima") -> pa.Table:
    """All reference signals per file as a map column; failures go to ``signal_errors``."""
    d = batch.to_pydict()
    out: dict[str, list] = {name: [] for name in SIGNAL_SCHEMA.names}
    for i in range(batch.num_rows):
        path = d["path"][i]
        doc_lang = document_language(lang, d["doc_type"][i], d["content"][i])
        out["lang"].append(doc_lang)
        sig, errors = compute_signals_with_errors(
            d["content"][i], program_lang=d["language"][i], doc_type=d["doc_type"][i], ext=d["ext"][i] or "",
            filename=path.rsplit("/", 1)[-1], size_bytes=int(d["size_bytes"][i] or 0), lang=doc_lang or "en",
            js_parser=js_parser,
        )
        for key in ("file_id", "repo", "path", "language", "doc_type"):
            out[key].append(d[key][i])
        out["signals"].append([(k, None if v is None else float(v)) for k, v in sig.items()])
        out["signal_errors"].append(list(errors.items()))
    return pa.table(out, schema=SIGNAL_SCHEMA)


def quality_signals(batch: pa.Table, params: SignalParams) -> StepOutput:
    """Annotates, never drops: thresholds are applied by filtered_code, so re-tuning never
    recomputes signals."""
    table = signals_for_batch(batch, params.lang, params.js_parser)
    failures: dict[str, float] = {}
    for errs in table["signal_errors"].to_pylist():
        for k, _ in errs:
            failures[f"signal_failures.{k}"] = failures.get(f"signal_failures.{k}", 0) + 1
    n = batch.num_rows
    return StepOutput(batch, decisions_for(batch, [True] * n, [None] * n), {"quality_signals": table}, failures)


# ----------------------------------------------------------------------------- filtered_code
@dataclass(frozen=True)
class FilterParams:
    """``thresholds_path``: an edited copy of opencoder_assets/config/filter_thresholds.toml."""

    thresholds_path: str | None = None
    random_mode: Literal["seeded", "strict", "lenient"] = "seeded"
    seed: int = 0
    #: ``auto``: the ``zh``/``en`` table per text document from its identified language.
    lang: str = AUTO


@lru_cache(maxsize=8)
def _thresholds(path: str | None) -> FilterThresholds | None:
    return FilterThresholds.load(path) if path else None


def filter_verdict(row: dict[str, Any], params: FilterParams) -> tuple[bool, str | None, str]:
    # the same deterministic identification quality_signals ran on the same (transformed) text
    lang = document_language(params.lang, row["doc_type"], row["content"])
    decision = apply_filters(
        dict(row["_signals"]), program_lang=row["language"], doc_type=row["doc_type"], lang=lang or "en",
        file_id=row["file_id"], seed=params.seed, random_mode=params.random_mode,
        thresholds=_thresholds(params.thresholds_path),
    )
    detail = (f"config={decision.config}" + (f" lang={lang}" if row["doc_type"] in TEXT_DOC_TYPES else "")
              + ("" if decision.keep else " hits=" + ",".join(decision.hits)))
    return decision.keep, None if decision.keep else f"filter:{decision.hits[0]}", detail


_filter_batch = file_filter(filter_verdict, columns=["file_id", "language", "doc_type", "content", "_signals"])


def filter_code(batch: pa.Table, params: FilterParams) -> StepOutput:
    """A file is dropped when any enabled rule fires; the reason is the first rule, the detail
    lists every rule that fired (``rules_fired`` in the metadata counts all of them)."""
    out = _filter_batch(batch, params)
    hits: dict[str, float] = {}
    for detail in out.decisions["detail"].to_pylist():
        if detail and " hits=" in detail:
            for rule in detail.split(" hits=", 1)[1].split(","):
                hits[f"rules_fired.{rule}"] = hits.get(f"rules_fired.{rule}", 0) + 1
    out.counters = hits
    return out


# ----------------------------------------------------------------------------- refinecode_code
@dataclass(frozen=True)
class SamplingParams:
    """Per-language downsampling (the paper: Java 449 -> 200 GB, HTML 474 -> 64 GB).

    - ``ratios``, ``ratio_mode="per_file"`` (default): each file is kept with probability
      ``ratios[lang]`` (a seeded hash per file; the expected *file* fraction).
    - ``ratio_mode="volume"``: ``ratios[lang]`` x the partition's volume (``target_unit``) becomes
      the target, e.g. exactly 200/449 of the Java tokens.
    - ``targets[lang]``: an absolute target in ``target_unit`` (tokens or UTF-8 bytes); it
      overrides the ratio (bytes = UTF-8 bytes of the content, after transformation). Files are ranked by a seeded hash and kept while the volume taken
      *before* them is below the target: kept volume is within one file of the target.

    Every run also counts the tokens of every input file (``tokenizer``; empty: the run's
    tokenizer), so the step records real ``input_tokens``/``kept_tokens`` whatever the mode.
    ``partition`` is filled in by the kernel's caller, not the launchpad."""

    ratios: dict[str, float] = field(default_factory=lambda: {"java": 200 / 449, "html": 64 / 474})
    ratio_mode: Literal["per_file", "volume"] = "per_file"
    targets: dict[str, float] = field(default_factory=dict)
    target_unit: Literal["tokens", "bytes"] = "tokens"
    seed: int = 42
    tokenizer: str = ""
    partition: str = ""
    #: transform_edits files of the partition's transformed_code, filled by the caller when they were
    #: counted with this tokenizer: the per-file counts are reused instead of tokenizing again
    token_counts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _resolve_tokenizer(self)


def sample_keep(seed: int, file_id: str, ratio: float) -> bool:
    """Deterministic Bernoulli(ratio) per file: same decision on every run and worker count."""
    if ratio >= 1.0:
        return True
    return sample_rank_key(seed, file_id) / 2.0**64 < ratio


def sample_rank_key(seed: int, file_id: str) -> int:
    """The seeded 64-bit hash of a file: its Bernoulli draw and its rank in target mode."""
    h = hashlib.blake2b(f"{seed}\x1f{file_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big")


def sampling_ratio(params: SamplingParams) -> float:
    ratio = float(params.ratios.get(params.partition, 1.0))
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sampling ratio for {params.partition} must be in [0, 1], got {ratio}")
    return ratio


def sampling_target(params: SamplingParams, total: int) -> float | None:
    """The partition's target volume in ``target_unit``, or None in per-file ratio mode."""
    if params.partition in params.targets:
        target = float(params.targets[params.partition])
        if target < 0:
            raise ValueError(f"sampling target for {params.partition} must be >= 0, got {target}")
        return target
    if params.ratio_mode == "volume":
        return sampling_ratio(params) * total
    if params.ratio_mode != "per_file":
        raise ValueError(f"ratio_mode must be per_file or volume, got {params.ratio_mode!r}")
    return None


_MEASURE_SCHEMA = pa.schema([("file_id", pa.string()), ("content_bytes", pa.int64()), ("tokens", pa.int64())])


@functools.lru_cache(maxsize=1)
def read_token_counts(files: tuple[str, ...]) -> pa.Table | None:
    """(file_id, tokens) of transformed_code's ``transform_edits`` files, or None. Cached per process:
    every shard task of a run asks for the same (immutable, versioned) files, and a worker reads them
    once instead of once per shard."""
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f, columns=["file_id", "tokens"]) for f in files])


def _measure_shard(params: SamplingParams, item: tuple[str, str]) -> int:
    """(file_id, UTF-8 bytes and tokens of the content) of one input shard, written to
    ``item[1]``; returns its row count. Tokens come from transformed_code's per-file counts when the
    caller passed them (same tokenizer, same content); a file without one is counted here."""
    shard, out = item
    known = read_token_counts(tuple(params.token_counts))
    parts = []
    pf = pq.ParquetFile(shard, page_checksum_verification=True)
    for b in pf.iter_batches(batch_size=2000, columns=["file_id", "content"]):
        ids = b.column("file_id").cast(pa.string())
        if known is not None:
            idx = pc.index_in(ids, value_set=known["file_id"])
            tokens = pc.take(known["tokens"], idx).to_pylist()
            missing = [i for i, t in enumerate(tokens) if t is None]
            if missing:
                fresh = count_tokens([b.column("content")[i].as_py() for i in missing], params.tokenizer)
                for i, t in zip(missing, fresh, strict=True):
                    tokens[i] = t
        else:
            tokens = count_tokens(b.column("content").to_pylist(), params.tokenizer)
        parts.append(pa.table({"file_id": ids,
                               "content_bytes": pc.binary_length(b.column("content")).cast(pa.int64()),
                               "tokens": pa.array(tokens, pa.int64())}, schema=_MEASURE_SCHEMA))
    table = pa.concat_tables(parts) if parts else _MEASURE_SCHEMA.empty_table()
    pq.write_table(table, out)
    return table.num_rows


def sample_global(shards: list[Path], work_dir: Path, params: SamplingParams, engine: Engine) -> GlobalResult:
    """Measure every file (bytes, tokens; on the engine, one shard per task), then decide: a
    seeded Bernoulli per file (per-file ratio), or the seeded-rank prefix that reaches the target.
    Verdicts: every dropped file (``downsampled``), and in target mode every kept file too, with
    its rank and the volume taken before it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    mdir = work_dir / "measures"
    mdir.mkdir(exist_ok=True)
    items = [(str(s), str(mdir / f"{i:05d}.parquet")) for i, s in enumerate(shards)]
    sum(engine.map(_measure_shard, params, items, f"refinecode_code[{params.partition}] token counts"))
    m = (pa.concat_tables([pq.read_table(out) for _, out in items]) if items
         else _MEASURE_SCHEMA.empty_table()).to_pydict()
    ids, sizes, toks = m["file_id"], m["content_bytes"], m["tokens"]
    vol = toks if params.target_unit == "tokens" else sizes
    if params.target_unit not in ("tokens", "bytes"):
        raise ValueError(f"target_unit must be tokens or bytes, got {params.target_unit!r}")
    total = sum(vol)
    target = sampling_target(params, total)
    keep = [True] * len(ids)
    details: list[str | None] = [None] * len(ids)
    stats: dict[str, Any] = {"sampling_mode": "per_file" if target is None else "target",
                             "tokenizer": tokenizer_info(params.tokenizer).label}
    if target is None:
        ratio = sampling_ratio(params)
        for i, fid in enumerate(ids):
            keep[i] = sample_keep(params.seed, fid, ratio)
            details[i] = None if keep[i] else f"ratio={ratio:.4f}"
        stats["sampling_ratio"] = round(ratio, 6)
    else:
        order = sorted(range(len(ids)), key=lambda i: (sample_rank_key(params.seed, ids[i]), ids[i]))
        before = 0
        for rank, i in enumerate(order):
            keep[i] = before < target
            details[i] = (f"target={target:.0f} {params.target_unit} rank={rank + 1}/{len(ids)} "
                          f"before={before}")
            before += vol[i]
        stats.update({"sampling_target": round(target, 3), "sampling_target_unit": params.target_unit})
    out = work_dir / "sampling_verdicts.parquet"
    rows = [i for i in range(len(ids)) if not keep[i] or details[i] is not None]
    pq.write_table(pa.table({"file_id": [ids[i] for i in rows], "keep": [keep[i] for i in rows],
                             "reason": [None if keep[i] else "downsampled" for i in rows],
                             "detail": [details[i] for i in rows]}, schema=VERDICT_SCHEMA), out)
    kept_vol = sum(v for v, k in zip(vol, keep, strict=True) if k)
    stats.update({
        "input_tokens": sum(toks), "kept_tokens": sum(t for t, k in zip(toks, keep, strict=True) if k),
        "input_content_bytes": sum(sizes),
        "kept_content_bytes": sum(b for b, k in zip(sizes, keep, strict=True) if k),
        "sampling_seed": params.seed,
    })
    if target is not None:
        stats["sampling_kept_minus_target"] = round(kept_vol - target, 3)
    return GlobalResult(out, stats=stats)


# ----------------------------------------------------------------------------------- registry
CODE_STEPS: list[StepSpec] = [
    StepSpec("raw_code", None, "Every file of the partition from the source index (folders) and tables, with repo "
             "metadata (stars, commit time), sha256 and undecoded bytes. Nothing is dropped here; unreadable files "
             "carry `read_error`.", RAW_SCHEMA, map_fn=f"{_M}:raw_all_kept", source_fn=f"{_M}:raw_source",
             params=f"{_M}:IngestParams"),
    StepSpec("preprocessed_code", "raw_code", "Drops files over 8 MiB, binary (NUL byte), invalid UTF-8, empty, "
             "unreadable and non-programming-language files; decodes to LF-normalised text.", CODE_SCHEMA,
             in_schema=RAW_SCHEMA, map_fn=f"{_M}:preprocess", params=f"{_M}:PreprocessParams"),
    StepSpec("exact_deduped_code", "preprocessed_code", "SHA-256 file-level dedup across every repo of the "
             "partition. Survivor: most stars, then latest commit, then smallest file_id; each removed file "
             "records `duplicate_of:<file_id>`.", CODE_SCHEMA, in_schema=CODE_SCHEMA,
             global_fn=f"{_M}:exact_dedup_global", params=f"{_M}:ExactDedupParams", kinds=("parquet", "duckdb")),
    StepSpec("fuzzy_deduped_code", "exact_deduped_code", "5-gram MinHash + LSH (default 16 bands x 128 rows) "
             "file-level fuzzy dedup; one survivor per cluster (most stars, latest commit, smallest file_id). "
             "Clusters are the `dedup_clusters` table.", CODE_SCHEMA, in_schema=CODE_SCHEMA,
             global_fn=f"{_M}:fuzzy_dedup_global", params="opencoder_assets.core.fuzzy_dedup:FuzzyDedupParams",
             sides=(("dedup_clusters", _CLUSTER_SCHEMA),), kinds=("parquet", "duckdb", "dask")),
    StepSpec("transformed_code", "fuzzy_deduped_code", "Removes the leading copyright/license comment block and "
             "replaces PII (emails, IPs, passwords, keys, author names in comments) by placeholders; per-file edit counts are the "
             "`transform_edits` table.", CODE_SCHEMA, in_schema=CODE_SCHEMA, map_fn=f"{_M}:transform",
             params=f"{_M}:TransformParams", sides=(("transform_edits", TRANSFORM_EDIT_SCHEMA),)),
    StepSpec("quality_signals", "transformed_code", "Every quality signal of the reference framework per file "
             "(natural-language, general code, language-specific) as a map column (`quality_signals` table); "
             "thresholds are applied by filtered_code, so re-tuning never recomputes signals.", None,
             in_schema=CODE_SCHEMA, map_fn=f"{_M}:quality_signals", params=f"{_M}:SignalParams",
             sides=(("quality_signals", SIGNAL_SCHEMA),), writes_parts=False),
    StepSpec("filtered_code", "quality_signals", "Applies the per-language threshold tables (declarative TOML) to "
             "the stored signals; a file is dropped when any enabled rule fires, and every fired rule is "
             "recorded.", CODE_SCHEMA, in_schema=CODE_SCHEMA, map_fn=f"{_M}:filter_code", params=f"{_M}:FilterParams",
             reads="transformed_code", aligned=("quality_signals", "quality_signals", "signals")),
    StepSpec("refinecode_code", "filtered_code", "The RefineCode pretraining corpus: per-language deterministic "
             "downsampling of the filtered code, per file (default ratios Java 200/449, HTML 64/474) or to a "
             "token/byte target (seeded rank, within one file of the target); records real token counts.",
             CODE_SCHEMA, in_schema=CODE_SCHEMA, global_fn=f"{_M}:sample_global", params=f"{_M}:SamplingParams"),
]
STEP_BY_NAME: dict[str, StepSpec] = {s.name: s for s in CODE_STEPS}
STEP_NAMES: list[str] = [s.name for s in CODE_STEPS]
FINAL_STEP = STEP_NAMES[-1]

__all__ = ["CODE_STEPS", "STEP_BY_NAME", "STEP_NAMES", "FINAL_STEP", "DECISION_SCHEMA"]
