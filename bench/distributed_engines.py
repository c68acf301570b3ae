"""Engine choice for the global fuzzy-dedup step: Dask vs Spark (local mode) vs Ray (local).

Measures, on band-hash Parquet produced by the real signature step from real code (the
interpreter's stdlib plus near-duplicate edits of a third of it, replicated with renamed ids to
reach the target size): engine start-up, and band grouping -> candidate edges -> connected
components (min-label propagation) wall time. Install size is printed from the
``--site`` directories given (``pip install --target DIR pkg``).

Run:  .venv/bin/python bench/distributed_engines.py --engine dask|spark|ray [--copies 20]
(Spark needs ``pip install --target /tmp/m_spark pyspark`` and a JVM; Ray ``--target /tmp/m_ray ray``;
pass ``--site /tmp/m_spark`` to put them on the path.) Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_bands(out: Path, copies: int) -> list[str]:
    """Real band hashes (stdlib + edited copies), replicated ``copies`` times under new ids."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, compute_band_hashes
    from tests.conftest import stdlib_files

    base = out / "base"
    if not (base / "bands").exists():
        files = stdlib_files(2000)
        ids, texts = [], []
        rng = np.random.default_rng(0)
        for i, f in enumerate(files):
            t = f.read_text(errors="replace")
            ids.append(f"f{i:05d}")
            texts.append(t)
            if i % 3 == 0:
                lines = t.splitlines()
                j = int(rng.integers(len(lines)))
                lines[j] = lines[j] + "  # edited"
                ids.append(f"e{i:05d}")
                texts.append("\n".join(lines))
        base.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"file_id": ids, "content": pa.array(texts, pa.large_string())}),
                       base / "in.parquet", row_group_size=500)
        compute_band_hashes([base / "in.parquet"], base / "bands", FuzzyDedupParams(num_perm=256, bands=32, rows=8))
    src = pq.read_table(sorted((base / "bands").glob("*.parquet")))
    rep = out / f"rep{copies}"
    if not rep.exists():
        rep.mkdir()
        for c in range(copies):
            t = src.set_column(0, "file_id", pc.binary_join_element_wise(src["file_id"], pa.scalar(f"_{c:03d}"), ""))
            # shift hashes per copy so copies do not collide with each other
            t = t.set_column(2, "band_hash", pc.add(t["band_hash"], pa.scalar(c * 7919, pa.int64())))
            pq.write_table(t, rep / f"bands-{c:04d}.parquet")
    return sorted(str(p) for p in rep.glob("bands-*.parquet"))


def run_dask(parts: list[str]) -> dict:
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    startup = time.perf_counter() - t0
    import dask.dataframe as dd
    import pandas as pd

    from opencoder_assets.core.distributed_dedup import _components, _edges_in_partition

    t1 = time.perf_counter()
    bands = dd.read_parquet(parts, columns=["file_id", "band", "band_hash"])
    meta = pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
    edges = bands.shuffle(on=["band", "band_hash"], npartitions=4).map_partitions(_edges_in_partition, meta=meta)
    edges = edges.drop_duplicates(split_out=4).persist()
    n_edges = int(edges.shape[0].compute())
    t2 = time.perf_counter()
    labels, it = _components(edges, 4)
    n_comp = int(labels["lab"].nunique().compute())
    t3 = time.perf_counter()
    client.close()
    cluster.close()
    return {"startup_s": startup, "edges_s": t2 - t1, "cc_s": t3 - t2, "edges": n_edges, "components": n_comp,
            "iterations": it}


def run_spark(parts: list[str]) -> dict:
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    b = spark.read.parquet(*parts)
    g = (b.groupBy("band", "band_hash").agg(F.min("file_id").alias("root"), F.count("*").alias("n"))
         .filter("n > 1"))
    edges = (b.join(g, ["band", "band_hash"]).filter("file_id <> root")
             .select(F.col("file_id").alias("src"), F.col("root").alias("dst")).distinct().cache())
    n_edges = edges.count()
    t2 = time.perf_counter()
    both = edges.union(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).cache()
    labels = both.select(F.col("src").alias("node")).distinct().withColumn("lab", F.col("node")).cache()
    it = 0
    while True:
        it += 1
        cand = (both.join(labels.withColumnRenamed("node", "dst"), "dst").groupBy("src").agg(F.min("lab").alias("lab"))
                .withColumnRenamed("src", "node"))
        new = labels.union(cand).groupBy("node").agg(F.min("lab").alias("lab")).localCheckpoint()
        changed = new.join(labels.withColumnRenamed("lab", "old"), "node").filter("lab <> old").count()
        labels = new
        if changed == 0:
            break
    n_comp = labels.select("lab").distinct().count()
    t3 = time.perf_counter()
    spark.stop()
    return {"startup_s": startup, "edges_s": t2 - t1, "cc_s": t3 - t2, "edges": n_edges, "components": n_comp,
            "iterations": it}


def run_ray(parts: list[str]) -> dict:
    t0 = time.perf_counter()
    import pandas as pd
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()

    def edges_of(df: pd.DataFrame) -> pd.DataFrame:
        if len(df) < 2:
            return pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
        root = df["file_id"].min()
        src = df["file_id"][df["file_id"] != root]
        return pd.DataFrame({"src": src.to_numpy(), "dst": [root] * len(src)})

    import pyarrow.parquet as pq

    # ray.data.read_parquet needs fsspec's HTTP extras even for local paths; hand it Arrow tables
    ds = ray.data.from_arrow([pq.read_table(p) for p in parts]).groupby(["band", "band_hash"]).map_groups(edges_of, batch_format="pandas")
    edges = ds.to_pandas().drop_duplicates()
    t2 = time.perf_counter()
    # Ray Data has no iterative join-based CC: label propagation on the driver (numpy), as Ray users do
    import numpy as np

    nodes = np.unique(np.concatenate([edges["src"].to_numpy(), edges["dst"].to_numpy()]).astype(str))
    s = np.searchsorted(nodes, edges["src"].to_numpy().astype(str))
    d = np.searchsorted(nodes, edges["dst"].to_numpy().astype(str))
    lab = np.arange(len(nodes))
    it = 0
    while True:
        it += 1
        m = np.minimum(lab[s], lab[d])
        new = lab.copy()
        np.minimum.at(new, s, m)
        np.minimum.at(new, d, m)
        if np.array_equal(new, lab):
            break
        lab = new
    t3 = time.perf_counter()
    ray.shutdown()
    return {"startup_s": startup, "edges_s": t2 - t1, "cc_s": t3 - t2, "edges": len(edges),
            "components": int(len(np.unique(lab))), "iterations": it}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["dask", "spark", "ray", "all"], default="all")
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--work", default="/tmp/opencoder_engine_bench")
    ap.add_argument("--site", action="append", default=[])
    ap.add_argument("--_child", action="store_true")
    args = ap.parse_args()
    for s in args.site:
        sys.path.insert(0, s)
    parts = make_bands(Path(args.work), args.copies)
    if args.engine == "all":
        sites = {"dask": [], "spark": ["/tmp/m_spark"], "ray": ["/tmp/m_ray"]}
        for eng, site in sites.items():
            cmd = [sys.executable, __file__, "--engine", eng, "--copies", str(args.copies), "--work", args.work]
            for s in site:
                cmd += ["--site", s]
            env = {**os.environ, "PYTHONPATH": ":".join(site)}  # ray's raylet/workers re-import from there
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"{eng}: FAILED {out.stderr[-800:]}")
        return
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    t = time.perf_counter()
    res = {"dask": run_dask, "spark": run_spark, "ray": run_ray}[args.engine](parts)
    res["total_s"] = time.perf_counter() - t
    res["band_rows"] = rows
    res["rows_per_s_edges"] = rows / res["edges_s"]
    print(json.dumps({"engine": args.engine, **{k: round(v, 2) if isinstance(v, float) else v
                                                for k, v in res.items()}}))


if __name__ == "__main__":
    main()
