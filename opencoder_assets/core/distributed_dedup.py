"""Fuzzy dedup's global steps on a Dask cluster: the same clusters as :func:`fuzzy_dedup.find_clusters`.

Why Dask (measured in docs/scale_out.md): it installs from PyPI in seconds (~45 MB, pure Python
on top of the numpy/pandas/pyarrow we already have), a ``LocalCluster`` starts in ~1-2 s, it needs
no JVM (Spark) and no 250 MB runtime (Ray), and the same scheduler also runs Dagster steps through
``dagster-dask``'s executor -- one engine for partitions and for the global dedup step.

What runs where (on the cluster; the client sees counts, a small candidate graph and the final clusters table):

1. signatures: one Dask task per work unit of :func:`fuzzy_dedup._plan_units`
   (``_process_unit`` writes ``bands-*.parquet`` to a shared path, identical bytes to the
   single-process run);
2. candidate edges: the band table is hash-shuffled on ``(band, band_hash)``; inside each
   partition every colliding member gets an edge to its group's minimum file id (the exact rule of
   ``find_clusters``), then edges are de-duplicated globally;
3. connected components: min-label propagation over the undirected edge list (joins + group-by
   min, iterated until no label changes); a component's label is its smallest file id, which is
   ``find_clusters``' canonical label (smallest index in sorted-id order). Up to
   ``LOCAL_COMPONENTS_MAX_EDGES`` candidate edges the client computes the same labels in one
   pass instead (a graph that small is not worth a dozen cluster round trips);
4. survivors: join with (stars, commit_time) from the input shards, rank inside each component by
   stars desc nulls last, commit_time desc nulls last, file_id asc; ``est_similarity`` counts the
   band hashes each member shares with its survivor: ``(m / bands) ** (1 / rows)``.

Not supported here: ``verify_jaccard`` (exact-Jaccard edge verification needs the shingles of
both ends of every edge; the single-process path does it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from opencoder_assets.core.fuzzy_dedup import (
    _CLUSTER_SCHEMA,
    FuzzyDedupParams,
    FuzzyDedupResult,
    SignatureStats,
    _plan_units,
    _process_unit,
)

#: Band rows per shuffle partition of the band table (a worker holds a few of them at once).
ROWS_PER_PARTITION = 2_000_000
#: Candidate edges up to which connected components are computed on the client in one pass
#: (scipy, ~100 MB per million edges) instead of by label propagation on the cluster, whose every
#: iteration is a scheduler round trip of joins and group-bys (~1 s each on a LocalCluster; 13 of
#: them made up half of fuzzy_deduped_code's time at 20k files). The corpus-sized pass -- the
#: shuffle of the whole band table -- always runs on the cluster; only the graph it leaves, a
#: small fraction of it, comes to the client. 0 forces propagation (the path for any size).
LOCAL_COMPONENTS_MAX_EDGES = 2_000_000


@dataclass
class DistributedClusterStats:
    """Counters of the distributed clustering step (subset of ``ClusterStats`` + iterations)."""

    candidate_edges: int = 0
    clusters: int = 0
    clustered_docs: int = 0
    removed: int = 0
    cc_iterations: int = 0
    components_on: str = ""
    seconds: float = 0.0


def compute_band_hashes_distributed(
    input_paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], params: FuzzyDedupParams,
    client: Any,
) -> SignatureStats:
    """Signature step with one Dask task per work unit; ``out_dir`` must be visible to every worker."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bands-*.parquet*"):
        old.unlink()
    t0 = time.perf_counter()
    units = _plan_units(input_paths, out, params)
    total = SignatureStats()
    futures = client.map(_process_unit, units, params=params, pure=False)
    for st in client.gather(futures):
        total.add(st)
    total.part_files.sort()
    total.wall_seconds = time.perf_counter() - t0
    return total


def _edges_in_partition(df: pd.DataFrame) -> pd.DataFrame:
    """Within a shuffle partition (whole band groups): member -> group minimum, for groups of >= 2."""
    if df.empty:
        return pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
    g = df.groupby(["band", "band_hash"], sort=False)["file_id"]
    root = g.transform("min")
    size = g.transform("size")
    mask = (size > 1) & (df["file_id"] != root)
    out = pd.DataFrame({"src": df["file_id"][mask].astype("str"), "dst": root[mask].astype("str")})
    return out.drop_duplicates()


def _colliding_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of band groups with >= 2 members: the only rows a member can share with its survivor."""
    if df.empty:
        return df
    size = df.groupby(["band", "band_hash"], sort=False)["file_id"].transform("size")
    return df[size > 1]


def _rank_component(df: pd.DataFrame) -> pd.DataFrame:
    """Survivor choice inside each component of a partition: stars, commit time (desc, nulls last), id."""
    df = df.sort_values(["comp", "stars", "commit_time", "file_id"], ascending=[True, False, False, True],
                        na_position="last", kind="mergesort")
    df["rk"] = df.groupby("comp", sort=False).cumcount() + 1
    df["cluster_size"] = df.groupby("comp", sort=False)["file_id"].transform("size").astype("int64")
    first = df[df["rk"] == 1].set_index("comp")["file_id"]
    df["survivor_id"] = df["comp"].map(first).astype("str")
    return df[["file_id", "comp", "rk", "cluster_size", "survivor_id"]]


def _components(edges: Any, npartitions: int, max_iterations: int = 1000) -> tuple[Any, int]:
    """Min-label propagation on the cluster: frame (node, lab) with lab = smallest id of the component."""
    import dask.dataframe as dd

    both = dd.concat([edges, edges.rename(columns={"src": "dst", "dst": "src"})])
    both = both.repartition(npartitions=npartitions).persist()
    nodes = both[["src"]].drop_duplicates(split_out=npartitions).rename(columns={"src": "node"})
    nodes["lab"] = nodes["node"]
    labels = nodes.persist()
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        joined = both.merge(labels.rename(columns={"node": "dst"}), on="dst", how="inner")
        cand = joined.groupby("src")["lab"].min(split_out=npartitions).reset_index().rename(columns={"src": "node"})
        new = dd.concat([labels, cand]).groupby("node")["lab"].min(split_out=npartitions).reset_index().persist()
        cmp = new.merge(labels.rename(columns={"lab": "old"}), on="node", how="inner")
        changed = int((cmp["lab"] != cmp["old"]).sum().compute())
        labels = new
        if changed == 0:
            break
    return labels, iterations


def _components_local(edges: pd.DataFrame) -> pd.DataFrame:
    """:func:`_components` in one pass on the client: frame (node, lab), lab = smallest id of the
    component (ids sorted bytewise, the order of the cluster path's string ``min``)."""
    import pyarrow.compute as pc

    from opencoder_assets.core.fuzzy_dedup import _components as components_by_index

    src = pa.array(edges["src"].to_numpy(dtype=object), pa.string())
    dst = pa.array(edges["dst"].to_numpy(dtype=object), pa.string())
    ids = pc.unique(pa.concat_arrays([src, dst]))
    ids = ids.take(pc.sort_indices(ids))
    s = pc.index_in(src, value_set=ids).to_numpy().astype(np.int64)
    d = pc.index_in(dst, value_set=ids).to_numpy().astype(np.int64)
    lab = components_by_index(s, d, len(ids))
    return pd.DataFrame({"node": ids.to_numpy(zero_copy_only=False).astype(object),
                         "lab": ids.take(pa.array(lab)).to_numpy(zero_copy_only=False).astype(object)})


def find_clusters_distributed(
    band_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    params: FuzzyDedupParams,
    input_paths: Sequence[str | os.PathLike[str]],
    client: Any,
    npartitions: int | None = None,
    local_max_edges: int | None = None,
) -> DistributedClusterStats:
    """Same output file (schema, rows, order) as :func:`fuzzy_dedup.find_clusters` without verification.
    ``local_max_edges`` (default :data:`LOCAL_COMPONENTS_MAX_EDGES`): see there."""
    import dask.dataframe as dd

    if params.verify_jaccard is not None:
        raise ValueError("verify_jaccard is not supported by the distributed path; use find_clusters")
    t0 = time.perf_counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stats = DistributedClusterStats()
    parts = sorted(str(p) for p in Path(band_dir).glob("bands-*.parquet"))
    nworkers = max(1, len(client.scheduler_info().get("workers", {})))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    # a shuffle partition holds about ROWS_PER_PARTITION band rows (~70 MB in pandas), so a worker's
    # memory is bounded by that, not by the corpus (10 M documents = 160 M band rows -> 80 partitions)
    nparts = npartitions or max(2, 2 * nworkers, -(-rows // ROWS_PER_PARTITION))
    if not parts:
        pq.write_table(_CLUSTER_SCHEMA.empty_table(), out_path)
        stats.seconds = time.perf_counter() - t0
        return stats
    # partitions of at most ~32 MiB (whole row groups) per file, however the band files were cut ("infer"
    # decides from the first file only: a small first file made whole 8 M-row files single partitions)
    bands = dd.read_parquet(parts, columns=["file_id", "band", "band_hash"], split_row_groups="adaptive",
                            blocksize="32MiB")
    bands["file_id"] = bands["file_id"].astype("str")
    shuffled = bands.shuffle(on=["band", "band_hash"], npartitions=nparts)
    # one pass over the full band table: keep only rows of colliding groups (a small fraction)
    colliding_by_band = shuffled.map_partitions(_colliding_rows, meta=bands._meta).persist()
    edge_meta = pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
    edges = colliding_by_band.map_partitions(_edges_in_partition, meta=edge_meta)
    small = max(2, 2 * nworkers)  # edges and clustered docs are a small fraction of the bands
    edges = edges.drop_duplicates(split_out=small).persist()
    # the colliding rows regrouped into a few partitions for the similarity joins below. Measured:
    # joining the shuffle's output directly, with more partitions than its join partner, lost most
    # matches (dask 2026.8 merge planning); after a repartition the joins are exact at any count
    colliding = colliding_by_band.repartition(npartitions=small).persist()
    del colliding_by_band
    stats.candidate_edges = int(edges.shape[0].compute())
    if stats.candidate_edges == 0:
        pq.write_table(_CLUSTER_SCHEMA.empty_table(), out_path)
        stats.seconds = time.perf_counter() - t0
        return stats

    limit = LOCAL_COMPONENTS_MAX_EDGES if local_max_edges is None else local_max_edges
    if stats.candidate_edges <= limit:
        labels = dd.from_pandas(_components_local(edges.compute()), npartitions=small, sort=False)
        stats.components_on = "client"
    else:
        labels, stats.cc_iterations = _components(edges, small)
        stats.components_on = "cluster"
    members = labels.rename(columns={"node": "file_id", "lab": "comp"})

    inputs = sorted(str(Path(p).resolve()) for p in input_paths)
    meta = dd.read_parquet(inputs, columns=["file_id", "stars", "commit_time"])
    meta["file_id"] = meta["file_id"].astype("str")
    meta = meta.merge(members[["file_id"]], on="file_id", how="inner")
    meta = meta.groupby("file_id").agg({"stars": "max", "commit_time": "max"}, split_out=small).reset_index()
    ranked_in = members.merge(meta, on="file_id", how="left").shuffle(on="comp", npartitions=small)
    rank_meta = pd.DataFrame({"file_id": pd.Series([], dtype="str"), "comp": pd.Series([], dtype="str"),
                              "rk": pd.Series([], dtype="int64"), "cluster_size": pd.Series([], dtype="int64"),
                              "survivor_id": pd.Series([], dtype="str")})
    ranked = ranked_in.map_partitions(_rank_component, meta=rank_meta).persist()

    # shared band hashes of each non-survivor with its survivor: a shared band is a collision, so
    # the colliding rows hold all of them (no second pass over the full band table)
    losers = ranked[ranked["rk"] > 1][["file_id", "survivor_id"]]
    a = colliding.merge(losers, on="file_id", how="inner")
    s = colliding.rename(columns={"file_id": "survivor_id"})
    shared = a.merge(s, on=["survivor_id", "band", "band_hash"], how="inner")
    m = shared.groupby("file_id")["band"].count(split_out=small).rename("m").to_frame().reset_index()

    tbl = ranked.merge(m, on="file_id", how="left").compute().reset_index(drop=True)
    b, r = float(params.bands), float(params.rows)
    mm = tbl["m"].fillna(0).to_numpy(dtype=np.float64)
    est = np.where(tbl["rk"].to_numpy() == 1, 1.0, np.power(mm / b, 1.0 / r))
    out = pd.DataFrame({
        "cluster_id": tbl["survivor_id"].astype("str"),
        "file_id": tbl["file_id"].astype("str"),
        "is_survivor": tbl["rk"].to_numpy() == 1,
        "survivor_id": tbl["survivor_id"].astype("str"),
        "cluster_size": tbl["cluster_size"].astype("int64"),
        "est_similarity": est,
        "verified_similarity": pd.Series([None] * len(tbl), dtype="str"),
    })
    out = out.sort_values(["cluster_id", "is_survivor", "file_id"], ascending=[True, False, True], kind="mergesort")
    table = pa.Table.from_pandas(out, schema=_CLUSTER_SCHEMA, preserve_index=False)
    pq.write_table(table, out_path, compression="zstd")
    stats.clusters = int(out["is_survivor"].sum())
    stats.clustered_docs = len(out)
    stats.removed = stats.clustered_docs - stats.clusters
    stats.seconds = time.perf_counter() - t0
    return stats


def run_fuzzy_dedup_distributed(
    input_paths: Sequence[str | os.PathLike[str]], work_dir: str | os.PathLike[str], params: FuzzyDedupParams,
    client: Any,
) -> FuzzyDedupResult:
    """:func:`fuzzy_dedup.run_fuzzy_dedup` with signatures and clustering on the Dask cluster."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sig = compute_band_hashes_distributed(input_paths, work / "bands", params, client)
    clusters_path = work / "clusters.parquet"
    cst = find_clusters_distributed(work / "bands", clusters_path, params, input_paths, client)
    removed_path = work / "removed_ids.parquet"
    clusters = pq.read_table(clusters_path, columns=["file_id", "is_survivor"])
    removed = sorted(f for f, s in zip(clusters["file_id"].to_pylist(), clusters["is_survivor"].to_pylist(),
                                       strict=True) if not s)
    pq.write_table(pa.table({"file_id": pa.array(removed, pa.string())}), removed_path)
    stats = {
        "input": sig.docs, "kept": sig.docs - cst.removed, "removed": cst.removed, "too_short": sig.too_short,
        "signed": sig.signed, "candidate_edges": cst.candidate_edges, "clusters": cst.clusters,
        "clustered_docs": cst.clustered_docs, "cc_iterations": cst.cc_iterations,
        "signature_wall_seconds": round(sig.wall_seconds, 3), "cluster_seconds": round(cst.seconds, 3),
        "engine": "dask",
    }
    return FuzzyDedupResult(clusters_path=clusters_path, removed_ids=removed_path, stats=stats)
