"""Fuzzy-dedup clustering of 10 M documents on the Dask path, within 8 GB on a 2-core machine.

    python bench/bench_fuzzy_dask.py --docs 10000000 --workers 2 --memory-limit 3GB

What runs: :func:`distributed_dedup.find_clusters_distributed` (the global stage of
``fuzzy_deduped_code`` on the ``dask`` engine) on a ``LocalCluster`` over a band table of
``--docs`` documents x 16 bands (the paper's 16 x 128 LSH):

- real band hashes of real files (stdlib modules plus copies with one- and two-line edits, computed
  by the production signature step :func:`fuzzy_dedup.compute_band_hashes`), and
- synthetic documents up to ``--docs``: random 64-bit band hashes, 6 % of them near-duplicates (the
  paper's fuzzy removal rate) that copy the first 1-16 bands of an unmodified document of their chunk.

Checked: the clusters found equal the connected components of the planted duplicate graph
(scipy, on the driver) for the synthetic part: same number of clusters and the same members.
Printed: wall seconds, candidate edges, label-propagation iterations, the peak summed RSS of the
driver plus every Dask process (sampled from /proc every 0.5 s), each process's own peak, and the
spill directory's peak size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 500_000
DUP_RATE = 0.06


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        kids: list[str] = []
        for task in Path(f"/proc/{p}/task").glob("*"):  # children are listed per creating thread
            try:
                kids += (task / "children").read_text().split()
            except OSError:
                continue
        for k in map(int, kids):
            out.append(k)
            stack.append(k)
    return out


class TreeRss:
    """Peak of the summed RSS of this process and all its descendants (the Dask nanny/workers)."""

    def __init__(self, spill: Path) -> None:
        self.peak_total_kb = 0
        self.peak_by_pid: dict[int, int] = {}
        self.peak_spill = 0
        self.spill = spill
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = 0
            for pid in [me, *_children(me)]:
                kb = _rss_kb(pid)
                total += kb
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), kb)
            self.peak_total_kb = max(self.peak_total_kb, total)
            if self.spill.exists():
                size = sum(f.stat().st_size for f in self.spill.rglob("*") if f.is_file())
                self.peak_spill = max(self.peak_spill, size)
            self._stop.wait(0.5)

    def __enter__(self) -> TreeRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def real_part(work: Path, n_files: int) -> tuple[list[str], int]:
    """Band hashes of real stdlib files and edited copies, by the production signature step."""
    from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, compute_band_hashes
    from tests.conftest import stdlib_files

    rows = []
    for i, f in enumerate(stdlib_files(n_files)):
        text = f.read_text(errors="replace")
        rows.append((f"real{i:06d}a", text))
        if i % 3 == 0:
            lines = text.splitlines()
            for j, k in ((1, 1), (2, 2)):
                edited = list(lines)
                for ln in range(0, len(edited), max(1, len(edited) // (k + 1)))[1 : k + 1]:
                    edited[ln] = edited[ln] + "  # edited"
                rows.append((f"real{i:06d}{'bc'[j - 1]}", "\n".join(edited)))
    shard = work / "real_input.parquet"
    pq.write_table(pa.table({"file_id": [r[0] for r in rows], "content": [r[1] for r in rows],
                             "stars": pa.array([None] * len(rows), pa.int64()),
                             "commit_time": pa.array([None] * len(rows), pa.timestamp("us", tz="UTC"))}), shard)
    compute_band_hashes([shard], work / "bands", FuzzyDedupParams())
    return [str(shard)], len(rows)


def synthetic_part(work: Path, n_docs: int, bands: int, seed: int = 1) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Band and metadata shards of ``n_docs`` synthetic documents; returns (meta shards, dup, src)."""
    rng = np.random.default_rng(seed)
    all_dup, all_src = [], []
    metas = []
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    for c, start in enumerate(range(0, n_docs, CHUNK)):
        n = min(CHUNK, n_docs - start)
        gid = np.arange(start, start + n)
        ids = pa.array([f"{g * 0x9E3779B97F4A7C15 % (1 << 80):020x}" for g in gid.tolist()], pa.string())
        h = rng.integers(-(2**63), 2**63 - 1, size=(n, bands), dtype=np.int64)
        dup = rng.random(n) < DUP_RATE
        originals = np.nonzero(~dup)[0]  # a duplicate copies bands of an unmodified document
        src = originals[rng.integers(0, len(originals), n)]
        k = rng.integers(1, bands + 1, n)
        mask = (np.arange(bands)[None, :] < k[:, None]) & dup[:, None]
        h = np.where(mask, h[src], h)
        pq.write_table(pa.table({"file_id": pc.take(ids, np.repeat(np.arange(n), bands)),
                                 "band": pa.array(np.tile(np.arange(bands, dtype=np.int16), n)),
                                 "band_hash": pa.array(h.reshape(-1))}),
                       work / "bands" / f"bands-syn-{c:04d}.parquet", compression="zstd", row_group_size=1_000_000)
        meta = work / "meta" / f"meta-{c:04d}.parquet"
        stars = rng.integers(0, 50, n)
        pq.write_table(pa.table({"file_id": ids,
                                 "stars": pa.array(np.where(stars < 5, None, stars).tolist(), pa.int64()),
                                 "commit_time": pa.array([t0 + dt.timedelta(seconds=int(s))
                                                          for s in rng.integers(0, 10**8, n)],
                                                         pa.timestamp("us", tz="UTC"))}), meta)
        metas.append(str(meta))
        all_dup.append(dup)
        all_src.append(src + start)
    return metas, np.concatenate(all_dup), np.concatenate(all_src)


def expected_components(n_docs: int, dup: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Component label per synthetic doc (-1 for singletons) of the planted duplicate graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i = np.nonzero(dup)[0]
    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, src[i])), shape=(n_docs, n_docs))
    _, labels = connected_components(g, directed=False)
    counts = np.bincount(labels)
    return np.where(counts[labels] > 1, labels, -1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="3GB", help="per Dask worker (spills to disk beyond it)")
    ap.add_argument("--real-files", type=int, default=3000)
    ap.add_argument("--work", default=None)
    ap.add_argument("--local-max-edges", type=int, default=0,
                    help="candidate edges up to which components are computed on the client "
                         "(default 0: label propagation on the cluster, the path for any size)")
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    from opencoder_assets.core.distributed_dedup import find_clusters_distributed
    from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-fuzzy-dask-"))
    (work / "bands").mkdir(parents=True, exist_ok=True)
    (work / "meta").mkdir(parents=True, exist_ok=True)
    params = FuzzyDedupParams()
    try:
        t0 = time.perf_counter()
        real_inputs, n_real = real_part(work, args.real_files)
        n_syn = args.docs - n_real
        metas, dup, src = synthetic_part(work, n_syn, params.bands)
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (work / "bands").glob("bands-*.parquet"))
        disk = sum(p.stat().st_size for p in (work / "bands").glob("*")) / 1e9
        print(f"band table: {args.docs:,} documents ({n_real:,} real, {n_syn:,} synthetic), {rows:,} band rows, "
              f"{disk:.2f} GB of Parquet, built in {time.perf_counter() - t0:.0f} s", flush=True)

        spill = work / "dask-spill"
        import dask

        from opencoder_assets.core.kernel import DASK_WORKER_CONFIG

        dask.config.set(DASK_WORKER_CONFIG)  # what the dask engine sets for the LocalCluster it starts
        with TreeRss(spill) as rss:
            with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                              memory_limit=args.memory_limit, dashboard_address=None,
                              local_directory=str(spill)) as cluster, Client(cluster) as client:
                t1 = time.perf_counter()
                st = find_clusters_distributed(work / "bands", work / "clusters.parquet", params,
                                               real_inputs + metas, client, local_max_edges=args.local_max_edges)
                wall = time.perf_counter() - t1
        print(f"clustering on Dask ({args.workers} workers x 1 thread, memory_limit {args.memory_limit}): "
              f"{wall:.0f} s wall, {args.docs / wall:,.0f} docs/s, {st.candidate_edges:,} candidate edges, "
              f"components on the {st.components_on} ({st.cc_iterations} label-propagation iterations), "
              f"{st.clusters:,} clusters, "
              f"{st.clustered_docs:,} clustered docs, {st.removed:,} removed")
        print(f"peak RSS, driver + all Dask processes summed: {rss.peak_total_kb / 2**20:.2f} GB "
              f"(target <= 8 GB); per process: "
              + ", ".join(f"{kb / 2**20:.2f}" for kb in sorted(rss.peak_by_pid.values(), reverse=True)[:4])
              + f" GB; spill directory peak {rss.peak_spill / 1e9:.2f} GB")

        # correctness on the synthetic part: same clusters as the planted graph's components
        out = pq.read_table(work / "clusters.parquet", columns=["file_id", "cluster_id"]).to_pandas()
        out = out[~out["file_id"].str.startswith("real")]
        ids = np.array([f"{g * 0x9E3779B97F4A7C15 % (1 << 80):020x}" for g in range(n_syn)])
        exp = expected_components(n_syn, dup, src)
        expected = {ids[i]: lab for i, lab in enumerate(exp.tolist()) if lab >= 0}
        got_pairs = {(f, c) for f, c in zip(out["file_id"], out["cluster_id"], strict=True)}
        same_members = set(expected) == {f for f, _ in got_pairs}
        mapping: dict[str, int] = {}
        consistent = True
        for f, c in got_pairs:
            lab = expected.get(f)
            if lab is None or mapping.setdefault(c, lab) != lab:
                consistent = False
                break
        n_exp = len(set(expected.values()))
        print(f"planted components: {n_exp:,} clusters / {len(expected):,} docs; found (synthetic part): "
              f"{out['cluster_id'].nunique():,} / {len(out):,}; same members: {same_members}; "
              f"same partition: {consistent and len(set(mapping.values())) == out['cluster_id'].nunique() == n_exp}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
