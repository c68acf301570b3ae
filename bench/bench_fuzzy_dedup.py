"""Throughput / memory benchmark for opencoder_assets.core.fuzzy_dedup on real local files.

Usage: .venv/bin/python bench/bench_fuzzy_dedup.py [--quick] [--workers N] [--sim-docs 1000000]

1. Collects real text files (/usr/share, /usr/include, /usr/lib/python3*, the venv, /root/.pyenv),
   deduplicated by real path, writes them to Parquet shards.
2. Signatures (paper defaults: 5-grams, 2048 perms, 16x128): files/s, MB/s wall and per CPU core.
3. Same texts on a subsample: datasketch MinHash.update_batch vs this module's rensa fast path.
4. LSH grouping + clustering time.
5. 1M-document clustering simulation (real band hashes + synthetic ones with planted
   near-duplicate groups) in a child process; reports its peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from opencoder_assets.core.fuzzy_dedup import (
    FuzzyDedupParams,
    _shingles_from_tokens,
    _token_hashes,
    compute_band_hashes,
    find_clusters,
    minhash_signatures,
)

ROOTS = [
    "/usr/share",
    "/usr/include",
    *map(str, Path("/usr/lib").glob("python3*")),
    sys.prefix,
    "/root/.pyenv",
    "/usr/lib",
    "/etc",
    "/usr/local",
    "/opt",
]


def collect(limit: int | None, max_bytes: int = 1_000_000) -> list[tuple[str, str]]:
    """Real UTF-8 text files, deduplicated by resolved path, deterministic order."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for root in ROOTS:
        for dirpath, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                p = os.path.join(dirpath, name)
                try:
                    rp = os.path.realpath(p)
                    if rp in seen or not os.path.isfile(rp) or os.path.getsize(rp) > max_bytes:
                        continue
                    seen.add(rp)
                    with open(rp, "rb") as f:
                        raw = f.read()
                    if b"\x00" in raw[:8192]:
                        continue
                    out.append((rp, raw.decode("utf-8")))
                except (OSError, UnicodeDecodeError):
                    continue
                if limit and len(out) >= limit:
                    return out
    return out


def write_shards(files: list[tuple[str, str]], out_dir: Path, shard_rows: int) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    for s in range(0, len(files), shard_rows):
        part = files[s : s + shard_rows]
        n = len(part)
        tbl = pa.table(
            {
                "file_id": pa.array([f for f, _ in part], pa.string()),
                "content": pa.array([c for _, c in part], pa.string()),
                "stars": pa.array(rng.integers(0, 100, n), pa.int64()),
                "commit_time": pa.array(
                    [t0 + dt.timedelta(seconds=int(x)) for x in rng.integers(0, 10**8, n)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        )
        p = out_dir / f"shard-{s // shard_rows:04d}.parquet"
        pq.write_table(tbl, p, row_group_size=2000)
        paths.append(str(p))
    return paths


def peak_rss_mb(children: bool = False) -> float:
    """Peak RSS in MB: /proc VmHWM (reset on exec, unlike ru_maxrss which survives execve)."""
    if not children:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def bench_datasketch(texts: list[str], params: FuzzyDedupParams) -> dict[str, float]:
    """Same shingles (our tokeniser) fed to datasketch.update_batch vs rensa; timings in seconds."""
    from datasketch import MinHash

    t = time.perf_counter()
    th, counts = _token_hashes(pa.array(texts, pa.large_string()), params.token_unit)
    flat, sh_counts, _ = _shingles_from_tokens(th, counts, params.ngram_size, params.effective_min_tokens)
    t_shingle = time.perf_counter() - t
    offs = np.concatenate([[0], np.cumsum(sh_counts)])
    items = [[x.tobytes() for x in flat[offs[i] : offs[i + 1]]] for i in range(len(texts)) if sh_counts[i]]
    t = time.perf_counter()
    for it in items:
        m = MinHash(num_perm=params.num_perm, seed=params.seed)
        m.update_batch(it)
        m.digest()
    t_ds = time.perf_counter() - t
    t = time.perf_counter()
    minhash_signatures(texts, params)
    t_rensa_total = time.perf_counter() - t
    return {"shingle_s": t_shingle, "datasketch_minhash_s": t_ds, "rensa_pipeline_s": t_rensa_total}


def simulate(
    n_docs: int, real_bands: Path, work: Path, params: FuzzyDedupParams, extra_inputs: list[str]
) -> None:
    """Child-process body: 1M-doc band table (real + synthetic) -> find_clusters; prints RSS."""
    rng = np.random.default_rng(1)
    sim_dir = work / "sim_bands"
    sim_dir.mkdir(parents=True, exist_ok=True)
    real = pq.read_table(real_bands) if real_bands.is_dir() else None
    n_real = 0
    if real is not None and real.num_rows:
        pq.write_table(real, sim_dir / "bands-real.parquet")
        n_real = len(set(real.column("file_id").to_pylist()))
    n_syn = max(n_docs - n_real, 0)
    meta_dir = work / "sim_meta"
    meta_dir.mkdir(parents=True, exist_ok=True)
    chunk = 100_000
    b = params.bands
    for s in range(0, n_syn, chunk):
        n = min(chunk, n_syn - s)
        ids = np.array([f"syn/{i:09d}" for i in range(s, s + n)], dtype=object)
        h = rng.integers(-(2**63), 2**63 - 1, size=(n, b), dtype=np.int64)
        # 6% near-duplicates (the paper's fuzzy removal rate): copy 1-16 bands from a doc in the chunk.
        dup = rng.random(n) < 0.06
        src = rng.integers(0, n, n)
        k = rng.integers(1, b + 1, n)
        mask = (np.arange(b)[None, :] < k[:, None]) & dup[:, None]
        h = np.where(mask, h[src], h)
        pq.write_table(
            pa.table(
                {
                    "file_id": pa.array(np.repeat(ids, b), pa.string()),
                    "band": pa.array(np.tile(np.arange(b, dtype=np.int16), n)),
                    "band_hash": pa.array(h.reshape(-1)),
                }
            ),
            sim_dir / f"bands-syn-{s // chunk:04d}.parquet",
        )
        pq.write_table(
            pa.table(
                {
                    "file_id": pa.array(ids, pa.string()),
                    "content": pa.array([""] * n, pa.string()),
                    "stars": pa.array(rng.integers(0, 1000, n), pa.int64()),
                    "commit_time": pa.array(np.full(n, None), pa.timestamp("us", tz="UTC")),
                }
            ),
            meta_dir / f"meta-{s // chunk:04d}.parquet",
        )
        del h, ids
    print(f"GEN docs={n_real + n_syn} real_docs={n_real} gen_peak_rss_MB={peak_rss_mb():.0f}", flush=True)


def cluster_child(work: Path, params: FuzzyDedupParams, extra_inputs: list[str]) -> None:
    """Separate process so ru_maxrss reflects clustering only (not data generation)."""
    inputs = sorted(str(p) for p in (work / "sim_meta").glob("*.parquet")) + list(extra_inputs)
    t = time.perf_counter()
    st = find_clusters(work / "sim_bands", work / "sim_clusters.parquet", params, inputs)
    dtc = time.perf_counter() - t
    print(
        f"SIM signed_docs={st.signed_docs} edges={st.candidate_edges} clusters={st.clusters} "
        f"removed={st.removed} cluster_s={dtc:.1f} cluster_peak_rss_MB={peak_rss_mb():.0f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10k files, 200k simulated docs")
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sim-docs", type=int, default=None)
    ap.add_argument("--ds-sample", type=int, default=300)
    ap.add_argument("--work", default=None)
    ap.add_argument("--simulate-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cluster-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", nargs="*", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args()
    params = FuzzyDedupParams(workers=args.workers)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_fuzzy_"))
    if args.simulate_child:
        simulate(args.sim_docs, work / "bands", work, params, args.inputs)
        return
    if args.cluster_child:
        cluster_child(work, params, args.inputs)
        return
    limit = args.files or (10_000 if args.quick else None)
    sim_docs = args.sim_docs or (200_000 if args.quick else 1_000_000)

    t = time.perf_counter()
    files = collect(limit)
    total_mb = sum(len(c.encode()) for _, c in files) / 1e6
    print(f"collected {len(files)} text files, {total_mb:.1f} MB in {time.perf_counter() - t:.1f}s")
    paths = write_shards(files, work / "input", shard_rows=20_000)
    sample = [c for _, c in files[:: max(1, len(files) // args.ds_sample)]][: args.ds_sample]
    del files

    st = compute_band_hashes(paths, work / "bands", params)
    cores = max(1, min(params.workers, len(paths)))
    print(
        f"signatures (num_perm={params.num_perm}, {params.bands}x{params.rows}, workers={params.workers}): "
        f"docs={st.docs} signed={st.signed} too_short={st.too_short} wall={st.wall_seconds:.1f}s "
        f"cpu={st.cpu_seconds:.1f}s | {st.docs / st.wall_seconds:.0f} files/s, "
        f"{st.bytes / 1e6 / st.wall_seconds:.1f} MB/s wall, "
        f"{st.bytes / 1e6 / max(st.cpu_seconds, 1e-9):.1f} MB/s per core (cpu time), "
        f"{st.bytes / 1e6 / st.wall_seconds / cores:.1f} MB/s per worker (wall)"
    )
    t = time.perf_counter()
    cst = find_clusters(work / "bands", work / "clusters.parquet", params, paths)
    dtc = time.perf_counter() - t
    print(
        f"LSH+cluster: edges={cst.candidate_edges} clusters={cst.clusters} removed={cst.removed} "
        f"in {dtc:.1f}s ({st.docs / dtc:.0f} files/s, {st.bytes / 1e6 / dtc:.1f} MB/s) "
        f"hist={cst.size_histogram} largest={cst.largest_clusters[:3]}"
    )
    print(f"peak RSS of main process so far: {peak_rss_mb():.0f} MB")

    ds = bench_datasketch(sample, FuzzyDedupParams())
    smb = sum(len(c.encode()) for c in sample) / 1e6
    ds_total = ds["shingle_s"] + ds["datasketch_minhash_s"]
    print(
        f"subsample {len(sample)} files {smb:.1f} MB @2048 perms: datasketch update_batch "
        f"{smb / ds_total:.2f} MB/s (minhash only {smb / ds['datasketch_minhash_s']:.2f} MB/s) vs rensa "
        f"pipeline {smb / ds['rensa_pipeline_s']:.1f} MB/s -> ratio {ds_total / ds['rensa_pipeline_s']:.1f}x"
    )

    base_cmd = [sys.executable, __file__, "--sim-docs", str(sim_docs), "--work", str(work)]
    for flag in ("--simulate-child", "--cluster-child"):
        t = time.perf_counter()
        out = subprocess.run(
            [*base_cmd, flag, "--inputs", *paths], capture_output=True, text=True, check=False
        )
        print(out.stdout.strip() or out.stderr[-3000:], f"(wall {time.perf_counter() - t:.1f}s)")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
