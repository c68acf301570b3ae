"""File-level fuzzy deduplication (RefineCode recipe §3): 5-gram MinHash + banded LSH.

Pipeline (pure library, no Dagster):

1. :func:`compute_band_hashes` streams each input Parquet shard in record batches, tokenises
   (see :data:`TOKEN_UNITS`), builds n-gram shingle hashes with vectorised numpy, computes
   ``num_perm`` MinHash values with rensa's flat-buffer bulk API and folds every band of
   ``rows`` values into one 64-bit hash.  Output: one Parquet part per work unit with
   ``(file_id, band:int16, band_hash:int64)``.  Signatures are never stored, so memory is bounded
   by one record batch.
2. :func:`find_clusters` groups band hashes in DuckDB (spilling to disk), emits one edge per
   colliding member towards the group's minimum id (linear in group size), optionally verifies
   edges with exact shingle Jaccard, finds connected components and picks one survivor per
   component by (stars desc nulls last, commit_time desc nulls last, file_id asc).
3. :func:`run_fuzzy_dedup` runs both and writes the removed-id list.

Determinism: work units depend only on shard paths and their row-group layout (never on the
worker count or the order of ``input_paths``), all hashes are seeded and version-stable
(xxh3 + fixed mixing constants + rensa's seeded permutations), and every tie is broken by id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from opencoder_assets.core.duckdb_sql import sql_path_list, sql_str

__all__ = [
    "TOKEN_UNITS",
    "ClusterStats",
    "FuzzyDedupParams",
    "FuzzyDedupResult",
    "SignatureStats",
    "candidate_probability",
    "compute_band_hashes",
    "find_clusters",
    "exact_jaccard",
    "lsh_threshold",
    "minhash_signatures",
    "run_fuzzy_dedup",
    "s_curve_table",
    "shingle_hashes",
]

#: Token definitions.  ``word``: maximal runs of Unicode word characters (regex ``\w+``, Rust
#: regex semantics) after lowercasing -- punctuation and whitespace are ignored, so formatting-
#: only edits do not break near-duplicate detection (common choice for code, e.g. BigCode).
#: ``word_cased``: same without lowercasing.  ``nonspace``: maximal runs of non-whitespace
#: characters (keeps operators/punctuation attached).
TOKEN_UNITS: dict[str, tuple[str, bool]] = {
    "word": (r"\w+", True),
    "word_cased": (r"\w+", False),
    "nonspace": (r"\S+", False),
}

_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd golden-ratio constant: order-sensitive combine
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_BAND_SCHEMA = pa.schema([("file_id", pa.string()), ("band", pa.int16()), ("band_hash", pa.int64())])


# --------------------------------------------------------------------------------------------
# Parameters and LSH maths
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzyDedupParams:
    """Fuzzy-dedup knobs; defaults follow the paper (5-grams, 2048 perms, 16 bands x 128 rows).

    ``min_tokens``: documents with fewer than ``max(min_tokens, ngram_size)`` tokens are not
    shingled and are excluded from LSH (they would all share the empty signature and collide);
    they are counted as ``too_short`` and always kept.  ``verify_jaccard``: if set, a candidate
    edge survives only when the exact Jaccard of the two shingle sets is >= this value.
    ``workers``: processes used for signatures (output is identical for any value).
    ``batch_rows``: record-batch size; bounds memory of the signature step.
    ``memory_limit``: DuckDB memory limit for the grouping step (it spills beyond that).
    """

    ngram_size: int = 5
    num_perm: int = 2048
    bands: int = 16
    rows: int = 128
    seed: int = 42
    token_unit: str = "word"
    min_tokens: int = 0
    verify_jaccard: float | None = None
    #: If set, bands x rows are derived for this Jaccard threshold (datasketch ``_optimal_param``).
    target_jaccard: float | None = None
    workers: int = 1
    batch_rows: int = 2000
    memory_limit: str = "2GB"

    def __post_init__(self) -> None:
        for name in ("ngram_size", "num_perm", "bands", "rows", "workers", "batch_rows"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FuzzyDedupParams.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands*rows = {self.bands}*{self.rows} = {self.bands * self.rows} exceeds "
                f"num_perm = {self.num_perm}; each band needs `rows` distinct MinHash values"
            )
        if self.bands > np.iinfo(np.int16).max:
            raise ValueError("bands must fit in int16")
        if self.token_unit not in TOKEN_UNITS:
            raise ValueError(f"token_unit must be one of {sorted(TOKEN_UNITS)}, got {self.token_unit!r}")
        if self.min_tokens < 0:
            raise ValueError("min_tokens must be >= 0")
        if self.target_jaccard is not None and not 0.0 < self.target_jaccard < 1.0:
            raise ValueError("target_jaccard must be in (0, 1) or None")
        if self.verify_jaccard is not None and not 0.0 <= self.verify_jaccard <= 1.0:
            raise ValueError("verify_jaccard must be in [0, 1] or None")
        if not 0 <= self.seed < 2**32:
            raise ValueError("seed must be in [0, 2**32)")

    @property
    def effective_min_tokens(self) -> int:
        """Fewest tokens a document needs to produce at least one shingle."""
        return max(self.min_tokens, self.ngram_size)

    @property
    def threshold(self) -> float:
        return lsh_threshold(self.bands, self.rows)


def lsh_threshold(bands: int, rows: int) -> float:
    """S-curve midpoint approximation ``(1/b)^(1/r)`` (0.978 for 16x128, 0.738 for 128x16)."""
    return (1.0 / bands) ** (1.0 / rows)


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """Probability that a pair with Jaccard ``j`` shares at least one band: ``1-(1-j^r)^b``."""
    if not 0.0 <= j <= 1.0:
        raise ValueError("j must be in [0, 1]")
    return 1.0 - (1.0 - j**rows) ** bands


def s_curve_table(bands: int, rows: int) -> list[tuple[float, float]]:
    """(Jaccard, candidate probability) points for UI metadata, denser near the threshold."""
    t = lsh_threshold(bands, rows)
    pts = {round(x / 20, 4) for x in range(21)}
    pts |= {round(min(1.0, max(0.0, t + d)), 4) for d in (-0.03, -0.02, -0.01, -0.005, 0, 0.005, 0.01)}
    pts |= {0.95, 0.97, 0.98, 0.99}
    return [(j, round(candidate_probability(j, bands, rows), 6)) for j in sorted(pts)]


# --------------------------------------------------------------------------------------------
# Shingling (vectorised)
# --------------------------------------------------------------------------------------------


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 finaliser: decorrelates the polynomial shingle combine."""
    h = h ^ (h >> _S33)
    h = h * _FMIX1
    h = h ^ (h >> _S33)
    h = h * _FMIX2
    return h ^ (h >> _S33)


def _token_hashes(contents: pa.Array | pa.ChunkedArray, token_unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise a batch; return (flat uint64 token hashes, int64 tokens-per-doc).

    Tokenisation runs in polars' Rust regex engine; only the batch's *distinct* tokens are
    hashed in Python (xxh3_64 of UTF-8, version-stable), then broadcast by dictionary index.
    """
    pattern, lower = TOKEN_UNITS[token_unit]
    s = pl.Series("c", contents).cast(pl.String).fill_null("")
    if lower:
        s = s.str.to_lowercase()
    toks = s.str.extract_all(pattern)
    counts = toks.list.len().fill_null(0).to_numpy().astype(np.int64, copy=False)
    values = toks.to_arrow()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    flat = values.flatten()
    if len(flat) == 0:
        return np.empty(0, np.uint64), counts
    enc = pc.dictionary_encode(flat)
    dict_hashes = np.fromiter(
        (xxhash.xxh3_64_intdigest(t) for t in enc.dictionary.cast(pa.large_binary()).to_pylist()),
        dtype=np.uint64,
        count=len(enc.dictionary),
    )
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return dict_hashes[idx], counts


def _shingles_from_tokens(
    th: np.ndarray, counts: np.ndarray, ngram_size: int, min_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised n-gram hashing over a flat token buffer without crossing document borders.

    Returns (flat shingle hashes of eligible docs, per-doc shingle counts (0 = too short),
    eligible mask).  Shingles are an order-sensitive polynomial of token hashes + fmix64.
    """
    n = ngram_size
    eligible = counts >= max(min_tokens, n)
    sh_counts = np.where(eligible, counts - n + 1, 0)
    total = len(th)
    if not eligible.any() or total < n:
        return np.empty(0, np.uint64), np.zeros_like(counts), eligible
    m = total - n + 1
    h = th[:m].copy()
    for k in range(1, n):
        h *= _SHINGLE_MULT
        h += th[k : m + k]
    starts = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    doc = np.repeat(np.arange(len(counts)), counts)[:m]
    rel = np.arange(m) - starts[doc]
    valid = eligible[doc] & (rel <= counts[doc] - n)
    return _fmix64(h[valid]), sh_counts, eligible


def shingle_hashes(texts: Sequence[str | None], params: FuzzyDedupParams) -> list[np.ndarray]:
    """Distinct shingle hashes per text (empty array if too short); used for exact Jaccard."""
    th, counts = _token_hashes(pa.array(list(texts), pa.large_string()), params.token_unit)
    flat, sh_counts, _ = _shingles_from_tokens(th, counts, params.ngram_size, params.effective_min_tokens)
    offs = np.zeros(len(sh_counts) + 1, np.int64)
    np.cumsum(sh_counts, out=offs[1:])
    return [np.unique(flat[offs[i] : offs[i + 1]]) for i in range(len(sh_counts))]


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted unique hash arrays (0.0 if both empty)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def _minhash_matrix(flat: np.ndarray, sh_counts: np.ndarray, params: FuzzyDedupParams) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash matrix for docs with >= 1 shingle (rensa bulk API)."""
    import rensa

    nz = sh_counts[sh_counts > 0]
    offs = np.zeros(len(nz) + 1, np.uint64)
    np.cumsum(nz, out=offs[1:])
    mat = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(flat, np.uint64), offs, params.num_perm, params.seed
    )
    return np.array(mat.to_rows(), dtype=np.uint32).reshape(len(nz), params.num_perm)


def minhash_signatures(texts: Sequence[str | None], params: FuzzyDedupParams) -> np.ndarray:
    """(len(texts), num_perm) uint32 signatures; rows of too-short texts are all 0xFFFFFFFF.

    Convenience for tests/benchmarks; the pipeline never materialises signatures on disk.
    """
    th, counts = _token_hashes(pa.array(list(texts), pa.large_string()), params.token_unit)
    flat, sh_counts, eligible = _shingles_from_tokens(
        th, counts, params.ngram_size, params.effective_min_tokens
    )
    out = np.full((len(counts), params.num_perm), np.iinfo(np.uint32).max, np.uint32)
    if eligible.any():
        out[sh_counts > 0] = _minhash_matrix(flat, sh_counts, params)
    return out


def _band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) int64: xxh3_64 of each band's raw little-endian uint32 bytes."""
    n = sig.shape[0]
    used = np.ascontiguousarray(sig[:, : bands * rows].astype("<u4", copy=False))
    raw = used.tobytes()
    step = rows * 4
    out = np.fromiter(
        (xxhash.xxh3_64_intdigest(raw[i : i + step]) for i in range(0, n * bands * step, step)),
        dtype=np.uint64,
        count=n * bands,
    )
    return out.view(np.int64).reshape(n, bands)


# --------------------------------------------------------------------------------------------
# Step 1: band hashes
# --------------------------------------------------------------------------------------------


@dataclass
class SignatureStats:
    """Counters of the signature step (summed over work units)."""

    docs: int = 0
    too_short: int = 0
    signed: int = 0
    bytes: int = 0
    tokens: int = 0
    shingles: int = 0
    units: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    part_files: list[str] = field(default_factory=list)

    def add(self, other: SignatureStats) -> None:
        for k in ("docs", "too_short", "signed", "bytes", "tokens", "shingles", "units"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.cpu_seconds += other.cpu_seconds
        self.part_files.extend(other.part_files)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("part_files")
        return d


@dataclass(frozen=True)
class _Unit:
    path: str
    row_groups: tuple[int, ...]
    out_file: str


def _plan_units(
    input_paths: Sequence[str | os.PathLike[str]], out_dir: Path, params: FuzzyDedupParams
) -> list[_Unit]:
    """Split shards into work units by row groups; naming depends only on the shard path."""
    target = max(params.batch_rows * 8, 1)
    units: list[_Unit] = []
    for p in sorted({str(Path(x).resolve()) for x in input_paths}):
        key = hashlib.sha1(p.encode()).hexdigest()[:16]
        md = pq.ParquetFile(p).metadata
        group: list[int] = []
        rows = 0
        for rg in range(md.num_row_groups):
            group.append(rg)
            rows += md.row_group(rg).num_rows
            if rows >= target:
                units.append(_Unit(p, tuple(group), str(out_dir / f"bands-{key}-{group[0]:05d}.parquet")))
                group, rows = [], 0
        if group or md.num_row_groups == 0:
            start = group[0] if group else 0
            units.append(_Unit(p, tuple(group), str(out_dir / f"bands-{key}-{start:05d}.parquet")))
    return units


def _iter_batches(
    path: str, row_groups: Sequence[int] | None, columns: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    pf = pq.ParquetFile(path)
    if row_groups is not None and len(row_groups) == 0:
        return
    yield from pf.iter_batches(batch_size=batch_rows, row_groups=row_groups, columns=columns)


def _process_unit(unit: _Unit, params: FuzzyDedupParams) -> SignatureStats:
    """Signature + band hashes for one unit; writes its part file atomically."""
    c0 = time.process_time()
    st = SignatureStats(units=1)
    tmp = unit.out_file + ".tmp"
    with pq.ParquetWriter(tmp, _BAND_SCHEMA, compression="zstd") as writer:
        for batch in _iter_batches(unit.path, unit.row_groups, ["file_id", "content"], params.batch_rows):
            ids = batch.column("file_id").cast(pa.string())
            content = batch.column("content")
            st.docs += batch.num_rows
            st.bytes += int(pc.sum(pc.binary_length(content.cast(pa.large_string()))).as_py() or 0)
            th, counts = _token_hashes(content, params.token_unit)
            st.tokens += int(counts.sum())
            flat, sh_counts, eligible = _shingles_from_tokens(
                th, counts, params.ngram_size, params.effective_min_tokens
            )
            st.too_short += int((~eligible).sum())
            n_ok = int(eligible.sum())
            if n_ok == 0:
                continue
            st.signed += n_ok
            st.shingles += len(flat)
            sig = _minhash_matrix(flat, sh_counts, params)
            bh = _band_hashes(sig, params.bands, params.rows)
            ok_ids = ids.filter(pa.array(eligible))
            writer.write_table(
                pa.table(
                    {
                        "file_id": pc.take(ok_ids, pa.array(np.repeat(np.arange(n_ok), params.bands))),
                        "band": pa.array(np.tile(np.arange(params.bands, dtype=np.int16), n_ok)),
                        "band_hash": pa.array(bh.reshape(-1)),
                    },
                    schema=_BAND_SCHEMA,
                )
            )
    os.replace(tmp, unit.out_file)
    st.part_files.append(unit.out_file)
    st.cpu_seconds = time.process_time() - c0
    return st


def _init_worker() -> None:
    """One polars thread per worker process: parallelism comes from processes, not threads."""
    os.environ["POLARS_MAX_THREADS"] = "1"


def _pool(workers: int) -> ProcessPoolExecutor:
    """Spawned workers (fork is unsafe with DuckDB/polars thread pools)."""
    import multiprocessing as mp

    return ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker
    )


def compute_band_hashes(
    input_paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], params: FuzzyDedupParams
) -> SignatureStats:
    """Write ``(file_id, band, band_hash)`` Parquet parts into ``out_dir`` (one per work unit).

    Existing ``bands-*.parquet`` files in ``out_dir`` are removed first so stale parts from a
    previous run never leak into grouping.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bands-*.parquet*"):
        old.unlink()
    t0 = time.perf_counter()
    units = _plan_units(input_paths, out, params)
    total = SignatureStats()
    if params.workers > 1 and len(units) > 1:
        with _pool(min(params.workers, len(units))) as ex:
            for st in ex.map(_process_unit, units, [params] * len(units)):
                total.add(st)
    else:
        for u in units:
            total.add(_process_unit(u, params))
    total.part_files.sort()
    total.wall_seconds = time.perf_counter() - t0
    return total


# --------------------------------------------------------------------------------------------
# Step 2: candidate edges, verification, components, survivors
# --------------------------------------------------------------------------------------------


@dataclass
class ClusterStats:
    """Counters of the clustering step."""

    signed_docs: int = 0
    candidate_edges: int = 0
    verified_edges: int | None = None
    clusters: int = 0
    clustered_docs: int = 0
    removed: int = 0
    size_histogram: dict[str, int] = field(default_factory=dict)
    largest_clusters: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CLUSTER_SCHEMA = pa.schema(
    [
        ("cluster_id", pa.string()),
        ("file_id", pa.string()),
        ("is_survivor", pa.bool_()),
        ("survivor_id", pa.string()),
        ("cluster_size", pa.int64()),
        ("est_similarity", pa.float64()),
        ("verified_similarity", pa.float64()),
    ]
)


def _connect(work: Path, params: FuzzyDedupParams) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    tmp = work / "duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {sql_str(tmp.as_posix())}")
    con.execute(f"SET memory_limit = {sql_str(params.memory_limit)}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _components(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Connected-component label (= smallest node index in the component) per node."""
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        g = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
        _, lab = connected_components(g, directed=False)
        # Relabel to the minimum member index so labels are canonical.
        mins = np.full(lab.max() + 1 if n else 0, n, np.int64)
        np.minimum.at(mins, lab, np.arange(n))
        return mins[lab]
    except ImportError:  # pragma: no cover - scipy is optional
        label = np.arange(n, dtype=np.int64)
        while True:
            m = np.minimum(label[src], label[dst])
            new = label.copy()
            np.minimum.at(new, src, m)
            np.minimum.at(new, dst, m)
            while True:  # pointer jumping
                nxt = new[new]
                if np.array_equal(nxt, new):
                    break
                new = nxt
            if np.array_equal(new, label):
                return label
            label = new


def _load_shingles_for(
    ids: set[str], input_paths: Sequence[str], params: FuzzyDedupParams
) -> dict[str, np.ndarray]:
    """Recompute distinct shingle sets only for candidate docs (streamed shard by shard)."""
    out: dict[str, np.ndarray] = {}
    if not ids:
        return out
    value_set = pa.array(sorted(ids), pa.string())
    for p in sorted(input_paths):
        for batch in _iter_batches(p, None, ["file_id", "content"], params.batch_rows):
            fid = batch.column("file_id").cast(pa.string())
            mask = pc.is_in(fid, value_set=value_set)
            if not pc.any(mask).as_py():
                continue
            sub = batch.filter(mask)
            sets = shingle_hashes(sub.column("content").cast(pa.large_string()).to_pylist(), params)
            for i, s in zip(sub.column("file_id").cast(pa.string()).to_pylist(), sets, strict=True):
                out[i] = s
    return out


def _histogram(sizes: np.ndarray) -> dict[str, int]:
    buckets: Counter[str] = Counter()
    for s in sizes.tolist():
        if s <= 2:
            buckets["2"] += 1
        else:
            lo = 1 << (int(s - 1).bit_length() - 1)
            buckets[f"{lo + 1}-{lo * 2}"] += 1
    return dict(sorted(buckets.items(), key=lambda kv: int(kv[0].split("-")[0])))


def find_clusters(
    band_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    params: FuzzyDedupParams,
    input_paths: Sequence[str | os.PathLike[str]],
) -> ClusterStats:
    """Group band hashes into clusters and choose survivors; writes the clusters Parquet.

    Only documents in clusters of size >= 2 are written; everything else is implicitly kept.
    ``est_similarity`` is the band-collision estimate ``(m/b)^(1/r)`` of Jaccard to the
    survivor, where ``m`` is the number of shared band hashes (0.0 if linked only
    transitively).  ``verified_similarity`` is the exact shingle Jaccard to the survivor when
    ``params.verify_jaccard`` is set, else null.
    """
    t0 = time.perf_counter()
    band_dir = Path(band_dir)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = out_path.parent / (out_path.stem + "_work")
    work.mkdir(parents=True, exist_ok=True)
    inputs = sorted(str(Path(p).resolve()) for p in input_paths)
    parts = sorted(str(p) for p in band_dir.glob("bands-*.parquet"))
    stats = ClusterStats()
    con = _connect(work, params)
    try:
        if parts:
            bands_sql = f"read_parquet({sql_path_list(parts)})"
            stats.signed_docs = con.execute(f"SELECT count(DISTINCT file_id) FROM {bands_sql}").fetchone()[0]
            edges_file = (work / "edges.parquet").as_posix()
            con.execute(
                f"""
                COPY (
                  WITH g AS (
                    SELECT band, band_hash, min(file_id) AS root
                    FROM {bands_sql} GROUP BY band, band_hash HAVING count(*) > 1
                  )
                  SELECT DISTINCT b.file_id AS src, g.root AS dst
                  FROM {bands_sql} b JOIN g USING (band, band_hash)
                  WHERE b.file_id <> g.root
                ) TO {sql_str(edges_file)} (FORMAT parquet)
                """
            )
            edges = pq.read_table(edges_file)
        else:
            edges = pa.table({"src": pa.array([], pa.string()), "dst": pa.array([], pa.string())})
        stats.candidate_edges = edges.num_rows

        shingles: dict[str, np.ndarray] = {}
        if params.verify_jaccard is not None and edges.num_rows:
            cand = set(edges.column("src").to_pylist()) | set(edges.column("dst").to_pylist())
            shingles = _load_shingles_for(cand, inputs, params)
            keep = [
                exact_jaccard(shingles[a], shingles[b]) >= params.verify_jaccard
                for a, b in zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(), strict=True)
            ]
            edges = edges.filter(pa.array(keep, pa.bool_()))
            stats.verified_edges = edges.num_rows

        if edges.num_rows == 0:
            pq.write_table(_CLUSTER_SCHEMA.empty_table(), out_path)
            stats.seconds = time.perf_counter() - t0
            return stats

        # Canonical node numbering: sorted distinct ids.
        both = pa.chunked_array([edges.column("src"), edges.column("dst")]).combine_chunks()
        nodes = pc.unique(both).sort()
        src = pc.index_in(edges.column("src"), value_set=nodes).to_numpy()
        dst = pc.index_in(edges.column("dst"), value_set=nodes).to_numpy()
        comp = _components(src.astype(np.int64), dst.astype(np.int64), len(nodes))
        members = pa.table({"file_id": nodes, "comp": pa.array(comp)})
        con.register("members", members)

        meta_sql = (
            f"SELECT CAST(file_id AS VARCHAR) AS file_id, stars, commit_time FROM read_parquet({sql_path_list(inputs)}) "
            "WHERE CAST(file_id AS VARCHAR) IN (SELECT file_id FROM members)"
        )
        con.execute(
            f"""
            CREATE TEMP TABLE ranked AS
            WITH meta AS (
              SELECT file_id, max(stars) AS stars, max(commit_time) AS commit_time
              FROM ({meta_sql}) GROUP BY file_id
            ),
            r AS (
              SELECT m.file_id, m.comp, meta.stars, meta.commit_time,
                     row_number() OVER (PARTITION BY m.comp ORDER BY meta.stars DESC NULLS LAST,
                       meta.commit_time DESC NULLS LAST, m.file_id ASC) AS rk,
                     count(*) OVER (PARTITION BY m.comp) AS cluster_size
              FROM members m LEFT JOIN meta USING (file_id)
            )
            SELECT r.*, s.file_id AS survivor_id
            FROM r JOIN (SELECT comp, file_id FROM r WHERE rk = 1) s USING (comp)
            """
        )
        if parts:
            con.execute(
                f"""
                CREATE TEMP TABLE shared AS
                SELECT r.file_id, count(*) AS m
                FROM ranked r
                JOIN {bands_sql} a ON a.file_id = r.file_id
                JOIN {bands_sql} s ON s.file_id = r.survivor_id AND s.band = a.band AND s.band_hash = a.band_hash
                WHERE r.rk > 1
                GROUP BY r.file_id
                """
            )
        b, r = params.bands, params.rows
        tbl = con.execute(
            f"""
            SELECT r.survivor_id AS cluster_id, r.file_id, (r.rk = 1) AS is_survivor, r.survivor_id,
                   r.cluster_size,
                   CASE WHEN r.rk = 1 THEN 1.0
                        ELSE pow(coalesce(sh.m, 0) / {float(b)}, 1.0 / {float(r)}) END AS est_similarity
            FROM ranked r LEFT JOIN shared sh USING (file_id)
            ORDER BY cluster_id, is_survivor DESC, file_id
            """
        ).to_arrow_table()
        if shingles:
            fids = tbl.column("file_id").to_pylist()
            sids = tbl.column("survivor_id").to_pylist()
            ver = [exact_jaccard(shingles[f], shingles[s]) for f, s in zip(fids, sids, strict=True)]
            verified = pa.array(ver, pa.float64())
        else:
            verified = pa.nulls(tbl.num_rows, pa.float64())
        tbl = tbl.append_column("verified_similarity", verified)
        tbl = tbl.cast(_CLUSTER_SCHEMA)
        pq.write_table(tbl, out_path, compression="zstd")

        sizes = con.execute("SELECT cluster_size FROM ranked WHERE rk = 1").fetchnumpy()["cluster_size"]
        stats.clusters = len(sizes)
        stats.clustered_docs = tbl.num_rows
        stats.removed = tbl.num_rows - stats.clusters
        stats.size_histogram = _histogram(np.asarray(sizes))
        top = con.execute(
            "SELECT survivor_id, cluster_size FROM ranked WHERE rk = 1 "
            "ORDER BY cluster_size DESC, survivor_id LIMIT 10"
        ).fetchall()
        stats.largest_clusters = [{"cluster_id": c, "size": int(s)} for c, s in top]
    finally:
        con.close()
        shutil.rmtree(work / "duckdb_tmp", ignore_errors=True)
    stats.seconds = time.perf_counter() - t0
    return stats


# --------------------------------------------------------------------------------------------
# Step 3: end to end
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzyDedupResult:
    """Outputs of :func:`run_fuzzy_dedup`.

    ``removed_ids`` is a Parquet path (column ``file_id``), not an in-memory set, so the result
    stays small for large partitions; use :meth:`removed_id_set` for small data.
    """

    clusters_path: Path
    removed_ids: Path
    stats: dict[str, Any]

    def removed_id_set(self) -> set[str]:
        return set(pq.read_table(self.removed_ids, columns=["file_id"]).column("file_id").to_pylist())


def run_fuzzy_dedup(
    input_paths: Sequence[str | os.PathLike[str]], work_dir: str | os.PathLike[str], params: FuzzyDedupParams
) -> FuzzyDedupResult:
    """Signatures -> LSH clusters -> removed ids, with stats for Dagster metadata."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sig = compute_band_hashes(input_paths, work / "bands", params)
    clusters_path = work / "clusters.parquet"
    cst = find_clusters(work / "bands", clusters_path, params, input_paths)
    removed_path = work / "removed_ids.parquet"
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT file_id FROM read_parquet({sql_str(clusters_path.as_posix())}) WHERE NOT is_survivor "
            f"ORDER BY file_id) TO {sql_str(removed_path.as_posix())} (FORMAT parquet)"
        )
    finally:
        con.close()
    stats: dict[str, Any] = {
        "input": sig.docs,
        "kept": sig.docs - cst.removed,
        "removed": cst.removed,
        "too_short": sig.too_short,
        "signed": sig.signed,
        "candidate_edges": cst.candidate_edges,
        "verified_edges": cst.verified_edges,
        "clusters": cst.clusters,
        "clustered_docs": cst.clustered_docs,
        "cluster_size_histogram": cst.size_histogram,
        "largest_clusters": cst.largest_clusters,
        "input_bytes": sig.bytes,
        "signature_wall_seconds": round(sig.wall_seconds, 3),
        "signature_cpu_seconds": round(sig.cpu_seconds, 3),
        "cluster_seconds": round(cst.seconds, 3),
        "lsh_threshold": round(params.threshold, 4),
        "params": asdict(params),
    }
    return FuzzyDedupResult(clusters_path=clusters_path, removed_ids=removed_path, stats=stats)
